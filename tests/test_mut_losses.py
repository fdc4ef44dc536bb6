"""vqlearn.losses: the LPIPS branch (a seeded random VGG trunk, offline), mode switches, every log value,
VQLoss, and arguments whose effect was unchecked (mutation testing, issue 16)."""

import types

import lpips
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg

import vqlearn.perceptual
from vqlearn.losses import (
    AdaptiveWeightRecorder,
    VQLoss,
    VQLPIPSWithDiscriminator,
    adopt_weight,
    calculate_adaptive_weight,
    feature_matching_loss,
    hinge_d_loss,
    hinge_g_loss,
    vanilla_d_loss,
)

from test_losses import TinyDecoder as Decoder  # a learned latent and one conv: the last layer of eq. 7


@pytest.fixture
def pair():
    torch.manual_seed(0)
    dec = Decoder()
    return dec, torch.rand(2, 3, 32, 32) * 2 - 1


def loss_module(**kw):
    args = dict(disc_start=0, perceptual_weight=0.0, disc_ndf=8)
    args.update(kw)
    return VQLPIPSWithDiscriminator(**args)


# --- the LPIPS branch, with a seeded random VGG16 trunk instead of the ImageNet weights ---


@pytest.fixture(scope="module")
def random_vgg_lpips():
    """An lpips.LPIPS(net="vgg") whose VGG16 trunk is randomly initialised from seed 0 (the linear heads are
    lpips' own, shipped in the package): no download, and the same module on every run."""
    real = lpips.pretrained_networks.tv.vgg16
    lpips.pretrained_networks.tv.vgg16 = lambda **kw: types.SimpleNamespace(features=vgg.make_layers(vgg.cfgs["D"]))
    try:
        torch.manual_seed(0)
        return lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval().requires_grad_(False)
    finally:
        lpips.pretrained_networks.tv.vgg16 = real


@pytest.fixture
def with_lpips(random_vgg_lpips, monkeypatch):
    calls = []

    def load_lpips(net="vgg", download=False):
        calls.append((net, download))
        return random_vgg_lpips

    monkeypatch.setattr(vqlearn.perceptual, "load_lpips", load_lpips)
    return calls


def test_perceptual_term_is_lpips_weighted_and_differentiated(with_lpips, random_vgg_lpips, pair):
    dec, x = pair
    loss_fn = loss_module(perceptual_weight=0.7, pixelloss_weight=0.5, disc_start=100, perceptual_net="vgg",
                          download_perceptual=True)
    assert with_lpips == [("vgg", True)] and loss_fn.perceptual_loss is random_vgg_lpips
    rec = dec()
    loss, log = loss_fn.generator_loss(torch.tensor(0.0), x, rec, global_step=0)
    with torch.no_grad():
        p = random_vgg_lpips(x, rec)  # (B, 1, 1, 1)
    assert p.shape == (2, 1, 1, 1) and p.min() > 0
    assert log["train/p_loss"].item() == pytest.approx(p.mean().item(), rel=1e-5)
    expected = 0.5 * (x - rec).abs().mean() + 0.7 * p.mean()
    assert log["train/rec_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert log["train/nll_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)  # before disc_start, no codebook loss here
    # the reconstruction's gradient includes LPIPS' (the trunk is frozen, the path to rec is not)
    (grad,) = torch.autograd.grad(loss, rec)
    rec2 = rec.detach().requires_grad_(True)
    by_hand = 0.5 * (x - rec2).abs().mean() + 0.7 * random_vgg_lpips(x, rec2).mean()
    (grad_by_hand,) = torch.autograd.grad(by_hand, rec2)
    assert torch.allclose(grad, grad_by_hand, atol=1e-7)
    assert not torch.allclose(grad, torch.autograd.grad(0.5 * (x - rec2).abs().mean(), rec2)[0], atol=1e-7)


def test_perceptual_repeats_grey_images_and_refuses_other_channels(with_lpips, random_vgg_lpips):
    loss_fn = loss_module(perceptual_weight=1.0, disc_in_channels=1, perceptual_net="alex")
    assert with_lpips == [("alex", False)]
    torch.manual_seed(1)
    x, rec = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = random_vgg_lpips(x.repeat(1, 3, 1, 1), rec.repeat(1, 3, 1, 1))
        assert torch.allclose(loss_fn.perceptual(x, rec), expected, atol=1e-6)
    with pytest.raises(ValueError) as error:
        loss_fn.perceptual(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))
    assert str(error.value) == ("LPIPS compares RGB (or grey) images, got 2 channels; "
                                "use perceptual_weight=0 for other images")
    assert torch.equal(loss_module().perceptual(x, rec), torch.zeros(2, 1, 1, 1))


