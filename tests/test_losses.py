import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from vqlearn.losses import (
    VQLPIPSWithDiscriminator,
    adopt_weight,
    calculate_adaptive_weight,
    hinge_d_loss,
    vanilla_d_loss,
)

GEN_KEYS = ["total_loss", "quant_loss", "nll_loss", "rec_loss", "p_loss", "d_weight", "disc_factor", "g_loss"]
DISC_KEYS = ["disc_loss", "logits_real", "logits_fake"]


def test_hinge_d_loss_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 0.5])
    # relu(1 - real) = [0, 0.5, 2] -> mean 5/6; relu(1 + fake) = [0, 1, 1.5] -> mean 5/6
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (5 / 6 + 5 / 6))


def test_vanilla_d_loss_by_hand():
    real = torch.tensor([1.0, -2.0])
    fake = torch.tensor([0.0, 3.0])
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected = 0.5 * ((sp(-1.0) + sp(2.0)) / 2 + (sp(0.0) + sp(3.0)) / 2)
    assert vanilla_d_loss(real, fake).item() == pytest.approx(expected)
    # = -[log sigmoid(real) + log(1 - sigmoid(fake))] / 2, averaged
    s = torch.sigmoid
    bce = 0.5 * (-torch.log(s(real)).mean() - torch.log(1 - s(fake)).mean())
    assert vanilla_d_loss(real, fake).item() == pytest.approx(bce.item(), rel=1e-6)


def test_adopt_weight():
    assert adopt_weight(0.8, global_step=9, threshold=10) == 0.0
    assert adopt_weight(0.8, global_step=10, threshold=10) == 0.8
    assert adopt_weight(0.8, global_step=0) == 0.8
    assert adopt_weight(0.8, global_step=3, threshold=10, value=0.1) == 0.1


def test_adaptive_weight_by_hand():
    w = torch.zeros(2, requires_grad=True)
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([0.6, 0.8])
    nll, g = (a * w).sum(), (b * w).sum()  # gradients: a (norm 5) and b (norm 1)
    d_weight = calculate_adaptive_weight(nll, g, w, disc_weight=0.5)
    assert d_weight.item() == pytest.approx(0.5 * 5.0 / (1.0 + 1e-4))
    assert not d_weight.requires_grad
    # a GAN gradient of 0 gives 5 / 1e-4 = 5e4, clamped to 1e4 before disc_weight
    g0 = (0.0 * w).sum()
    assert calculate_adaptive_weight((a * w).sum(), g0, w, disc_weight=2.0).item() == pytest.approx(2e4)


class TinyDecoder(nn.Module):
    """A stand-in autoencoder: a learned latent and one conv as the 'last layer'."""

    def __init__(self, channels=3, size=32):
        super().__init__()
        self.z = nn.Parameter(torch.randn(2, 4, size, size))
        self.conv_out = nn.Conv2d(4, channels, 3, padding=1)

    def forward(self):
        return self.conv_out(self.z)

    def get_last_layer(self):
        return self.conv_out.weight


def make_loss(**kw):
    args = dict(disc_start=5, perceptual_weight=0.0, disc_ndf=8)
    args.update(kw)
    return VQLPIPSWithDiscriminator(**args)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    dec = TinyDecoder()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    codebook_loss = torch.tensor(0.3, requires_grad=True)
    return dec, x, codebook_loss


@pytest.mark.parametrize("split", ["train", "val"])
def test_log_keys(batch, split):
    dec, x, cb = batch
    loss_fn = make_loss()
    _, log = loss_fn(cb, x, dec(), 0, global_step=10, last_layer=dec.get_last_layer(), split=split)
    assert list(log) == [f"{split}/{k}" for k in GEN_KEYS]
    _, log = loss_fn(cb, x, dec(), 1, global_step=10, split=split)
    assert list(log) == [f"{split}/{k}" for k in DISC_KEYS]
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in log.values())


def test_total_loss_composition(batch):
    dec, x, cb = batch
    loss_fn = make_loss(codebook_weight=0.25, disc_factor=0.7, disc_weight=0.3)
    rec = dec()
    loss, log = loss_fn(cb, x, rec, 0, global_step=5, last_layer=dec.get_last_layer())
    g = lambda k: log[f"train/{k}"]  # noqa: E731
    assert g("nll_loss").item() == pytest.approx((x - rec).abs().mean().item(), rel=1e-6)
    assert g("p_loss").item() == 0.0
    assert g("disc_factor").item() == pytest.approx(0.7)
    assert g("d_weight").item() > 0
    expected = g("nll_loss") + g("d_weight") * g("disc_factor") * g("g_loss") + 0.25 * g("quant_loss")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert g("total_loss").item() == pytest.approx(loss.item())
    # d_weight is eq. 7 at the decoder's last layer, times disc_weight
    nll = (x - rec).abs().mean()
    g_loss = -loss_fn.discriminator(rec).mean()
    ref = calculate_adaptive_weight(nll, g_loss, dec.get_last_layer(), disc_weight=0.3)
    assert g("d_weight").item() == pytest.approx(ref.item(), rel=1e-4)
    loss.backward()
    assert dec.conv_out.weight.grad is not None and cb.grad is not None


