"""Chapter 5's self-check: PSNR per image, as the evaluation computes it.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.images import denormalize
from vqlearn.metrics import psnr

CHAPTER = "Training a VQ-VAE"


def image_psnr(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, as :func:`vqlearn.evaluate.evaluate_model` computes it: both ``(B, C, H, W)`` in
    ``[-1, 1]`` are mapped to ``[0, 1]`` and clamped (:func:`vqlearn.images.denormalize`), then
    :func:`vqlearn.metrics.psnr`, ``10 log10(1 / mse)`` with the mse of each image -> ``(B,)``."""
    return psnr(denormalize(images), denormalize(reconstructions))


def psnr_inputs(generator: torch.Generator) -> dict:
    """``images: (4, 1, 8, 8)`` uniform in ``[-1, 1]`` and ``reconstructions`` = images plus noise of a different
    size per image (so each image has its own PSNR), some values outside ``[-1, 1]`` as a decoder's can be."""
    images = 2 * torch.rand(4, 1, 8, 8, generator=generator) - 1
    noise_level = torch.tensor([0.02, 0.05, 0.1, 0.3])[:, None, None, None]
    reconstructions = images + noise_level * torch.randn(4, 1, 8, 8, generator=generator)
    return {"images": images, "reconstructions": reconstructions}


def check_psnr(my_psnr: Callable) -> list[Comparison]:
    """Exercise 5.1: compare ``my_psnr(images, reconstructions)`` with :func:`image_psnr`.

    ``images``, ``reconstructions``: ``(4, 1, 8, 8)`` in ``[-1, 1]`` (the reconstructions overshoot a little)
    -> ``(4,)``, one PSNR in dB per image. Compared on five random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Training a VQ-VAE".
    """
    return check_function("5.1", CHAPTER, my_psnr, image_psnr, psnr_inputs, trials=5)
