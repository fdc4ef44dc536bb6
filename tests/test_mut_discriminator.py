"""vqlearn.discriminator: the whole layer table, the geometry helpers' arguments, ActNorm's formulas and the
errors (mutation testing, issue 16)."""

import pytest
import torch
import torch.nn as nn

from vqlearn.discriminator import (
    ActNorm,
    NLayerDiscriminator,
    conv_strides,
    output_size,
    patch_coverage,
    patch_window,
    receptive_field,
    weights_init,
)


def layer_table(d):
    rows = []
    for m in d.main:
        if isinstance(m, nn.Conv2d):
            rows.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.bias is not None))
        elif isinstance(m, nn.LeakyReLU):
            rows.append(("lrelu", m.negative_slope, m.inplace))
        else:
            rows.append((type(m).__name__, m.num_features if isinstance(m, nn.BatchNorm2d) else m.loc.shape[1]))
    return rows


def conv(c_in, c_out, stride, bias):
    return ("conv", c_in, c_out, (4, 4), (stride, stride), (1, 1), bias)


LRELU = ("lrelu", 0.2, True)


def test_the_seeds_layer_table_for_three_layers():
    assert layer_table(NLayerDiscriminator(input_nc=3, ndf=64, n_layers=3)) == [
        conv(3, 64, 2, True), LRELU,
        conv(64, 128, 2, False), ("BatchNorm2d", 128), LRELU,
        conv(128, 256, 2, False), ("BatchNorm2d", 256), LRELU,
        conv(256, 512, 1, False), ("BatchNorm2d", 512), LRELU,
        conv(512, 1, 1, True),
    ]


@pytest.mark.parametrize("n_layers, mults", [(1, [1, 2]), (2, [1, 2, 4]), (5, [1, 2, 4, 8, 8, 8])])
def test_channel_multipliers_double_and_stop_at_eight(n_layers, mults):
    d = NLayerDiscriminator(input_nc=2, ndf=4, n_layers=n_layers, use_actnorm=True)
    convs = [m for m in d.main if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4 * m for m in mults] + [1]
    assert [c.in_channels for c in convs] == [2] + [4 * m for m in mults]
    assert [c.stride[0] for c in convs] == conv_strides(n_layers)
    assert all(c.bias is not None for c in convs)  # ActNorm keeps the conv biases
    assert all(isinstance(m, ActNorm) for m in d.main if not isinstance(m, (nn.Conv2d, nn.LeakyReLU)))
    assert (d.input_nc, d.n_layers) == (2, n_layers)


def test_conv_strides_and_their_errors():
    assert conv_strides() == [2, 2, 2, 1, 1] and conv_strides(1) == [2, 1, 1]
    for bad in (0, -2, 2.0, "3"):
        with pytest.raises(ValueError) as error:
            conv_strides(bad)
        assert str(error.value) == f"n_layers must be an integer >= 1, got {bad!r}"


def test_geometry_helpers_take_their_arguments():
    assert receptive_field(3, kernel_size=3) == 1 + 2 * (1 + 2 + 4 + 8 + 8)  # (k - 1) times the strides before
    assert receptive_field(1) == 16 and receptive_field(2, 4) == 34
    assert output_size(64) == 6 and output_size(64, 2, kernel_size=4, padding=0) == 8  # 31, 14, 11, 8
    assert output_size(32, 2) == 6 and output_size(31, 1) == 13 and output_size(64, 3, 4, 0) == 0
    assert output_size(5, 1, kernel_size=8, padding=1) == 0  # the first conv has nothing to slide over
    assert output_size(6, 1, kernel_size=8, padding=1) == 0  # (6+2-8)//2+1 = 1, then 1+2-8 < 0
    assert output_size(1, 1, kernel_size=8, padding=3) == 0  # 1 + 2*3 < 8: stops at once (wider padding later)
    assert [patch_window(i, 1) for i in (0, 1, 5)] == [(-5, 11), (-3, 13), (5, 21)]  # 2 i - (1 + 2 + 2)
    assert patch_window(2, 2) == (8 - 11, 8 - 11 + 34)  # 4 i - (1 + 2 + 4 + 4)
    assert patch_window(0) == (-23, 47) and patch_window(0, 3, kernel_size=3, padding=0) == (0, 47)
    assert patch_window(0, 1, padding=2) == (-10, 6)


def test_patch_coverage_on_a_small_input_by_hand():
    per_axis = torch.zeros(20, dtype=torch.int64)
    for i in range(output_size(20, 1)):
        start, stop = patch_window(i, 1)
        per_axis[max(start, 0):min(stop, 20)] += 1
    assert per_axis[:3].tolist() == [3, 4, 4] and per_axis.max() == 8 and per_axis[-1] == 3  # 8 windows of 16
    coverage = patch_coverage(20, 1)
    assert torch.equal(coverage, per_axis[:, None] * per_axis[None, :])
    assert coverage[0, 0] == per_axis[0] ** 2 and coverage.sum() == per_axis.sum() ** 2
    assert torch.equal(patch_coverage(70), patch_coverage(70, n_layers=3))  # the default: 3 layers
    single = patch_coverage(12, n_layers=2)  # output_size(12, 2) == 1: one logit
    start, stop = patch_window(0, 2)
    assert single.sum() == (min(stop, 12) - max(start, 0)) ** 2 == 144 and single.max() == 1
    with pytest.raises(ValueError) as error:
        patch_coverage(8, n_layers=2)
    assert str(error.value) == ("input_size=8 is too small for n_layers=2: the logit grid would be empty; "
                                "use a larger input_size or fewer layers")


