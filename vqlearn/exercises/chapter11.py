"""Chapter 11's self-checks: the vanilla discriminator loss written stably, and the hinge loss with a margin.

Book: chapter "Hinge and vanilla GAN losses".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.losses import hinge_d_loss, vanilla_d_loss

CHAPTER = "Hinge and vanilla GAN losses"


def confident_logits(generator: torch.Generator) -> dict:
    """PatchGAN-shaped logits ``(2, 1, 6, 6)`` of a confident discriminator: normal with standard deviation 10,
    so some are beyond ±17, where ``sigmoid`` rounds to exactly 0 or 1 in float32."""
    return {"logits_real": 10 * torch.randn(2, 1, 6, 6, generator=generator),
            "logits_fake": 10 * torch.randn(2, 1, 6, 6, generator=generator)}


def check_vanilla_d_loss(my_vanilla_d_loss: Callable) -> list[Comparison]:
    """Exercise 11.1: compare ``my_vanilla_d_loss(logits_real, logits_fake)`` with
    :func:`vqlearn.losses.vanilla_d_loss`.

    ``logits_real, logits_fake: (2, 1, 6, 6)`` -> a scalar, ``0.5 * (mean(-log sigmoid(D(x))) +
    mean(-log(1 - sigmoid(D(x_hat)))))``; the logits are large (standard deviation 10), so a version that takes
    the logarithm of a sigmoid overflows to ``inf`` and sends ``nan`` gradients. The value and the gradients with
    respect to both inputs are compared on three random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Hinge and vanilla GAN losses".
    """
    return check_function("11.1", CHAPTER, my_vanilla_d_loss, vanilla_d_loss, confident_logits,
                          grad_wrt=("logits_real", "logits_fake"))


def hinge_d_loss_margin_reference(logits_real: torch.Tensor, logits_fake: torch.Tensor, m: float) -> torch.Tensor:
    """The hinge loss with margin ``m > 0``: ``0.5 * (mean(relu(m - D(x))) + mean(relu(m + D(x_hat))))``.

    Logits of any shape -> scalar. Computed with vqlearn's :func:`~vqlearn.losses.hinge_d_loss` (margin 1) on the
    logits divided by ``m``, times ``m``: ``max(0, m - l) = m * max(0, 1 - l / m)``.
    """
    return m * hinge_d_loss(logits_real / m, logits_fake / m)


def margin_inputs(generator: torch.Generator) -> dict:
    """Logits ``(2, 1, 6, 6)`` with standard deviation 3 and a margin ``m`` drawn from (0.1, 0.5, 2, 5)."""
    margin = (0.1, 0.5, 2.0, 5.0)[int(torch.randint(0, 4, (1,), generator=generator))]
    return {"logits_real": 3 * torch.randn(2, 1, 6, 6, generator=generator),
            "logits_fake": 3 * torch.randn(2, 1, 6, 6, generator=generator), "m": margin}


def check_hinge_d_loss_margin(hinge_d_loss_margin: Callable) -> list[Comparison]:
    """Exercise 11.2: compare ``hinge_d_loss_margin(logits_real, logits_fake, m)`` with
    :func:`hinge_d_loss_margin_reference`.

    ``logits_real, logits_fake: (2, 1, 6, 6)``, ``m`` a float margin -> a scalar,
    ``0.5 * (mean(max(0, m - D(x))) + mean(max(0, m + D(x_hat))))`` (``m = 1`` is
    :func:`vqlearn.losses.hinge_d_loss`). The value and the gradients with respect to both logits are compared
    on five random trials with margins between 0.1 and 5. Raises :class:`~vqlearn.exercises.ExerciseMismatch`
    on a difference.

    Book: chapter "Hinge and vanilla GAN losses".
    """
    return check_function("11.2", CHAPTER, hinge_d_loss_margin, hinge_d_loss_margin_reference, margin_inputs,
                          grad_wrt=("logits_real", "logits_fake"), trials=5)
