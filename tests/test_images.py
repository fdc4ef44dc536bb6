"""Tests for vqlearn.images: the [-1, 1] convention, bytes, grey to RGB, dataset items."""

import numpy as np
import pytest
import torch

from vqlearn.images import (
    bytes_to_tensor,
    denormalize,
    first_images,
    grey_to_rgb,
    image_of,
    normalize,
    uint8_to_tensor,
)


def test_normalize_denormalize_round_trip():
    pixels = torch.arange(256, dtype=torch.float32) / 255
    x = normalize(pixels)
    assert x[0] == -1 and x[-1] == 1
    assert torch.allclose(denormalize(x), pixels, rtol=0, atol=1e-7)  # equal up to float32 rounding
    assert torch.equal((denormalize(x) * 255).round(), torch.arange(256.0))  # every 8-bit level comes back
    assert np.allclose(denormalize(np.array([-1.0, 0.0, 1.0])), [0.0, 0.5, 1.0])


def test_denormalize_clamps_and_is_at_least_float32():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 5)
    assert denormalize(x).flatten().tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert np.array_equal(denormalize(np.array([-3.0, 3.0])), [0.0, 1.0])
    assert denormalize(x.half()).dtype == torch.float32  # an autocast reconstruction
    assert denormalize(x.bfloat16()).dtype == torch.float32
    assert denormalize(x.double()).dtype == torch.float64
    assert denormalize(np.zeros(2, dtype=np.float16)).dtype == np.float32


def test_bytes_to_tensor():
    pixels = torch.arange(256, dtype=torch.uint8)
    x = bytes_to_tensor(pixels)
    assert x.dtype == torch.float32 and x[0] == -1 and x[-1] == 1 and x[128] > 0
    assert torch.equal(x, normalize(pixels.float() / 255))
    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # (H, W, C)
    assert torch.equal(uint8_to_tensor(array), bytes_to_tensor(torch.from_numpy(array).permute(2, 0, 1)))
    assert tuple(uint8_to_tensor(array[:, :, 0]).shape) == (1, 2, 3)  # grey (H, W) -> (1, H, W)


def test_grey_to_rgb():
    grey = torch.randn(2, 1, 4, 5)
    rgb = grey_to_rgb(grey)
    assert tuple(rgb.shape) == (2, 3, 4, 5)
    assert all(torch.equal(rgb[:, c : c + 1], grey) for c in range(3))
    colour = torch.randn(2, 3, 4, 5)
    assert torch.equal(grey_to_rgb(colour), colour)
    with pytest.raises(ValueError, match=r"got shape \(2, 4, 4, 5\)"):
        grey_to_rgb(torch.randn(2, 4, 4, 5))


def test_image_of_and_first_images():
    x = torch.randn(1, 4, 4)
    assert image_of(x) is x
    assert image_of((x, 3)) is x
    assert image_of([x, torch.tensor(3)]) is x  # a collated DataLoader batch
    labelled = [(torch.full((1, 4, 4), float(i)), i) for i in range(5)]
    batch = first_images(labelled, 3)
    assert tuple(batch.shape) == (3, 1, 4, 4) and batch[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert first_images([x, x], 10).shape[0] == 2  # fewer when the dataset is shorter
