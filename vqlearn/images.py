"""Pixel conventions, each defined once: the range models see, bytes, grey to RGB, dataset items.

Every model in vqlearn reads and writes float images in ``[-1, 1]``: the
seed's ``Normalize(0.5, 0.5)`` preprocessing, ``x = (p / 255 - 0.5) / 0.5``
for a byte ``p``. :func:`normalize` and :func:`denormalize` go between that
range and ``[0, 1]`` (where plots and the metrics work); :func:`uint8_to_tensor`
turns decoded image files into it. This module imports only torch and NumPy,
so every other module can use it.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


def normalize(x01: torch.Tensor) -> torch.Tensor:
    """``[0, 1] -> [-1, 1]``: the seed's ``Normalize(0.5, 0.5)``, ``(x - 0.5) / 0.5``. Any shape."""
    return (x01 - 0.5) / 0.5


def denormalize(x):
    """``[-1, 1] -> [0, 1]``, clamped: the inverse of :func:`normalize`, for plots and metrics.

    Accepts a tensor or a NumPy array of any shape, e.g. a batch ``(B, C, H, W)``.
    Values outside ``[-1, 1]`` (a decoder overshooting) are clamped. The result
    is at least float32: half, bfloat16 and integer inputs (an autocast
    reconstruction) become float32, float64 stays float64.
    """
    if torch.is_tensor(x):
        x = x.to(torch.promote_types(x.dtype, torch.float32))
        return (x * 0.5 + 0.5).clamp(0.0, 1.0)
    x = np.asarray(x)
    x = x.astype(np.promote_types(x.dtype, np.float32), copy=False)
    return np.clip(x * 0.5 + 0.5, 0.0, 1.0)


def bytes_to_tensor(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels ``0..255`` of any shape -> float32 of the same shape in ``[-1, 1]``."""
    return normalize(pixels.float() / 255)


def uint8_to_tensor(array: np.ndarray) -> torch.Tensor:
    """A decoded image, uint8 ``(H, W)`` or ``(H, W, C)`` -> float32 ``(C, H, W)`` in ``[-1, 1]``."""
    t = torch.from_numpy(np.array(array, dtype=np.uint8))  # a writable copy (PIL's arrays are read-only)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return bytes_to_tensor(t)


def grey_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W) -> (B, 3, H, W)``, the grey channel repeated (a view); RGB ``(B, 3, H, W)`` as it is.

    For networks that only take RGB, such as LPIPS' ImageNet trunk.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected grey or RGB images (B, 1 or 3, H, W), got shape {tuple(x.shape)}")
    return x.expand(-1, 3, -1, -1)


def image_of(item):
    """The image of a dataset item or DataLoader batch that may carry labels.

    ``(image, label)`` (or a list, as a DataLoader collates it) -> ``image``;
    an image tensor -> itself. Works for one item ``(C, H, W)`` and for a
    batch ``(B, C, H, W)`` alike.
    """
    return item[0] if isinstance(item, (tuple, list)) else item


def first_images(dataset: Dataset, n: int) -> torch.Tensor:
    """The images of the first ``n`` items of ``dataset`` (fewer if it is shorter), as a batch ``(n, C, H, W)``."""
    return torch.stack([image_of(dataset[i]) for i in range(min(n, len(dataset)))])