def test_d_weight_zero_before_disc_start_and_in_eval(batch):
    dec, x, cb = batch
    loss_fn = make_loss(disc_start=5)
    # before disc_start: no adaptive weight, so last_layer is not needed
    loss, log = loss_fn(cb, x, dec(), 0, global_step=4)
    assert log["train/d_weight"].item() == 0.0 and log["train/disc_factor"].item() == 0.0
    assert loss.item() == pytest.approx((log["train/nll_loss"] + log["train/quant_loss"]).item())
    # evaluation mode, and no_grad, after disc_start
    loss_fn.eval()
    _, log = loss_fn(cb, x, dec(), 0, global_step=50, split="val")
    assert log["val/d_weight"].item() == 0.0 and log["val/disc_factor"].item() == 1.0
    loss_fn.train()
    with torch.no_grad():
        _, log = loss_fn(cb, x, dec(), 0, global_step=50)
    assert log["train/d_weight"].item() == 0.0


def test_missing_last_layer_is_an_error(batch):
    dec, x, cb = batch
    with pytest.raises(ValueError, match="get_last_layer"):
        make_loss(disc_start=0)(cb, x, dec(), 0, global_step=0)


def test_discriminator_step(batch):
    dec, x, cb = batch
    loss_fn = make_loss(disc_start=5, disc_factor=0.5, disc_loss="vanilla").eval()
    rec = dec()
    d_loss, log = loss_fn(cb, x, rec, 1, global_step=5)
    with torch.no_grad():
        real, fake = loss_fn.discriminator(x), loss_fn.discriminator(rec)
    assert d_loss.item() == pytest.approx(0.5 * vanilla_d_loss(real, fake).item(), rel=1e-6)
    assert log["train/logits_real"].item() == pytest.approx(real.mean().item(), rel=1e-6)
    d_loss.backward()  # reaches the discriminator only: the images are detached
    assert dec.conv_out.weight.grad is None
    assert loss_fn.discriminator.main[0].weight.grad is not None
    d_loss, _ = loss_fn(cb, x, rec, 1, global_step=4)
    assert d_loss.item() == 0.0


def test_conditional_discriminator(batch):
    dec, x, cb = batch
    cond = torch.randn(2, 1, 32, 32)
    loss_fn = make_loss(disc_conditional=True, disc_in_channels=4)
    loss, _ = loss_fn(cb, x, dec(), 0, global_step=10, last_layer=dec.get_last_layer(), cond=cond)
    d_loss, _ = loss_fn(cb, x, dec(), 1, global_step=10, cond=cond)
    assert torch.isfinite(loss) and torch.isfinite(d_loss)


def test_bad_arguments(batch):
    dec, x, cb = batch
    with pytest.raises(ValueError, match="disc_loss"):
        make_loss(disc_loss="wgan")
    loss_fn = make_loss()
    with pytest.raises(ValueError, match="optimizer_idx"):
        loss_fn(cb, x, dec(), 2, global_step=0)
    with pytest.raises(ValueError, match="disc_conditional=False"):
        loss_fn(cb, x, dec(), 0, global_step=0, cond=torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="disc_conditional=True"):
        make_loss(disc_conditional=True, disc_in_channels=4)(cb, x, dec(), 1, global_step=0)