def test_train_switches_the_discriminator_but_keeps_lpips_in_eval(with_lpips):
    loss_fn = loss_module(perceptual_weight=1.0)
    assert loss_fn.eval() is loss_fn and not loss_fn.training and not loss_fn.discriminator.training
    assert loss_fn.train() is loss_fn
    assert loss_fn.training and loss_fn.discriminator.training and not loss_fn.perceptual_loss.training
    assert all(not m.training for m in loss_fn.perceptual_loss.modules())  # LPIPS' dropout stays off
    loss_fn.train(False)
    assert not loss_fn.training and not loss_fn.discriminator.training
    no_lpips = loss_module()
    assert no_lpips.train() is no_lpips and no_lpips.training


def test_negative_weights_are_refused_with_the_fix():
    with pytest.raises(ValueError) as error:
        loss_module(perceptual_weight=-0.1)
    assert str(error.value) == "perceptual_weight must be >= 0 (0 turns LPIPS off), got -0.1"
    with pytest.raises(ValueError) as error:
        loss_module(feature_matching_weight=-2.0)
    assert str(error.value) == "feature_matching_weight must be >= 0 (0 turns it off), got -2.0"
    with pytest.raises(ValueError) as error:
        loss_module(disc_loss="wgan")
    assert str(error.value) == "disc_loss must be one of ('hinge', 'vanilla'), got 'wgan'"


# --- the mode switch: the adaptive weight after .eval() then .train() ---


def test_adaptive_weight_is_back_after_eval_then_train(pair):
    dec, x = pair
    loss_fn = loss_module(disc_weight=0.4)
    loss_fn.eval()
    rec = dec()
    _, log = loss_fn.generator_loss(torch.tensor(0.0), x, rec, global_step=3, last_layer=dec.conv_out.weight)
    assert log["train/d_weight"].item() == 0.0
    loss_fn.train()
    loss, log = loss_fn.generator_loss(torch.tensor(0.0), x, rec, global_step=3, last_layer=dec.conv_out.weight)
    nll = (x - rec).abs().mean()
    g = -loss_fn.discriminator(rec).mean()
    expected = calculate_adaptive_weight(nll, g, dec.conv_out.weight, disc_weight=0.4)
    assert log["train/d_weight"].item() == pytest.approx(expected.item(), rel=1e-5) and expected.item() > 0
    (grad,) = torch.autograd.grad(loss, rec)  # the GAN term reaches the decoder
    (l1_only,) = torch.autograd.grad(nll, rec, retain_graph=True)
    assert not torch.allclose(grad, l1_only)


# --- every value of the generator and discriminator logs ---


def test_every_generator_log_value(pair):
    dec, x = pair
    loss_fn = loss_module(codebook_weight=0.3, pixelloss_weight=2.0, disc_factor=0.6, disc_weight=0.5, disc_start=4)
    rec = dec()
    codebook_loss = torch.tensor([0.2, 0.6], requires_grad=True)  # not a scalar: its mean counts
    loss, log = loss_fn(codebook_loss, x, rec, 0, 4, dec.conv_out.weight, None, "val")
    logits = loss_fn.discriminator(rec)
    nll = 2.0 * (x - rec).abs().mean()
    d_weight = calculate_adaptive_weight(nll, -logits.mean(), dec.conv_out.weight, disc_weight=0.5)
    expected_total = nll + d_weight * 0.6 * (-logits.mean()) + 0.3 * 0.4
    values = {k: v.item() for k, v in log.items()}
    assert values == pytest.approx({
        "val/total_loss": expected_total.item(), "val/quant_loss": 0.4, "val/nll_loss": nll.item(),
        "val/rec_loss": nll.item(), "val/p_loss": 0.0, "val/d_weight": d_weight.item(), "val/disc_factor": 0.6,
        "val/g_loss": -logits.mean().item()}, rel=1e-5)
    assert loss.item() == pytest.approx(expected_total.item(), rel=1e-5)
    loss.backward()
    assert torch.allclose(codebook_loss.grad, torch.tensor([0.15, 0.15]))  # 0.3 * d mean / d c_i


def test_every_discriminator_log_value_and_the_default_hinge(pair):
    dec, x = pair
    loss_fn = loss_module(disc_factor=0.8, disc_start=2)
    assert loss_fn.disc_loss_name == "hinge" and loss_fn.disc_loss is hinge_d_loss
    assert loss_module(disc_loss="vanilla").disc_loss is vanilla_d_loss
    rec = dec()
    d_loss, log = loss_fn(torch.tensor(0.0), x, rec, 1, 2, split="val")
    real, fake = loss_fn.discriminator(x), loss_fn.discriminator(rec)
    expected = 0.8 * hinge_d_loss(real, fake)
    assert {k: v.item() for k, v in log.items()} == pytest.approx(
        {"val/disc_loss": expected.item(), "val/logits_real": real.mean().item(),
         "val/logits_fake": fake.mean().item()}, rel=1e-5)
    assert d_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss_fn.discriminator_loss(x, rec, global_step=1)[0].item() == 0.0


