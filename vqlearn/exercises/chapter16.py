"""Chapter 16's self-checks: the rotation trick's gradient from its formula, and FSQ's code numbers read back.

Book: chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.quantize import estimator_gradient, rotation_trick
from vqlearn.scalar_quantize import FSQ

CHAPTER = "Quantizers after VQ-GAN"

FSQ_EXERCISE_LEVELS = ([8, 5, 5, 5], [7, 5, 5, 5, 5], [2, 3, 4])  # the paper's 2^10, 2^12, and a small odd mix


def reference_rotation_gradient(z: torch.Tensor, z_q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """What the rotation trick sends to ``z`` for the gradient ``g`` at ``z_q``, by autograd through
    :func:`vqlearn.quantize.rotation_trick`: ``(N, D)`` for ``z, z_q, g: (N, D)``."""
    return estimator_gradient(rotation_trick, z, z_q, g)


def check_rotation_gradient(my_rotation_gradient: Callable) -> list[Comparison]:
    """Exercise 16.1: ``my_rotation_gradient(z, z_q, g)`` must equal ``lambda R^T g`` as autograd computes it
    through :func:`vqlearn.quantize.rotation_trick` (Fifty et al. 2025, sec. 4.2).

    ``z, z_q, g: (N, D) -> (N, D)``. Rows of ``z_q`` are drawn near, far from and opposite to their ``z``, in
    2 and 16 dimensions. Prints the comparison; raises ``ExerciseMismatch`` on a difference.

    Book: chapter "Quantizers after VQ-GAN".
    """
    trial = {"count": 0}

    def make_inputs(generator: torch.Generator) -> dict:
        dim = (2, 16, 16)[trial["count"] % 3]
        trial["count"] += 1
        z = torch.randn(6, dim, generator=generator)
        spread = torch.tensor([0.1, 0.5, 1.0, 2.0, 3.0, 1.0])[:, None]
        flip = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, -0.5])[:, None]
        z_q = z * flip + spread * torch.randn(6, dim, generator=generator)
        return {"z": z, "z_q": z_q, "g": torch.randn(6, dim, generator=generator)}

    return check_function("16.1", CHAPTER, my_rotation_gradient, reference_rotation_gradient, make_inputs)


def reference_fsq_codes(indices: torch.Tensor, levels) -> torch.Tensor:
    """vqlearn's reading of code numbers: :meth:`vqlearn.scalar_quantize.FSQ.indices_to_codes` for ``levels``."""
    return FSQ(levels).indices_to_codes(indices)


def check_fsq_codes(my_fsq_codes: Callable) -> list[Comparison]:
    """Exercise 16.2: ``my_fsq_codes(indices, levels)`` must turn FSQ code numbers back into grid values as
    :meth:`vqlearn.scalar_quantize.FSQ.indices_to_codes` does (mixed radix, first channel least significant).

    ``indices: (B, h, w)`` random code numbers for levels ``[8, 5, 5, 5]``, ``[7, 5, 5, 5, 5]`` and ``[2, 3, 4]``
    -> ``(B, h, w, len(levels))`` values in ``[-1, 1]``. Prints the comparison; raises ``ExerciseMismatch`` on a
    difference.

    Book: chapter "Quantizers after VQ-GAN".
    """
    trial = {"count": 0}

    def make_inputs(generator: torch.Generator) -> dict:
        levels = FSQ_EXERCISE_LEVELS[trial["count"] % len(FSQ_EXERCISE_LEVELS)]
        trial["count"] += 1
        indices = torch.randint(0, FSQ(levels).num_codes, (2, 3, 4), generator=generator)
        return {"indices": indices, "levels": list(levels)}

    return check_function("16.2", CHAPTER, my_fsq_codes, reference_fsq_codes, make_inputs)
