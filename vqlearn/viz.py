"""Image grids: what the trainer saves to ``samples/`` and what the book shows.

Book: every chapter that shows reconstructions.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from vqlearn.images import denormalize


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``(B, C, H, W)`` images in [0, 1] into one ``(C, rows*(H+p)+p, nrow*(W+p)+p)`` image."""
    b, c, h, w = images.shape
    nrow = max(1, min(nrow, b))
    rows = math.ceil(b / nrow)
    grid = images.new_full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(b):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """Originals and reconstructions (both ``(B, C, H, W)`` in [-1, 1]) in alternating rows of ``nrow``.

    Returns a ``(C, H', W')`` grid in [0, 1]: row 1 originals 1..nrow, row 2 their
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
    return make_grid(torch.cat(rows), nrow=min(nrow, len(a)))


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
