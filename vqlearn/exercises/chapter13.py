"""Self-checks for the exercises of the chapter on the adaptive weight λ (VQ-GAN eq. 7).

Book: chapter "The adaptive weight λ".
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.losses import calculate_adaptive_weight

CHAPTER = "The adaptive weight λ"

# The toy decoder of the check: conv 3x3 (4 -> 6 channels), ReLU, conv 3x3 (6 -> 3 channels). Its two weights are
# views of ONE flat tensor, so the norm of the gradient over the list [w1, w2] is the norm of the gradient with
# respect to the flat tensor, which vqlearn's single-tensor function computes.
_SHAPES = ((6, 4, 3, 3), (3, 6, 3, 3))
# One trial per case: (which parameters, GAN gradient scale, reconstruction scale, disc_weight).
_CASES = (
    ("all", 1.0, 1.0, 0.8),      # both layers, ordinary gradients
    ("last", 1.0, 1.0, 0.8),     # the last layer only: eq. 7 as VQ-GAN computes it
    ("all", 0.0, 100.0, 0.8),    # a silent GAN term and a large reconstruction gradient: the clamp at 1e4 acts
    ("all", 3.0, 0.5, 1.0),      # a loud GAN term, disc_weight 1
)


def _toy_losses(flat: torch.Tensor, features: torch.Tensor, target: torch.Tensor, critic: torch.Tensor,
                gan_scale: float, rec_scale: float):
    """``flat`` (228,) -> the two conv weights (views of it), L_rec (L1) and L_GAN (a linear critic's score)."""
    sizes = [torch.Size(shape).numel() for shape in _SHAPES]
    w1, w2 = (part.view(shape) for part, shape in zip(flat.split(sizes), _SHAPES))
    x_hat = F.conv2d(torch.relu(F.conv2d(features, w1, padding=1)), w2, padding=1)  # (B, 3, H, W)
    nll_loss = rec_scale * (target - x_hat).abs().mean()
    g_loss = -gan_scale * (critic * x_hat).mean()
    return (w1, w2), nll_loss, g_loss


def check_adaptive_weight_over(fn: Callable, trials: int = len(_CASES)) -> list[Comparison]:
    """Exercise 13.1: ``fn(nll_loss, g_loss, params, disc_weight)`` against :func:`calculate_adaptive_weight`.

    ``fn`` computes eq. 7 with both gradient norms taken over a list of tensors ``params`` together,
    ``disc_weight * clamp(||d nll/d params|| / (||d g/d params|| + 1e-4), 0, 1e4)``, detached, a 0-dim tensor.
    The check builds a two-layer convolutional toy decoder (features ``(2, 4, 6, 6)`` -> reconstruction
    ``(2, 3, 6, 6)``) whose weights ``w1 (6, 4, 3, 3)`` and ``w2 (3, 6, 3, 3)`` are views of one flat tensor, and
    compares ``fn(nll, g, [w1, w2], disc_weight)`` (or ``[w2]``, the last layer alone) with vqlearn's
    ``calculate_adaptive_weight(nll, g, flat_or_w2, disc_weight)``. One trial has a silent GAN term, where the
    clamp at 1e4 decides the result.

    Book: chapter "The adaptive weight λ".
    """
    cases = iter(_CASES * trials)

    def make_inputs(generator: torch.Generator) -> dict:
        which, gan_scale, rec_scale, disc_weight = next(cases)
        numel = sum(torch.Size(shape).numel() for shape in _SHAPES)
        return {"flat": 0.3 * torch.randn(numel, generator=generator),
                "features": torch.randn(2, 4, 6, 6, generator=generator),
                "target": torch.randn(2, 3, 6, 6, generator=generator),
                "critic": torch.randn(2, 3, 6, 6, generator=generator),
                "gan_scale": gan_scale, "rec_scale": rec_scale, "disc_weight": disc_weight, "which": which}

    @functools.wraps(fn)
    def mine(flat, features, target, critic, gan_scale, rec_scale, disc_weight, which):
        flat = flat.detach().requires_grad_()
        (w1, w2), nll_loss, g_loss = _toy_losses(flat, features, target, critic, gan_scale, rec_scale)
        return fn(nll_loss, g_loss, [w1, w2] if which == "all" else [w2], disc_weight)

    @functools.wraps(calculate_adaptive_weight)
    def reference(flat, features, target, critic, gan_scale, rec_scale, disc_weight, which):
        flat = flat.detach().requires_grad_()
        (_, w2), nll_loss, g_loss = _toy_losses(flat, features, target, critic, gan_scale, rec_scale)
        return calculate_adaptive_weight(nll_loss, g_loss, flat if which == "all" else w2, disc_weight)

    return check_function("13.1", CHAPTER, mine, reference, make_inputs, trials=trials)