def test_conditional_discriminator_sees_images_and_condition_concatenated(pair):
    dec, x = pair
    cond = torch.rand(2, 2, 32, 32)
    loss_fn = loss_module(disc_conditional=True, disc_in_channels=5, feature_matching_weight=1.0).eval()
    rec = dec()
    _, log = loss_fn.generator_loss(torch.tensor(0.0), x, rec, global_step=0, cond=cond)
    with torch.no_grad():
        fake = loss_fn.discriminator(torch.cat((rec, cond), dim=1))
        real_features = loss_fn.discriminator.features(torch.cat((x, cond), dim=1))
        fake_features = loss_fn.discriminator.features(torch.cat((rec, cond), dim=1))
    assert log["train/g_loss"].item() == pytest.approx(-fake.mean().item(), rel=1e-5)
    assert log["train/fm_loss"].item() == pytest.approx(
        feature_matching_loss(real_features, fake_features).item(), rel=1e-5)
    _, log = loss_fn.discriminator_loss(x, rec, global_step=0, cond=cond)
    with torch.no_grad():
        real = loss_fn.discriminator(torch.cat((x, cond), dim=1))
    assert log["train/logits_real"].item() == pytest.approx(real.mean().item(), rel=1e-5)


def test_shape_mismatch_and_cond_errors_say_what_to_do(pair):
    dec, x = pair
    loss_fn = loss_module()
    with pytest.raises(ValueError) as error:
        loss_fn.generator_loss(torch.tensor(0.0), x, x[:, :, :16], global_step=0)
    assert str(error.value) == "inputs (2, 3, 32, 32) and reconstructions (2, 3, 16, 32) must have the same shape"
    with pytest.raises(ValueError) as error:
        loss_module(disc_conditional=True).discriminator_loss(x, x, global_step=0)
    assert str(error.value) == "this loss was built with disc_conditional=True, so cond (B, C', H, W) is required"
    with pytest.raises(ValueError) as error:
        loss_fn.discriminator_loss(x, x, global_step=0, cond=x)
    assert str(error.value) == ("cond was given but this loss was built with disc_conditional=False; "
                                "pass cond=None or build it with disc_conditional=True")
    with pytest.raises(ValueError) as error:
        loss_fn(torch.tensor(0.0), x, x, -1, 0)
    assert str(error.value) == ("optimizer_idx must be 0 (autoencoder step) or 1 (discriminator step), got -1")
    with pytest.raises(ValueError) as error:
        loss_fn.generator_loss(torch.tensor(0.0), x, dec(), global_step=0)
    assert str(error.value) == ("the adaptive GAN weight needs the decoder's last layer weight: pass "
                                "last_layer=model.get_last_layer() (or call model.eval() / torch.no_grad() "
                                "for evaluation)")


def test_the_discriminator_is_built_from_the_loss_arguments():
    torch.manual_seed(0)
    loss_fn = loss_module(disc_num_layers=2, disc_in_channels=1, disc_ndf=16, use_actnorm=True, disc_factor=0.3,
                          disc_weight=0.2, disc_start=9, pixelloss_weight=0.1, codebook_weight=0.7,
                          feature_matching_weight=0.5)
    d = loss_fn.discriminator
    assert (d.input_nc, d.n_layers) == (1, 2) and d.main[0].out_channels == 16
    assert type(d.main[3]).__name__ == "ActNorm"
    assert d.main[0].weight.std().item() == pytest.approx(0.02, rel=0.3)  # weights_init applied
    assert (loss_fn.discriminator_iter_start, loss_fn.disc_factor, loss_fn.discriminator_weight) == (9, 0.3, 0.2)
    assert (loss_fn.pixel_weight, loss_fn.codebook_weight, loss_fn.feature_matching_weight) == (0.1, 0.7, 0.5)
    assert loss_fn.perceptual_weight == 0.0 and loss_fn.perceptual_loss is None and not loss_fn.disc_conditional
    assert not loss_fn.disc_active(8) and loss_fn.disc_active(9)
    assert not loss_module(disc_factor=0.0).disc_active(100)


# --- the functions ---


