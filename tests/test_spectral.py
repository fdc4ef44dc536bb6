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
