"""Chapter 4's self-checks: the codebook and commitment loss, and the perplexity of a code histogram.

Book: chapter "Codebook and commitment losses".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.quantize import batch_perplexity, vq_loss

CHAPTER = "Codebook and commitment losses"


def vq_loss_inputs(generator: torch.Generator) -> dict:
    """Encoder outputs ``z`` and codes ``z_q``, both ``(2, 4, 3, 3)``, and a ``beta`` drawn from [0.1, 2.0] (the
    range the paper tried, §3.2)."""
    z = torch.randn(2, 4, 3, 3, generator=generator)
    z_q = z + 0.5 * torch.randn(2, 4, 3, 3, generator=generator)
    beta = 0.1 + 1.9 * float(torch.rand((), generator=generator))
    return {"z": z, "z_q": z_q, "beta": beta}


def check_vq_loss(my_vq_loss: Callable) -> list[Comparison]:
    """Exercise 4.1: compare ``my_vq_loss(z, z_q, beta)`` with :func:`vqlearn.quantize.vq_loss`, the paper's loss
    (eq. 3: beta on the commitment term, means over elements; ``legacy=False``, its default).

    ``z`` (encoder outputs) and ``z_q`` (their codes): ``(2, 4, 3, 3)``; ``beta`` a float -> a scalar. The value
    and the gradients with respect to ``z`` (the commitment term's) and ``z_q`` (the codebook term's) are
    compared on five random trials, so beta on the wrong term or a missing ``.detach()`` shows up even where
    the value agrees. Raises :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Codebook and commitment losses".
    """
    return check_function("4.1", CHAPTER, my_vq_loss, vq_loss, vq_loss_inputs, grad_wrt=("z", "z_q"),
                          trials=5)


def perplexity_inputs(generator: torch.Generator) -> dict:
    """``indices: (4, 7, 7)`` int64 in ``[0, 64)``, skewed so that a few codes dominate and many are unused
    (as in a collapsing codebook), and ``num_codes = 64``."""
    num_codes = 64
    logits = 1.5 * torch.randn(num_codes, generator=generator)
    indices = torch.multinomial(logits.softmax(0), 4 * 7 * 7, replacement=True, generator=generator)
    return {"indices": indices.view(4, 7, 7), "num_codes": num_codes}


def check_perplexity(my_perplexity: Callable) -> list[Comparison]:
    """Exercise 4.2: compare ``my_perplexity(indices, num_codes)`` with :func:`vqlearn.quantize.batch_perplexity`.

    ``indices: (4, 7, 7)`` code indices in ``[0, num_codes)`` (many codes unused), ``num_codes = 64`` -> a
    scalar, ``exp(entropy)`` of the code histogram. Compared on five random trials (tolerance 1e-4 relative).
    Raises :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Codebook and commitment losses".
    """
    return check_function("4.2", CHAPTER, my_perplexity, batch_perplexity, perplexity_inputs, trials=5)