def test_adaptive_weight_below_one_and_its_default_factor():
    w = torch.zeros(2, requires_grad=True)
    nll, g = (torch.tensor([0.3, 0.4]) * w).sum(), (torch.tensor([6.0, 8.0]) * w).sum()
    assert calculate_adaptive_weight(nll, g, w).item() == pytest.approx(0.5 / (10 + 1e-4), rel=1e-6)
    huge = (torch.tensor([3e4, 4e4]) * w).sum()
    assert calculate_adaptive_weight(huge, g, w).item() == pytest.approx(5e4 / (10 + 1e-4), rel=1e-6)


def test_recorder_uses_the_loss_weight_and_records_each_call(pair):
    dec, x = pair
    loss_fn = loss_module(disc_weight=0.25)
    recorder = AdaptiveWeightRecorder(loss_fn)
    assert recorder.loss is loss_fn and recorder.fixed is None and recorder.rows == []
    rec = dec()
    nll, g = (x - rec).abs().mean(), -loss_fn.discriminator(rec).mean()
    weight = recorder(nll, g, dec.conv_out.weight)
    assert weight.item() == pytest.approx(calculate_adaptive_weight(nll, g, dec.conv_out.weight, 0.25).item())
    fixed = AdaptiveWeightRecorder(loss_fn, fixed=3)
    assert fixed(nll, g, dec.conv_out.weight).item() == 3.0 and fixed.rows[0][2] == 3.0
    assert len(recorder.rows) == 1 and recorder.rows[0][2] == pytest.approx(weight.item())


def test_feature_matching_loss_by_hand_and_mismatched_lists():
    real = [torch.tensor([1.0, 2.0]), torch.tensor([[0.0, 4.0]])]
    fake = [torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 1.0]])]
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.5 + 2.0)
    with pytest.raises(ValueError) as error:
        feature_matching_loss(real, fake[:1])
    assert str(error.value) == "got 2 real and 1 fake feature maps"


def test_adopt_weight_defaults():
    assert adopt_weight(0.5, global_step=0) == 0.5
    assert adopt_weight(0.5, global_step=-1) == 0.0  # before the default threshold 0: the default value 0
    assert adopt_weight(0.5, global_step=4, threshold=5) == 0.0


def test_hinge_and_vanilla_losses_by_hand_on_two_sides():
    real, fake = torch.tensor([0.5, 3.0]), torch.tensor([-3.0, 0.5])
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.75))
    sp = F.softplus
    assert vanilla_d_loss(real, fake).item() == pytest.approx(0.5 * (sp(-real).mean() + sp(fake).mean()).item())
    assert hinge_g_loss(torch.tensor([[1.0, 3.0]])).item() == -2.0


# --- VQLoss ---


@pytest.mark.parametrize("rec_loss", ["mse", "l1"])
def test_vq_loss_values_and_log(rec_loss):
    torch.manual_seed(0)
    x, rec = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4).double()
    loss_fn = VQLoss(rec_loss=rec_loss, codebook_weight=0.5)
    assert (loss_fn.rec_loss, loss_fn.codebook_weight) == (rec_loss, 0.5)
    codebook = torch.tensor([0.2, 0.4])
    loss, log = loss_fn.generator_loss(codebook, x, rec, 7, None, split="val")
    diff = x - rec.float()
    rec_value = (diff**2).mean() if rec_loss == "mse" else diff.abs().mean()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx((rec_value + 0.5 * 0.3).item(), rel=1e-6)
    assert {k: v.item() for k, v in log.items()} == pytest.approx(
        {"val/total_loss": loss.item(), "val/quant_loss": 0.3, "val/nll_loss": rec_value.item(),
         "val/rec_loss": rec_value.item()}, rel=1e-6)
    keys = [f"train/{k}" for k in ("total_loss", "quant_loss", "nll_loss", "rec_loss")]
    assert list(loss_fn(codebook, x, rec)[1]) == keys and list(loss_fn.generator_loss(codebook, x, rec)[1]) == keys


def test_vq_loss_defaults_and_errors():
    loss_fn = VQLoss()
    assert (loss_fn.rec_loss, loss_fn.codebook_weight) == ("mse", 1.0)
    assert loss_fn.disc_active(0) is False and loss_fn.disc_active(10**9) is False
    with pytest.raises(RuntimeError) as error:
        loss_fn.discriminator_loss(torch.zeros(1), torch.zeros(1), 0)
    assert str(error.value) == "VQLoss has no discriminator (disc_active() is always False); use loss.kind=vqgan"
    with pytest.raises(ValueError) as error:
        VQLoss(rec_loss="l2")
    assert str(error.value) == "rec_loss must be one of ('mse', 'l1'), got 'l2'"
