"""Chapter 8's self-check: multi-head spatial attention.

Book: chapter "Attention in the bottleneck".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.blocks import attention_bmm
from vqlearn.exercises.core import Comparison, check_function

CHAPTER = "Attention in the bottleneck"


def multihead_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head spatial attention as ``heads`` single-head attentions on consecutive channel groups.

    ``q, k, v: (B, C, H, W) -> (B, C, H, W)``. Channels ``[i * C/heads, (i + 1) * C/heads)`` form head ``i``
    (``rearrange(t, "b (n d) h w -> b n (h w) d", n=heads)``); each head is
    :func:`vqlearn.blocks.attention_bmm` on its ``C/heads`` channels, so its scores are scaled by
    ``(C/heads) ** -0.5`` (Vaswani et al. 2017, §3.2.2), and the heads' outputs are concatenated.
    """
    if q.shape[1] % heads:
        raise ValueError(f"heads must divide the channels, got C={q.shape[1]}, heads={heads}")
    groups = zip(q.chunk(heads, dim=1), k.chunk(heads, dim=1), v.chunk(heads, dim=1))
    return torch.cat([attention_bmm(qi, ki, vi) for qi, ki, vi in groups], dim=1)


def multihead_inputs(generator: torch.Generator) -> dict:
    """``q, k, v: (2, 8, 3, 4)`` with scores large enough that the scale matters, and ``heads`` in {1, 2, 4}."""
    heads = (1, 2, 4)[int(torch.randint(0, 3, (1,), generator=generator))]
    q, k, v = (torch.randn(2, 8, 3, 4, generator=generator) * 2 for _ in range(3))
    return {"q": q, "k": k, "v": v, "heads": heads}


def check_multihead_attention(my_multihead_attention: Callable) -> list[Comparison]:
    """Exercise 8.1: compare ``my_multihead_attention(q, k, v, heads)`` with :func:`multihead_attention_reference`.

    ``q, k, v: (2, 8, 3, 4)`` (8 channels on a 3 x 4 grid), ``heads`` in {1, 2, 4} -> ``(2, 8, 3, 4)``; outputs
    and the gradients with respect to ``q``, ``k`` and ``v`` on five random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Attention in the bottleneck".
    """
    return check_function("8.1", CHAPTER, my_multihead_attention, multihead_attention_reference, multihead_inputs,
                          grad_wrt=("q", "k", "v"), trials=5)
