"""Self-checks for the coding exercises of chapter 3: your own straight-through estimator.

Book: chapter "Vector quantization and the straight-through estimator".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.quantize import straight_through

CHAPTER = "Vector quantization and the straight-through estimator"


def check_straight_through(fn: Callable) -> list[Comparison]:
    """Exercise 3.1: ``fn(z, z_q)`` must equal :func:`vqlearn.quantize.straight_through`, forward and backward.

    ``z, z_q: (B, D, h, w) -> (B, D, h, w)``, the value of ``z_q``; a random upstream gradient must reach ``z``
    unchanged and nothing may reach ``z_q`` (vqlearn's STE detaches it). Prints the comparison; raises
    ``ExerciseMismatch`` on a difference.

    Book: chapter "Vector quantization and the straight-through estimator".
    """

    def make_inputs(generator: torch.Generator) -> dict:
        return {"z": torch.randn(2, 3, 4, 5, generator=generator), "z_q": torch.randn(2, 3, 4, 5, generator=generator)}

    return check_function("3.1", CHAPTER, fn, straight_through, make_inputs, grad_wrt=("z", "z_q"))
