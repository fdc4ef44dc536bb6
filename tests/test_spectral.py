"""Tests for vqlearn.spectral: overlap maps, checkerboard energy, frequency responses."""

import math

import pytest
import torch
import torch.nn as nn

from vqlearn.spectral import checkerboard_energy, frequency_response, overlap_map


def test_overlap_map_1d_uneven_and_even():
    k3 = overlap_map(3, 2, 8, dims=1)
    assert k3.shape == (17,)  # (8 - 1) * 2 + 3
    assert k3[1:-1].tolist() == [1, 2] * 7 + [1]  # interior alternates 1, 2
    k4 = overlap_map(4, 2, 8, dims=1)
    assert k4.shape == (18,)
    assert (k4[2:-2] == 2).all() and k4[:2].tolist() == [1, 1]  # even overlap away from the borders


def test_overlap_map_2d_is_outer_product():
    for k in (3, 4):
        one = overlap_map(k, 2, 6, dims=1)
        two = overlap_map(k, 2, 6, dims=2)
        assert torch.equal(two, torch.outer(one, one))
    k3 = overlap_map(3, 2, 6)
    assert k3[2:4, 2:4].tolist() == [[4, 2], [2, 1]]
    assert set(overlap_map(4, 2, 6)[2:-2, 2:-2].unique().tolist()) == {4.0}


def test_overlap_map_matches_a_real_layer():
    layer = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, bias=False)
    nn.init.ones_(layer.weight)
    with torch.no_grad():
        out = layer(torch.ones(1, 1, 5, 5))[0, 0]
    assert torch.equal(out.double(), overlap_map(3, 2, 5, padding=1))


def test_checkerboard_energy_synthetic_patterns():
    h = w = 16
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    checker = ((rows + cols) % 2).float() * 2 - 1
    assert checkerboard_energy(checker).item() == pytest.approx(1.0, abs=1e-6)
    stripes = (cols % 2).float()
    assert checkerboard_energy(stripes).item() == pytest.approx(1.0, abs=1e-6)
    ramp = cols.float()
    assert checkerboard_energy(ramp).item() == pytest.approx(3 / (w**2 - 1), rel=1e-5)
    assert checkerboard_energy(ramp).item() < 0.02
    assert checkerboard_energy(torch.full((h, w), 3.0)).item() == 0.0
    smooth = torch.sin(2 * math.pi * rows / h) * torch.cos(2 * math.pi * cols / w)
    assert checkerboard_energy(smooth).item() < 1e-10
    mixed = smooth + 0.1 * checker  # power 1/4 * 256 = 64 for smooth, 0.01 * 256 = 2.56 for the checker
    assert checkerboard_energy(mixed).item() == pytest.approx(2.56 / (64 + 2.56), rel=1e-4)


def test_checkerboard_energy_batch_shape_and_errors():
    x = torch.randn(5, 3, 8, 10)
    e = checkerboard_energy(x)
    assert e.shape == (5,) and ((e >= 0) & (e <= 1)).all()
    # white noise spreads its power evenly: 3 of H*W - 1 bins
    noise = checkerboard_energy(torch.randn(200, 1, 16, 16)).mean().item()
    assert noise == pytest.approx(3 / 255, rel=0.2)
    with pytest.raises(ValueError, match="even"):
        checkerboard_energy(torch.randn(1, 1, 7, 8))
    with pytest.raises(ValueError, match="expected"):
        checkerboard_energy(torch.randn(3, 8, 8))


def test_frequency_response_of_nearest_upsampling():
    omega, mag = frequency_response(torch.tensor([1.0, 1.0]), n_fft=256)
    assert omega.shape == mag.shape == (129,)
    assert torch.allclose(mag, 2 * torch.cos(omega / 2).abs(), atol=1e-12)
    assert mag[0] == pytest.approx(2.0) and mag[-1] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="n_fft"):
        frequency_response(torch.ones(10), n_fft=8)


# --- sharpness: radial power spectrum and high-frequency energy --------------------------------------------

from vqlearn.spectral import high_frequency_energy, high_frequency_ratio, radial_power_spectrum  # noqa: E402


