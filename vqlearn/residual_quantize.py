"""Residual vector quantization: a ladder of codebooks, each quantizing what the previous ones missed.

SoundStream (Zeghidour et al. 2021, sec. 3.3, algorithm 1) and RQ-VAE (Lee et al.
2022, sec. 3.1): with ``depth`` codebooks,

    r_0 = z,      k_i = argmin_j ||r_i - e^i_j||^2,      r_{i+1} = r_i - e^i_{k_i}
    z_q = sum_{i < depth} e^i_{k_i}

so every position gets ``depth`` codes, ``depth * log2(K)`` bits, and each level
refines the sum. With *quantizer dropout* (SoundStream sec. 3.3) training uses only
the first ``n`` levels, ``n`` drawn uniformly from ``1..depth``, so one model
decodes at every bit rate: ``lookup(codes[:, :n])`` is the ``n``-level reconstruction.

Book: chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vqlearn.quantize import Quantized, make_codebook, straight_through
from vqlearn.runtime import is_distributed

RESIDUAL_LEVEL_KINDS = ("vq", "ema")  # the codebook each level is
RESIDUAL_REFUSED_OPTIONS = ("lookup_dim", "l2_normalize", "rotation_trick")


class ResidualVQ(nn.Module):
    """``depth`` codebooks applied to successive residuals; codes ``(B, depth, h, w)``.

    Args:
        num_codes: codes K of *each* level's codebook.
        dim: channels of the latents.
        depth: number of levels (codebooks).
        beta: commitment weight of every level.
        level_kind: each level's codebook, ``"vq"`` (learned) or ``"ema"``; built by
            :func:`vqlearn.quantize.make_codebook` with ``**options`` (``legacy`` for
            ``vq``; ``decay``, ``eps`` for ``ema``). Not ``lookup_dim``, ``l2_normalize``
            or ``rotation_trick``: a residual must be subtracted in the latent space
            itself, and the decoder's gradient passes the sum, not the levels.
        quantizer_dropout: in training, use only the first ``n ~ U{1..depth}`` levels
            (one ``n`` per batch, as ``vector-quantize-pytorch`` does; SoundStream
            draws one per example). See :meth:`levels_used`.

    Level ``i`` is ``quantizers[i]`` (a :class:`~vqlearn.quantize.VectorQuantizer` or
    :class:`~vqlearn.quantize.EMAVectorQuantizer`) and receives the residual ``r_i``,
    with the earlier levels' codes treated as constants (``r_{i+1} = r_i - sg[e_{k_i}]``).
    The loss is the sum of the levels' losses, each the codebook + commitment term of
    its own level on its own residual. The output is ``z + sg[sum_i e_{k_i} - z]``: the
    value is the sum of the chosen codes, and the decoder's gradient reaches the
    encoder once, unchanged (the straight-through estimator on the sum;
    ``vector-quantize-pytorch`` adds up each level's straight-through output, which
    passes ``depth`` times the gradient).

    Levels beyond the ``n`` used in a dropout step run without gradients (no loss,
    no EMA update, not in the output) so that every level still reports its code:
    the indices are always ``(B, depth, h, w)``. (Under DistributedDataParallel their
    parameters enter the loss times zero, so DDP finds every parameter used.) ``perplexity`` is ``(depth,)``, one
    per level. A model with a residual quantizer lists the levels as its
    ``quantizers``, so the trainer, ``evaluate`` and the codebook tools
    (``CodebookUsage``, k-means initialisation, dead-code restarts) treat each level
    as a codebook of its own.

    ``forward: (B, dim, h, w) -> Quantized``.
    Book: chapter "Quantizers after VQ-GAN".
    """

    def __init__(self, num_codes: int, dim: int, depth: int = 4, beta: float = 0.25, level_kind: str = "vq",
                 quantizer_dropout: bool = False, **options):
        super().__init__()
        if depth < 1:
            raise ValueError(f"ResidualVQ `depth` must be >= 1 (codebooks), got {depth}")
        if level_kind not in RESIDUAL_LEVEL_KINDS:
            raise ValueError(f"ResidualVQ `level_kind` (each level's codebook) must be one of {RESIDUAL_LEVEL_KINDS}, "
                             f"got {level_kind!r}")
        for name in RESIDUAL_REFUSED_OPTIONS:
            if options.get(name):
                raise ValueError(f"ResidualVQ does not take `{name}` (residuals are subtracted in the latent space "
                                 f"and the gradient passes the sum of the levels); remove it")
        self.num_codes = num_codes
        self.dim = dim
        self.depth = depth
        self.quantizer_dropout = quantizer_dropout
        self.dropout_draws = 0  # quantizer-dropout draws so far: the seed of the next one
        levels = [make_codebook(level_kind, num_codes, dim, beta, **options) for _ in range(depth)]
        self.quantizers = nn.ModuleList(levels)

    @property
    def num_indices(self) -> int:
        """How many index values each level's codes take."""
        return self.quantizers[0].num_indices

    def levels_used(self) -> int:
        """How many levels this forward pass uses: all, or ``n ~ U{1..depth}`` with dropout in training.

        The draw is seeded by the number of draws so far (:meth:`get_extra_state`, saved with the
        weights), not by the global RNG: a resumed run draws the same ``n`` as an uninterrupted one,
        and every DDP rank the same ``n``.
        """
        if not (self.training and self.quantizer_dropout):
            return self.depth
        generator = torch.Generator().manual_seed(self.dropout_draws)
        self.dropout_draws += 1
        return int(torch.randint(1, self.depth + 1, (), generator=generator))

    def get_extra_state(self) -> torch.Tensor:
        """The dropout draws so far, stored in the state dict (as ``quantize._extra_state``)."""
        return torch.tensor(self.dropout_draws)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.dropout_draws = int(state)

    def forward(self, z: torch.Tensor) -> Quantized:
        used = self.levels_used()
        residual = z
        total = torch.zeros_like(z)
        loss = z.new_zeros(())
        codes, perplexities = [], []
        for i, level in enumerate(self.quantizers):
            with torch.set_grad_enabled(torch.is_grad_enabled() and i < used):
                q = level(residual)
            value = level.lookup(q.indices).detach()  # e_{k_i} exactly, a constant for the next levels
            if i < used:
                total = total + value
                loss = loss + q.loss
            elif is_distributed():  # DistributedDataParallel needs every parameter in the graph: add a zero
                loss = loss + sum(0.0 * p.sum() for p in level.parameters())
            residual = residual - value
            codes.append(q.indices)
            perplexities.append(q.perplexity)
        z_q = straight_through(z, total)
        return Quantized(z_q, loss, torch.stack(codes, dim=1), torch.stack(perplexities))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, n, h, w)`` with ``1 <= n <= depth`` -> ``(B, dim, h, w)``, the sum of the
        first ``n`` levels' codes (``n < depth``: the lower bit rate of quantizer dropout)."""
        if indices.dim() != 4 or not 1 <= indices.shape[1] <= self.depth:
            raise ValueError(f"ResidualVQ codes must be (B, n, h, w) with 1 <= n <= depth={self.depth}, "
                             f"got shape {tuple(indices.shape)}")
        return sum(level.lookup(indices[:, i]) for i, level in enumerate(self.quantizers[: indices.shape[1]]))
