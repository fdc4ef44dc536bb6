"""Chapter 7's self-check: GroupNorm written by hand.

Book: chapter "GroupNorm".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.normsets import normalize_by_sets, statistics_sets

CHAPTER = "GroupNorm"


def group_norm_reference(x: torch.Tensor, num_groups: int, gamma: torch.Tensor, beta: torch.Tensor,
                         eps: float = 1e-5) -> torch.Tensor:
    """GroupNorm from vqlearn's statistics sets (Wu & He 2018, §3.1), with a per-channel affine.

    ``x: (N, C, H, W)``, ``gamma, beta: (C,)`` -> ``(N, C, H, W)``: each sample's ``num_groups`` groups of
    ``C / num_groups`` consecutive channels are normalised over their channels and positions with the biased
    variance, then channel ``c`` is scaled by ``gamma[c]`` and shifted by ``beta[c]`` (``nn.GroupNorm``'s
    computation, done by :func:`vqlearn.normsets.normalize_by_sets` in float64).
    """
    n, c, h, w = x.shape
    normalised = normalize_by_sets(x, statistics_sets("group", (n, c, h * w), num_groups), eps)
    return normalised * gamma[None, :, None, None] + beta[None, :, None, None]


def group_norm_inputs(generator: torch.Generator) -> dict:
    """A ``(2, 6, 3, 4)`` input with mean 1 and std 3, a random group count among 1, 2, 3, 6, and random
    ``gamma, beta: (6,)``."""
    groups = (1, 2, 3, 6)[int(torch.randint(0, 4, (1,), generator=generator))]
    return {"x": torch.randn(2, 6, 3, 4, generator=generator) * 3 + 1, "num_groups": groups,
            "gamma": torch.randn(6, generator=generator), "beta": torch.randn(6, generator=generator)}


def check_group_norm(my_group_norm: Callable) -> list[Comparison]:
    """Exercise 7.1: compare ``my_group_norm(x, num_groups, gamma, beta)`` with :func:`group_norm_reference`.

    ``x: (2, 6, 3, 4)``, ``gamma, beta: (6,)``, ``num_groups`` in {1, 2, 3, 6} (1 is LayerNorm's set, 6
    InstanceNorm's) -> ``(2, 6, 3, 4)``; outputs and the gradients with respect to ``x``, ``gamma`` and ``beta``
    are compared on five random trials. Raises :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "GroupNorm".
    """
    return check_function("7.1", CHAPTER, my_group_norm, group_norm_reference, group_norm_inputs,
                          grad_wrt=("x", "gamma", "beta"), trials=5)
