"""Looking inside the bottleneck attention: its weight matrix and what it costs.

:class:`vqlearn.blocks.AttnBlock` never hands out its attention weights (it
calls ``F.scaled_dot_product_attention``, which may never build them). The
book recomputes them here from the block's own layers, and counts what the
three attention types of :func:`vqlearn.blocks.make_attn` cost at a given
resolution; :func:`allocated_bytes` measures what one forward pass allocates.

Book: chapter "Attention in the bottleneck".
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange

from vqlearn.blocks import ATTENTION_TYPES, AttnBlock


def attention_weights(block: AttnBlock, x: torch.Tensor) -> torch.Tensor:
    """The softmax weights an :class:`~vqlearn.blocks.AttnBlock` applies to ``x``.

    ``x: (B, C, H, W) -> (B, HW, HW)``, positions flattened row-major
    (``p = row * W + col``). Row ``i`` is the distribution of query position
    ``i`` over the key positions ``j``: non-negative, summing to 1. These are
    the weights of :func:`vqlearn.blocks.attention_bmm` (seed 001's ``w_``
    before its transpose), recomputed from the block's ``norm``, ``q`` and ``k``.
    """
    h = block.norm(x)
    q = rearrange(block.q(h), "b c h w -> b (h w) c")
    k = rearrange(block.k(h), "b c h w -> b (h w) c")
    return (q @ k.transpose(1, 2) * q.shape[-1] ** -0.5).softmax(dim=-1)


@dataclass(frozen=True)
class AttentionCost:
    """What one attention block costs on one ``(C, H, W)`` feature map (batch size 1).

    ``multiply_adds``: of the 1x1 convolutions and the two attention matmuls
    (GroupNorm, softmax and the residual add are left out: they are O(HW*C)).
    ``matrix_elements``: the mixing matrix the block builds, ``(HW)^2`` for
    ``vanilla`` (query x key positions), ``C^2`` for ``linear`` (its context),
    0 for ``none``. ``matrix_bytes``: the same in bytes for a given element size.
    """

    attn_type: str
    positions: int
    channels: int
    multiply_adds: int
    matrix_elements: int
    bytes_per_element: int = 4

    @property
    def matrix_bytes(self) -> int:
        return self.matrix_elements * self.bytes_per_element


def attention_cost(height: int, width: int, channels: int, attn_type: str = "vanilla",
                   bytes_per_element: int = 4) -> AttentionCost:
    """Multiply-adds and mixing-matrix size of ``make_attn(channels, attn_type)`` at ``height x width``.

    With ``N = HW`` positions and ``C`` channels:

    - ``vanilla``: four 1x1 convs (q, k, v, proj_out) ``4 N C^2``, plus ``Q K^T`` and
      ``W V`` at ``N^2 C`` each; the matrix has ``N^2`` elements.
    - ``linear``: the same four convs (``to_qkv`` is three of them), plus the context
      ``K V^T`` and its read-out at ``N C^2`` each; the matrix has ``C^2`` elements.
    - ``none``: the identity, free.

    Multiply the results by the batch size for a batch. ``torch.utils.flop_counter``
    counts ``2 * multiply_adds`` FLOPs for these blocks (tests/test_attention.py).
    """
    if attn_type not in ATTENTION_TYPES:
        raise ValueError(f"attn_type must be one of {ATTENTION_TYPES}, got {attn_type!r}")
    n, c = height * width, channels
    if attn_type == "vanilla":
        macs, elements = 4 * n * c * c + 2 * n * n * c, n * n
    elif attn_type == "linear":
        macs, elements = 4 * n * c * c + 2 * n * c * c, c * c
    else:
        macs, elements = 0, 0
    return AttentionCost(attn_type, n, c, macs, elements, bytes_per_element)


@contextlib.contextmanager
def _stderr_discarded():
    """Discard what C++ code writes to file descriptor 2 (the profiler logs its start and stop there)."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def allocated_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes the CPU operations of one forward pass ``module(x)`` allocate, measured by PyTorch's profiler.

    The sum over operations of the memory each allocates (``self_cpu_memory_usage``),
    without autograd. For an attention block this includes the ``(B, HW, HW)`` scores
    and weights, so it grows with ``(HW)^2`` once they dominate.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), _stderr_discarded(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as run:
        module(x)
    return sum(event.self_cpu_memory_usage for event in run.key_averages() if event.self_cpu_memory_usage > 0)
