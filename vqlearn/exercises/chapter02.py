"""Self-checks for the coding exercises of chapter 2: the KL divergence of a soft posterior to the uniform prior.

Book: chapter "The VQ-VAE".
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.quantize import GumbelQuantizer

CHAPTER = "The VQ-VAE"


def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """vqlearn's ``GumbelQuantizer.kl_to_uniform`` for ``K = logits.shape[1]`` codes, without building a module.

    ``(B, K, h, w)`` logits -> scalar: the mean over the ``B h w`` latents of
    ``KL(softmax(logits) || uniform(K)) = sum_k q_k log(q_k K)``.
    """
    return GumbelQuantizer.kl_to_uniform(SimpleNamespace(num_codes=logits.shape[1]), logits)


kl_to_uniform.__module__, kl_to_uniform.__qualname__ = "vqlearn.quantize", "GumbelQuantizer.kl_to_uniform"


def check_kl_to_uniform(fn: Callable) -> list[Comparison]:
    """Exercise 2.2: ``fn(logits)`` must equal vqlearn's ``GumbelQuantizer.kl_to_uniform``, value and gradient.

    ``logits: (B, K, h, w)`` (K varies between trials, from 5 to 16; logits from nearly flat to sharp) ->
    scalar, the KL per latent averaged over the ``B h w`` latents. Prints the comparison; raises
    ``ExerciseMismatch`` on a difference.

    Book: chapter "The VQ-VAE".
    """

    def make_inputs(generator: torch.Generator) -> dict:
        num_codes = int(torch.randint(5, 17, (1,), generator=generator))
        sharpness = float(torch.empty(1).uniform_(0.1, 5.0, generator=generator))
        return {"logits": sharpness * torch.randn(2, num_codes, 3, 4, generator=generator)}

    return check_function("2.2", CHAPTER, fn, kl_to_uniform, make_inputs, grad_wrt=("logits",))
