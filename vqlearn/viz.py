"""Image grids: what the trainer saves to ``samples/`` and what the book shows.

Book: every chapter that shows reconstructions.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from vqlearn.images import denormalize


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Originals and reconstructions (both ``(B, C, H, W)`` in [-1, 1]) in alternating rows of ``nrow``.

    Returns a ``(3, H', W')`` grid in [0, 1] (torchvision's ``make_grid`` repeats grey
    images into three equal channels): row 1 originals 1..nrow, row 2 their
    reconstructions, row 3 originals nrow+1..2*nrow, and so on.
    """
    a, b = denormalize(originals.detach().cpu()), denormalize(reconstructions.detach().cpu())
    rows = []
    for start in range(0, len(a), nrow):
        chunk_a, chunk_b = a[start : start + nrow], b[start : start + nrow]
        missing = nrow - len(chunk_a)
        if missing and start:  # pad the last row so rows stay aligned
            blank = torch.ones(missing, *a.shape[1:])
            chunk_a, chunk_b = torch.cat([chunk_a, blank]), torch.cat([chunk_b, blank])
        rows += [chunk_a, chunk_b]
    return make_grid(torch.cat(rows), nrow=min(nrow, len(a)), padding=2, pad_value=1.0)


def to_pil(grid: torch.Tensor) -> Image.Image:
    """``(C, H, W)`` in [0, 1] (C = 1 or 3) -> a PIL image."""
    array = (grid.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    if array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))


def save_image(grid: torch.Tensor, path: str | os.PathLike) -> None:
    """Write a ``(C, H, W)`` grid in [0, 1] as a PNG (creating the folder)."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    to_pil(grid).save(path)
