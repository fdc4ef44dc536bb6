"""Self-checks for the exercises of the chapter on generating images from tokens.

Book: chapter "Generating images from tokens".
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.prior import CausalSelfAttention, PriorConfig

CHAPTER = "Generating images from tokens"

# One trial per case: (B, T, n_embd, n_head). One position, several heads, one head, odd lengths.
_CASES = (
    (2, 6, 16, 4),
    (3, 9, 12, 3),
    (2, 1, 8, 2),
    (1, 7, 8, 1),
)


def _attention(n_embd: int, n_head: int, generator: torch.Generator) -> CausalSelfAttention:
    """A ``CausalSelfAttention`` (no dropout) with weights drawn from ``generator`` (std 0.3: non-trivial softmax)."""
    with torch.random.fork_rng(devices=[]):  # building the module draws from the global generator; leave it alone
        attn = CausalSelfAttention(PriorConfig(n_embd=n_embd, n_head=n_head, dropout=0.0, block_size=16))
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return attn


def check_causal_self_attention(fn: Callable, trials: int = len(_CASES)) -> list[Comparison]:
    """Exercise 15.1: ``fn(x, attn)`` against :meth:`vqlearn.prior.CausalSelfAttention.forward`.

    ``x``: ``(B, T, n_embd)``; ``attn``: a :class:`CausalSelfAttention` whose weights ``fn`` uses (``attn.qkv``,
    ``attn.proj``, ``attn.n_head``). ``fn`` returns ``(B, T, n_embd)``: masked multi-head attention in which
    position ``t`` attends to positions ``<= t`` only. Outputs and the gradient with respect to ``x`` are compared,
    for several lengths (one of them a single position) and head counts.

    Book: chapter "Generating images from tokens".
    """
    cases = iter(_CASES * trials)

    def make_inputs(generator: torch.Generator) -> dict:
        batch, length, n_embd, n_head = next(cases)
        return {"x": torch.randn(batch, length, n_embd, generator=generator),
                "attn": _attention(n_embd, n_head, generator)}

    @functools.wraps(CausalSelfAttention.forward)
    def reference(x, attn):
        return attn(x)

    return check_function("15.1", CHAPTER, fn, reference, make_inputs, grad_wrt=("x",), trials=trials)
