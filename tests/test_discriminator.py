import pytest
import torch
import torch.nn as nn

from vqlearn.discriminator import (
    ActNorm,
    NLayerDiscriminator,
    output_size,
    patch_window,
    receptive_field,
    weights_init,
)


@pytest.mark.parametrize("size, grid", [(256, 30), (64, 6)])
def test_output_shape(size, grid):
    d = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=3)
    out = d(torch.randn(2, 3, size, size))
    assert out.shape == (2, 1, grid, grid)
    assert output_size(size, n_layers=3) == grid


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [32, 48, 70])
def test_output_size_matches_the_network(n_layers, size):
    d = NLayerDiscriminator(input_nc=1, ndf=4, n_layers=n_layers).eval()
    expected = output_size(size, n_layers)
    if expected < 1:
        with pytest.raises(ValueError, match="too small"):
            d(torch.randn(1, 1, size, size))
    else:
        assert d(torch.randn(1, 1, size, size)).shape[-1] == expected


def test_receptive_field_values():
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    assert receptive_field() == 70


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_receptive_field_empirically(n_layers):
    """The gradient of one interior logit is nonzero on exactly the predicted square."""
    torch.manual_seed(0)
    d = NLayerDiscriminator(input_nc=1, ndf=4, n_layers=n_layers).double().eval()  # eval: BatchNorm is per-position
    size = 128
    x = torch.randn(1, 1, size, size, dtype=torch.double, requires_grad=True)
    out = d(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    out[0, 0, i, j].backward()
    nonzero = x.grad[0, 0] != 0
    rows = nonzero.any(dim=1).nonzero().flatten()
    cols = nonzero.any(dim=0).nonzero().flatten()
    rf = receptive_field(n_layers)
    assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
    assert nonzero.sum() == rf * rf  # every pixel of the square, none outside
    assert (rows.min().item(), rows.max().item() + 1) == patch_window(i, n_layers)
    assert (cols.min().item(), cols.max().item() + 1) == patch_window(j, n_layers)


def test_taming_state_dict_layout():
    keys = set(NLayerDiscriminator().state_dict())
    assert {"main.0.weight", "main.0.bias", "main.2.weight", "main.3.running_mean", "main.8.weight",
            "main.9.weight", "main.11.weight", "main.11.bias"} <= keys
    assert "main.2.bias" not in keys  # conv before BatchNorm has no bias
    act = NLayerDiscriminator(use_actnorm=True).state_dict()
    assert {"main.2.bias", "main.3.loc", "main.3.scale", "main.3.initialized"} <= set(act)
    assert act["main.3.loc"].shape == (1, 128, 1, 1) and act["main.3.initialized"].dtype == torch.uint8
    assert [m.out_channels for m in NLayerDiscriminator().main if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 1]


def test_actnorm_initialises_from_the_first_training_batch():
    torch.manual_seed(0)
    norm = ActNorm(5)
    x = 3.0 + 2.0 * torch.randn(8, 5, 6, 6)
    y = norm(x)
    assert norm.initialized.item() == 1
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2, 3)), torch.ones(5), atol=1e-4)
    loc = norm.loc.detach().clone()
    norm(torch.randn(8, 5, 6, 6))  # later batches do not re-initialise
    assert torch.equal(norm.loc.detach(), loc)


def test_actnorm_does_not_initialise_in_eval_mode():
    norm = ActNorm(2).eval()
    x = torch.randn(4, 2, 3, 3)
    assert torch.equal(norm(x), x)
    assert norm.initialized.item() == 0


def test_actnorm_in_discriminator_normalises_first_batch():
    torch.manual_seed(0)
    d = NLayerDiscriminator(input_nc=3, ndf=8, use_actnorm=True)
    feats = {}

    def keep(module, inputs, output):  # returns None: a hook's return value would replace the output
        feats["h"] = output.detach().clone()  # clone: the next LeakyReLU works in place

    d.main[3].register_forward_hook(keep)
    d(torch.randn(4, 3, 64, 64))
    h = feats["h"]
    assert torch.allclose(h.mean(dim=(0, 2, 3)), torch.zeros(h.shape[1]), atol=1e-4)
    assert torch.allclose(h.std(dim=(0, 2, 3)), torch.ones(h.shape[1]), atol=1e-3)


def test_weights_init_statistics():
    torch.manual_seed(0)
    d = NLayerDiscriminator(ndf=64, n_layers=3)
    d.apply(weights_init)
    conv_w = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(conv_w.mean().item()) < 1e-3
    assert conv_w.std().item() == pytest.approx(0.02, rel=0.02)
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_w = torch.cat([m.weight.flatten() for m in bns])
    assert bn_w.mean().item() == pytest.approx(1.0, abs=3e-3)
    assert bn_w.std().item() == pytest.approx(0.02, rel=0.15)
    assert all(torch.all(m.bias == 0) for m in bns)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_layers"):
        NLayerDiscriminator(n_layers=0)
    with pytest.raises(ValueError, match="input_nc=1"):
        NLayerDiscriminator(input_nc=3, ndf=4)(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 24"):
        NLayerDiscriminator(input_nc=3, ndf=4)(torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize("use_actnorm", [False, True])
def test_features_end_with_the_logits(use_actnorm):
    torch.manual_seed(0)
    disc = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=3, use_actnorm=use_actnorm).eval()
    x = torch.randn(2, 3, 64, 64)
    features = disc.features(x)
    assert len(features) == 3 + 2
    assert [tuple(f.shape[1:]) for f in features] == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 7, 7), (1, 6, 6)]
    assert torch.equal(features[-1], disc(x))


@pytest.mark.parametrize("n_layers, size", [(1, 40), (2, 32), (3, 64), (3, 256)])
def test_patch_coverage_matches_autograd(n_layers, size):
    """Pixel (r, c) is counted once for every logit whose gradient is nonzero there."""
    from vqlearn.discriminator import patch_coverage

    coverage = patch_coverage(size, n_layers)
    assert coverage.shape == (size, size) and coverage.dtype == torch.int64
    if size > 64:  # the autograd check is slow at 256; the interior values are what matters there
        interior = coverage[80:176, 80:176]
        assert set(interior.unique().tolist()) <= {64, 72, 81}
        return
    torch.manual_seed(0)
    d = NLayerDiscriminator(input_nc=1, ndf=2, n_layers=n_layers).double().eval()
    x = torch.randn(1, 1, size, size, dtype=torch.double, requires_grad=True)
    out = d(x)[0, 0]
    counted = torch.zeros(size, size, dtype=torch.int64)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            (grad,) = torch.autograd.grad(out[i, j], x, retain_graph=True)
            counted += (grad[0, 0] != 0).long()
    assert torch.equal(coverage, counted)


def test_patch_coverage_rejects_too_small_inputs():
    from vqlearn.discriminator import patch_coverage

    with pytest.raises(ValueError, match="input_size=16"):
        patch_coverage(16, n_layers=3)