def test_actnorm_formulas():
    norm = ActNorm(3, eps=0.5)
    assert norm.eps == 0.5 and ActNorm(3).eps == 1e-6
    assert torch.equal(norm.loc, torch.zeros(1, 3, 1, 1)) and torch.equal(norm.scale, torch.ones(1, 3, 1, 1))
    assert norm.initialized.item() == 0 and norm.initialized.dtype == torch.uint8
    torch.manual_seed(0)
    x = torch.randn(4, 3, 2, 2) * torch.tensor([1.0, 2.0, 3.0])[None, :, None, None] + 5
    y = norm(x)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True)
    assert torch.allclose(norm.loc, -mean) and torch.allclose(norm.scale, 1 / (std + 0.5))
    assert torch.allclose(y, (x - mean) / (std + 0.5))
    assert norm.initialized.item() == 1 and isinstance(norm.loc, nn.Parameter)
    other = torch.randn(4, 3, 2, 2)
    assert torch.allclose(norm(other), norm.scale * (other + norm.loc))  # not re-initialised
    norm.eval()
    assert torch.allclose(norm(other), norm.scale * (other + norm.loc))


def test_weights_init_leaves_conv_biases_and_actnorm_alone():
    torch.manual_seed(0)
    d = NLayerDiscriminator(input_nc=3, ndf=8, n_layers=2)
    bias = d.main[0].bias.detach().clone()
    bn = d.main[3]
    with torch.no_grad():
        bn.bias.fill_(0.7)
    d.apply(weights_init)
    assert torch.equal(d.main[0].bias, bias) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.02) and bn.weight.std().item() < 0.05
    norm = ActNorm(4)
    with torch.no_grad():
        norm.scale.fill_(3.0)
    weights_init(norm)
    assert torch.equal(norm.scale, torch.full((1, 4, 1, 1), 3.0))
    linear = nn.Linear(3, 3)
    before = linear.weight.detach().clone()
    weights_init(linear)
    assert torch.equal(linear.weight, before)


def test_one_filter_and_one_input_channel_are_allowed():
    d = NLayerDiscriminator(input_nc=1, ndf=1, n_layers=1)
    assert d(torch.randn(1, 1, 16, 16)).shape == (1, 1, 6, 6)  # 16 -> 8 -> 7 -> 6


def test_bad_construction_and_bad_inputs_name_the_fix():
    for kwargs in (dict(input_nc=0), dict(ndf=0)):
        with pytest.raises(ValueError) as error:
            NLayerDiscriminator(**kwargs)
        args = {"input_nc": 3, "ndf": 64, **kwargs}
        assert str(error.value) == f"input_nc and ndf must be >= 1, got input_nc={args['input_nc']}, ndf={args['ndf']}"
    d = NLayerDiscriminator(input_nc=3, ndf=4, n_layers=2)
    with pytest.raises(ValueError) as error:
        d(torch.randn(2, 1, 32, 32))
    assert str(error.value).startswith("the discriminator expects images (B, 3, H, W), got (2, 1, 32, 32); "
                                       "build it with input_nc=1 (disc_in_channels")
    with pytest.raises(ValueError) as error:
        d(torch.randn(3, 32, 32))
    assert "got (3, 32, 32); build it with input_nc=<channels>" in str(error.value)
    with pytest.raises(ValueError) as error:
        d.features(torch.randn(1, 3, 32, 9))
    assert str(error.value) == ("input (32, 9) is too small for a discriminator with n_layers=2: "
                                "height and width must be at least 12; use larger images or fewer layers")
    assert output_size(12, 2) >= 1 and output_size(11, 2) < 1
    assert d(torch.randn(1, 3, 12, 12)).shape == (1, 1, 1, 1)


def test_features_are_the_activations_after_each_leaky_relu():
    torch.manual_seed(0)
    d = NLayerDiscriminator(input_nc=1, ndf=4, n_layers=1).eval()
    x = torch.randn(1, 1, 16, 16)
    features = d.features(x)
    with torch.no_grad():
        first = nn.functional.leaky_relu(d.main[0](x), 0.2)
        second = nn.functional.leaky_relu(d.main[3](d.main[2](first)), 0.2)
        logits = d.main[5](second)
    assert len(features) == 3
    assert torch.allclose(features[0], first) and torch.allclose(features[1], second)
    assert torch.allclose(features[2], logits)
