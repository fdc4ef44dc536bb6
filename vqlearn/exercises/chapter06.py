"""Chapter 6's self-check: one step of the EMA codebook update.

Book: chapter "VQ-VAE-2: a hierarchy of codes".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.quantize import EMAVectorQuantizer

CHAPTER = "VQ-VAE-2: a hierarchy of codes"


def ema_step(cluster_size: torch.Tensor, embed_avg: torch.Tensor, z_flat: torch.Tensor, indices: torch.Tensor,
             decay: float, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of :meth:`vqlearn.quantize.EMAVectorQuantizer.ema_update` as a function (VQ-VAE appendix A.1).

    ``cluster_size: (K,)`` the counts ``N``, ``embed_avg: (dim, K)`` the sums ``m`` (rosinality's layout),
    ``z_flat: (N, dim)`` vectors assigned to ``indices: (N,)`` -> the new ``(cluster_size (K,), embed_avg
    (dim, K), embed (dim, K))``. The inputs are not modified.
    """
    dim, num_codes = embed_avg.shape
    with torch.random.fork_rng(devices=[]):  # the quantizer draws a random codebook we overwrite: keep the RNG
        quantizer = EMAVectorQuantizer(num_codes, dim, decay=decay, eps=eps)
    quantizer.cluster_size.copy_(cluster_size)
    quantizer.embed_avg.copy_(embed_avg)
    quantizer.ema_update(z_flat.float(), indices)
    return quantizer.cluster_size, quantizer.embed_avg, quantizer.embed


def ema_inputs(generator: torch.Generator) -> dict:
    """``K = 8`` codes of ``dim = 3``: counts ``cluster_size: (8,)`` in ``[0.05, 2]``, sums ``embed_avg: (3, 8)``;
    ``z_flat: (20, 3)`` assigned to ``indices: (20,)`` among the first 6 codes only (codes 6 and 7 go unused);
    ``decay`` in ``[0.8, 0.99]`` and ``eps`` in ``[0.01, 0.1]`` (larger than the quantizer's default 1e-5, so that
    the Laplace smoothing changes the codes by more than the tolerance)."""
    num_codes, dim, n = 8, 3, 20
    return {
        "cluster_size": 0.05 + 1.95 * torch.rand(num_codes, generator=generator),
        "embed_avg": torch.randn(dim, num_codes, generator=generator),
        "z_flat": torch.randn(n, dim, generator=generator),
        "indices": torch.randint(0, num_codes - 2, (n,), generator=generator),
        "decay": 0.8 + 0.19 * float(torch.rand((), generator=generator)),
        "eps": 0.01 + 0.09 * float(torch.rand((), generator=generator)),
    }


def check_ema_update(my_ema_update: Callable) -> list[Comparison]:
    """Exercise 6.1: compare ``my_ema_update(cluster_size, embed_avg, z_flat, indices, decay, eps)`` with
    :func:`ema_step` (vqlearn's ``EMAVectorQuantizer.ema_update``).

    ``cluster_size: (8,)``, ``embed_avg: (3, 8)``, ``z_flat: (20, 3)``, ``indices: (20,)`` (codes 6 and 7
    unused) -> ``(cluster_size (8,), embed_avg (3, 8), embed (3, 8))``, compared on five random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "VQ-VAE-2: a hierarchy of codes".
    """
    return check_function("6.1", CHAPTER, my_ema_update, ema_step, ema_inputs, trials=5)