def cosine_image(period: float, size: int = 32, channels: int = 1, axis: int = 1) -> torch.Tensor:
    """``(1, channels, size, size)``: a cosine of the given period in pixels along columns (axis 1) or rows (0)."""
    position = torch.arange(size, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * position / period)
    image = wave[None, :].expand(size, size) if axis == 1 else wave[:, None].expand(size, size)
    return image.expand(1, channels, size, size).clone()


def test_radial_power_spectrum_adds_up_to_the_mean_square_and_finds_a_cosine():
    x = torch.randn(4, 3, 16, 12, dtype=torch.float64)
    edges, power = radial_power_spectrum(x, num_bins=8)
    assert edges.shape == (9,) and power.shape == (4, 8)
    assert edges[0] == 0 and edges[-1] == pytest.approx(math.sqrt(2) / 2)
    assert torch.allclose(power.sum(1), (x**2).mean(dim=(2, 3)).sum(1))  # Parseval, mean included
    # a cosine of period 4 px (0.25 cycles/pixel) puts all its power (1/2) in the ring holding 0.25
    edges, power = radial_power_spectrum(cosine_image(4), num_bins=14)  # ring width 0.0505
    ring = int(torch.bucketize(torch.tensor(0.25, dtype=torch.float64), edges, right=True)) - 1
    assert power[0, ring] == pytest.approx(0.5) and power[0].sum() == pytest.approx(0.5)
    # the (pi, pi) corner lands in the last ring
    checker = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).double() * 2 - 1
    _, power = radial_power_spectrum(checker[None, None], num_bins=5)
    assert power[0, -1] == pytest.approx(1.0) and power[0, :-1].abs().max() < 1e-12


def test_high_frequency_energy_keeps_only_fine_detail():
    assert high_frequency_energy(cosine_image(2)).item() == pytest.approx(1.0)  # period 2: f = 0.5, cos^2 = 1
    assert high_frequency_energy(cosine_image(32 / 10)).item() == pytest.approx(0.5)  # f = 0.3125 > 0.25
    assert high_frequency_energy(cosine_image(8)).item() == pytest.approx(0.0, abs=1e-20)  # f = 0.125
    assert high_frequency_energy(cosine_image(8), cutoff=0.1).item() == pytest.approx(0.5)
    assert high_frequency_energy(cosine_image(2, axis=0), cutoff=0.45).item() == pytest.approx(1.0)
    assert high_frequency_energy(torch.full((2, 3, 8, 8), 0.7)).tolist() == pytest.approx([0.0, 0.0], abs=1e-20)
    # channels add up; a constant offset changes nothing
    three = cosine_image(2, channels=3) + 5.0
    assert high_frequency_energy(three).item() == pytest.approx(3.0)
    # white noise: its variance times the share of DFT bins above the cutoff
    noise = torch.randn(400, 1, 32, 32, dtype=torch.float64)
    fy = torch.fft.fftfreq(32, dtype=torch.float64)
    share = float(((fy[:, None] ** 2 + fy[None, :] ** 2).sqrt() > 0.25).double().mean())
    assert high_frequency_energy(noise).mean().item() == pytest.approx(share, rel=0.02)


def test_high_frequency_ratio_scores_blur_below_one_and_noise_above():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 32, 32)
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    assert torch.allclose(high_frequency_ratio(x, x), torch.ones(6, dtype=torch.float64))
    assert (high_frequency_ratio(blur, x) < 0.2).all()
    assert (high_frequency_ratio(x + 0.5 * torch.randn_like(x), x) > 1.1).all()
    assert high_frequency_ratio(2 * x, x).tolist() == pytest.approx([4.0] * 6)  # power scales with amplitude^2
    assert high_frequency_ratio(x[:1], torch.zeros_like(x[:1])).isinf().all()


def test_sharpness_measures_check_their_arguments():
    with pytest.raises(ValueError, match="same shape"):
        high_frequency_ratio(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 4))
    with pytest.raises(ValueError, match="cutoff"):
        high_frequency_energy(torch.zeros(1, 1, 8, 8), cutoff=0.8)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        high_frequency_energy(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="num_bins"):
        radial_power_spectrum(torch.zeros(1, 1, 8, 8), num_bins=0)
