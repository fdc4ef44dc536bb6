"""Chapter 9's self-check: taming's Downsample, written with torch.nn.functional.

Book: chapter "The VQ-GAN encoder and decoder".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.blocks import Downsample
from vqlearn.exercises.core import Comparison, check_function

CHAPTER = "The VQ-GAN encoder and decoder"


def downsample_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """:class:`vqlearn.blocks.Downsample` (``with_conv=True``) with the given 3x3 weights.

    ``x: (B, C, H, W)``, ``weight: (C, C, 3, 3)``, ``bias: (C,)`` -> ``(B, C, H/2, W/2)``: one zero row at the
    bottom and one zero column at the right, then a stride-2 3x3 convolution (taming's
    ``taming/modules/diffusionmodules/model.py``). Gradients reach ``x``, ``weight`` and ``bias``.
    """
    layer = Downsample(x.shape[1], with_conv=True)
    del layer.conv.weight, layer.conv.bias  # use the given tensors, so that their gradients are the layer's
    layer.conv.weight, layer.conv.bias = weight, bias
    return layer(x)


def downsample_inputs(generator: torch.Generator) -> dict:
    """``x: (2, 3, 8, 6)``, ``weight: (3, 3, 3, 3)``, ``bias: (3,)``: non-square, so swapped axes show."""
    return {"x": torch.randn(2, 3, 8, 6, generator=generator), "weight": torch.randn(3, 3, 3, 3, generator=generator),
            "bias": torch.randn(3, generator=generator)}


def check_downsample(my_downsample: Callable) -> list[Comparison]:
    """Exercise 9.2: compare ``my_downsample(x, weight, bias)`` with :func:`downsample_reference`.

    ``x: (2, 3, 8, 6)``, ``weight: (3, 3, 3, 3)``, ``bias: (3,)`` -> ``(2, 3, 4, 3)``; outputs and the gradients
    with respect to ``x``, ``weight`` and ``bias`` on three random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "The VQ-GAN encoder and decoder".
    """
    return check_function("9.2", CHAPTER, my_downsample, downsample_reference, downsample_inputs,
                          grad_wrt=("x", "weight", "bias"))