def test_lpips_is_never_imported_without_perceptual_loss():
    script = textwrap.dedent(
        """
        import sys, torch
        from vqlearn.losses import VQLPIPSWithDiscriminator
        loss_fn = VQLPIPSWithDiscriminator(disc_start=0, perceptual_weight=0, disc_ndf=4)
        assert loss_fn.perceptual_loss is None
        w = torch.randn(3, 3, 1, 1, requires_grad=True)
        x = torch.randn(1, 3, 32, 32)
        rec = torch.nn.functional.conv2d(x, w)
        loss_fn(torch.tensor(0.0), x, rec, 0, global_step=0, last_layer=w)
        loss_fn(torch.tensor(0.0), x, rec, 1, global_step=0)
        assert "lpips" not in sys.modules, "lpips was imported"
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_feature_matching_off_by_default_changes_nothing(batch):
    dec, x, cb = batch
    torch.manual_seed(3)
    plain = make_loss()
    torch.manual_seed(3)
    with_zero = make_loss(feature_matching_weight=0.0)
    rec = dec()
    loss_a, log_a = plain(cb, x, rec, 0, global_step=10, last_layer=dec.get_last_layer())
    loss_b, log_b = with_zero(cb, x, rec, 0, global_step=10, last_layer=dec.get_last_layer())
    assert "train/fm_loss" not in log_b and list(log_a) == list(log_b)
    assert loss_a.item() == loss_b.item()


def test_feature_matching_term(batch):
    dec, x, cb = batch
    loss_fn = make_loss(feature_matching_weight=2.0, disc_factor=0.5)
    rec = dec()
    loss, log = loss_fn(cb, x, rec, 0, global_step=10, last_layer=dec.get_last_layer())
    g = lambda k: log[f"train/{k}"]  # noqa: E731
    real = loss_fn.discriminator.features(x)
    fake = loss_fn.discriminator.features(rec)
    by_hand = sum((r - f).abs().mean() for r, f in zip(real, fake))
    assert g("fm_loss").item() == pytest.approx(by_hand.item(), rel=1e-5) and g("fm_loss").item() > 0
    expected = g("nll_loss") + g("d_weight") * 0.5 * g("g_loss") + g("quant_loss") + 0.5 * 2.0 * g("fm_loss")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert dec.conv_out.weight.grad is not None


def test_feature_matching_is_zero_for_perfect_reconstructions_and_before_disc_start(batch):
    dec, x, cb = batch
    loss_fn = make_loss(feature_matching_weight=1.0, disc_start=5).eval()
    _, log = loss_fn(cb, x, x.clone(), 0, global_step=10, split="val")
    assert log["val/fm_loss"].item() == 0.0
    loss_fn.train()
    rec = dec()
    loss, log = loss_fn(cb, x, rec, 0, global_step=4)
    assert log["train/fm_loss"].item() > 0  # measured, but weighted by disc_factor = 0
    assert loss.item() == pytest.approx((log["train/nll_loss"] + log["train/quant_loss"]).item())


def test_feature_matching_weight_must_be_non_negative():
    with pytest.raises(ValueError, match="feature_matching_weight"):
        make_loss(feature_matching_weight=-1.0)


# --- generator losses (chapter "Hinge and vanilla GAN losses") ---

from vqlearn.losses import hinge_g_loss, minimax_g_loss, non_saturating_g_loss  # noqa: E402


def _grad(loss_fn, logits):
    logits = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(logits), logits)
    return grad


def test_generator_losses_by_hand():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    s = torch.sigmoid
    assert hinge_g_loss(logits).item() == pytest.approx(1 / 3)
    assert non_saturating_g_loss(logits).item() == pytest.approx(-torch.log(s(logits)).mean().item(), rel=1e-6)
    assert minimax_g_loss(logits).item() == pytest.approx(torch.log(1 - s(logits)).mean().item(), rel=1e-6)
    n = len(logits)
    assert torch.equal(_grad(hinge_g_loss, logits), torch.full((n,), -1 / n))
    assert torch.allclose(_grad(non_saturating_g_loss, logits), -s(-logits) / n)
    assert torch.allclose(_grad(minimax_g_loss, logits), -s(logits) / n)


def test_hinge_d_loss_gradient_is_exactly_zero_beyond_the_margin():
    logits = torch.linspace(-3, 3, 61)
    real = logits.clone().requires_grad_(True)
    fake = logits.clone().requires_grad_(True)
    grad_real, grad_fake = torch.autograd.grad(hinge_d_loss(real, fake), [real, fake])
    assert (grad_real[logits > 1] == 0).all() and (grad_real[logits < 1] < 0).all()
    assert (grad_fake[logits < -1] == 0).all() and (grad_fake[logits > -1] > 0).all()
    real = logits.clone().requires_grad_(True)
    fake = logits.clone().requires_grad_(True)
    grad_real, grad_fake = torch.autograd.grad(vanilla_d_loss(real, fake), [real, fake])
    assert (grad_real < 0).all() and (grad_fake > 0).all()  # vanilla never stops


@pytest.mark.parametrize("disc_loss", ["hinge", "vanilla"])
def test_g_loss_is_hinge_g_loss_for_both_disc_losses(batch, disc_loss):
    dec, x, cb = batch
    loss = make_loss(disc_loss=disc_loss, disc_start=0).eval()
    rec = dec()
    _, log = loss.generator_loss(cb, x, rec, global_step=10)
    with torch.no_grad():
        expected = hinge_g_loss(loss.discriminator(rec))
    assert log["train/g_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_adaptive_weight_recorder_records_and_can_fix_the_weight(batch):
    from vqlearn.losses import AdaptiveWeightRecorder

    dec, x, cb = batch
    loss_fn = make_loss(disc_weight=0.3)
    recorder = AdaptiveWeightRecorder(loss_fn)
    loss_fn.calculate_adaptive_weight = recorder
    rec = dec()
    _, log = loss_fn(cb, x, rec, 0, global_step=10, last_layer=dec.get_last_layer())
    nll = (x - rec).abs().mean()
    g_loss = -loss_fn.discriminator(rec).mean()
    last = dec.get_last_layer()
    nll_norm = torch.autograd.grad(nll, last, retain_graph=True)[0].norm().item()
    g_norm = torch.autograd.grad(g_loss, last)[0].norm().item()
    (row,) = recorder.rows
    assert row[0] == pytest.approx(nll_norm, rel=1e-5) and row[1] == pytest.approx(g_norm, rel=1e-5)
    assert row[2] == pytest.approx(log["train/d_weight"].item()) == pytest.approx(0.3 * nll_norm / (g_norm + 1e-4), rel=1e-4)
    loss_fn.calculate_adaptive_weight = AdaptiveWeightRecorder(loss_fn, fixed=0.8)
    _, log = loss_fn(cb, x, dec(), 0, global_step=10, last_layer=dec.get_last_layer())
    assert log["train/d_weight"].item() == pytest.approx(0.8)
