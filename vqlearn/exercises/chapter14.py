"""Self-checks for the exercises of the chapter on training a VQ-GAN.

Book: chapter "Training a VQ-GAN".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.spectral import high_frequency_energy

CHAPTER = "Training a VQ-GAN"

# One trial per case: (B, C, H, W) and the cutoff. Square and not, even and odd sizes, one and three channels;
# 0.25 on an 8x8 grid puts DFT bins exactly on the cutoff (those are not "above" it).
_CASES = (
    ((2, 3, 8, 8), 0.25),
    ((3, 1, 7, 9), 0.3),
    ((2, 3, 12, 10), 0.125),
    ((1, 3, 16, 16), 0.4),
)


def check_high_frequency_energy(fn: Callable, trials: int = len(_CASES)) -> list[Comparison]:
    """Exercise 14.1: ``fn(images, cutoff)`` against :func:`vqlearn.spectral.high_frequency_energy`.

    ``images``: ``(B, C, H, W)`` random images in [0, 1]; ``cutoff`` in cycles per pixel. ``fn`` returns ``(B,)``:
    per image, the mean square (over positions, summed over channels) of its ideal high-pass part, i.e. the power
    of the DFT bins whose radial frequency ``sqrt(fy^2 + fx^2)`` is strictly above ``cutoff``. The trials use
    square and non-square, even and odd sizes, one and three channels, and a cutoff that falls exactly on bins.

    Book: chapter "Training a VQ-GAN".
    """
    cases = iter(_CASES * trials)

    def make_inputs(generator: torch.Generator) -> dict:
        shape, cutoff = next(cases)
        return {"images": torch.rand(shape, generator=generator), "cutoff": cutoff}

    return check_function("14.1", CHAPTER, fn, high_frequency_energy, make_inputs, trials=trials)
