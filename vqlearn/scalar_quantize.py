"""Quantizers without a learned codebook: finite scalar quantization (FSQ) and lookup-free quantization (LFQ).

Both round every channel of the latent on its own to a few fixed values, so the
codebook is *implicit*: each combination of channel values is a code, and a
code's index is the combination read as a number. Nothing is learned in the
quantizer (apart from optional 1x1 projections), so no code can die.

* :class:`FSQ` (Mentzer et al. 2024, "Finite scalar quantization: VQ-VAE made
  simple", sec. 3 and appendix A.1): channel ``i`` bounded by ``tanh`` and
  rounded to ``levels[i]`` values in ``[-1, 1]``; ``prod(levels)`` codes; no
  auxiliary loss at all.
* :class:`LFQ` (Yu et al. 2024, "Language model beats diffusion", MAGVIT-v2,
  sec. 3.1): each channel to ``-1`` or ``+1``; ``2^bits`` codes; an entropy
  penalty keeps every bit in use.

Both take and return the same :class:`vqlearn.quantize.Quantized` as the VQ
codebooks, with ``(B, h, w)`` indices, and convert indices back with ``lookup``.
Their index conventions are those of the papers' code and of
``vector-quantize-pytorch``, so tokens are interchangeable: FSQ numbers codes in
mixed radix with the *first* channel least significant, LFQ reads the bits with
the *first* channel most significant.

Book: chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from vqlearn.quantize import Quantized, batch_perplexity, check_indices, full_precision, straight_through

# The paper's recommended levels for a target codebook size (Mentzer et al. 2024, sec. 4.1, table 1).
FSQ_LEVELS: dict[int, tuple[int, ...]] = {
    2**8: (8, 6, 5),
    2**10: (8, 5, 5, 5),
    2**12: (7, 5, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity gradient backward (the straight-through estimator on rounding)."""
    return straight_through(x, torch.round(x))


class _Projections(nn.Module):
    """1x1 convs ``project_in: dim -> code_dim`` and ``project_out: code_dim -> dim``, or identities
    when ``dim == code_dim``: the encoder's channels to the quantizer's channels and back."""

    def __init__(self, dim: int, code_dim: int):
        super().__init__()
        self.dim = dim
        self.code_dim = code_dim
        if dim != code_dim:
            self.project_in = nn.Conv2d(dim, code_dim, kernel_size=1)
            self.project_out = nn.Conv2d(code_dim, dim, kernel_size=1)
        else:
            self.project_in = self.project_out = nn.Identity()

    def check_input(self, z: torch.Tensor) -> None:
        if z.dim() != 4 or z.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__} expects latents (B, {self.dim}, h, w) (dim={self.dim}), "
                             f"got shape {tuple(z.shape)}")


class FSQ(_Projections):
    """Finite scalar quantization (Mentzer et al. 2024): a fixed grid instead of a codebook.

    Per channel ``i`` with ``L = levels[i]`` values (appendix A.1, the paper's code):

        half_l = (L - 1) (1 - 1e-3) / 2,     offset = 0.5 if L is even else 0,
        shift  = tan(offset / half_l)
        bound(z) = tanh(z + shift) * half_l - offset          in (-L/2, L/2) for even L
        z_hat    = round_ste(bound(z)) / (L // 2)              (straight-through rounding)

    Odd ``L`` gives the values ``{-1, ..., 1}`` in steps of ``1 / (L // 2)``; even ``L``
    gives ``L`` values from ``-1`` to ``1 - 1/(L/2)`` (the offset makes room for the
    extra value; ``shift`` keeps ``bound(0)`` near 0 -- ``atanh`` would make it exactly 0,
    as ``vector-quantize-pytorch`` does; the two differ by < 1e-3 for ``L >= 4``, and only
    ``tan`` is defined for ``L = 2``, whose two values are then ``{-1, 0}``).

    Codes: ``k_i = z_hat_i (L_i // 2) + L_i // 2`` in ``[0, L_i)``, and the index is
    the mixed-radix number ``sum_i k_i * prod_{j < i} L_j`` -- the first channel
    is the least significant digit, as in the paper's code and in
    ``vector-quantize-pytorch``. ``num_codes = prod(levels)``.

    There is no loss (``Quantized.loss`` is 0): the grid cannot collapse and needs
    no codebook or commitment term. If the encoder's channels ``dim`` differ
    from ``len(levels)``, 1x1 convs project in and out (``project_in``/``project_out``).

    ``forward: (B, dim, h, w) -> Quantized`` with ``(B, h, w)`` indices.
    Book: chapter "Quantizers after VQ-GAN".
    """

    def __init__(self, levels, dim: int | None = None, eps: float = 1e-3):
        levels = [int(level) for level in levels]
        if not levels or any(level < 2 for level in levels):
            raise ValueError(f"FSQ `levels` must be a non-empty list of integers >= 2 (values per channel), "
                             f"got {levels}; e.g. levels=[8, 5, 5, 5]")
        super().__init__(dim or len(levels), len(levels))
        self.levels = levels
        self.eps = eps
        self.num_codes = math.prod(levels)
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]  # [1, L0, L0 L1, ...]
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)

    @property
    def num_indices(self) -> int:
        """How many index values ``forward`` can report: ``prod(levels)``."""
        return self.num_codes

    @property
    def half_width(self) -> torch.Tensor:
        """``(len(levels),)``: ``L // 2``, the number of grid steps from 0 to 1."""
        return torch.floor(self._levels / 2)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., len(levels)) -> (...)``, the same shape: each channel squashed into its level range."""
        half_l = (self._levels - 1) * (1 - self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.tan(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., len(levels))`` -> the grid values in ``[-1, 1]``, with a straight-through gradient."""
        return round_ste(self.bound(z)) / self.half_width

    def codes_to_indices(self, z_hat: torch.Tensor) -> torch.Tensor:
        """``(..., len(levels))`` grid values -> ``(...)`` LongTensor of mixed-radix indices."""
        digits = torch.round(z_hat * self.half_width + self.half_width).long()  # k_i in [0, L_i)
        return (digits * self._basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """``(...)`` indices -> ``(..., len(levels))`` grid values in ``[-1, 1]``."""
        digits = (indices[..., None] // self._basis) % self._levels.long()
        return (digits - self.half_width) / self.half_width

    @property
    def codebook(self) -> torch.Tensor:
        """``(num_codes, len(levels))``: the implicit codebook, every grid point in index order."""
        return self.indices_to_codes(torch.arange(self.num_codes, device=self._basis.device))

    def forward(self, z: torch.Tensor) -> Quantized:
        self.check_input(z)
        z = self.project_in(z)
        with full_precision(z.device.type):
            z_hat = self.quantize(rearrange(z.float(), "b c h w -> b h w c"))
            indices = self.codes_to_indices(z_hat.detach())  # (B, h, w)
            z_hat = rearrange(z_hat, "b h w c -> b c h w")
        loss = z_hat.new_zeros(())
        return Quantized(self.project_out(z_hat), loss, indices, batch_perplexity(indices, self.num_codes))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, h, w)`` LongTensor in ``[0, prod(levels))`` -> ``(B, dim, h, w)``."""
        check_indices(indices, self.num_codes)
        return self.project_out(rearrange(self.indices_to_codes(indices), "b h w c -> b c h w"))


class LFQ(_Projections):
    """Lookup-free quantization (MAGVIT-v2, Yu et al. 2024, sec. 3.1): every channel to -1 or +1.

    With ``bits`` channels the implicit codebook is ``{-1, 1}^bits``, ``2^bits`` codes:

        z_hat_i = +1 if z_i > 0 else -1                        (straight-through gradient)
        index   = sum_i [z_i > 0] 2^(bits - 1 - i)             (first channel = most significant bit)

    the index convention of ``vector-quantize-pytorch``'s ``LFQ``. It is FSQ's
    ``levels = [2] * bits`` limit with a different bound (a sign, not a tanh).

    The loss is MAGVIT-v2's entropy penalty plus a commitment term:

        q(c | z) = softmax_c(-||z - c||^2 / entropy_temperature)   over all 2^bits codes c
        entropy  = mean_z H(q(. | z))  -  H(mean_z q(. | z))    (natural log)
        loss     = entropy_weight * entropy + beta * mean((z - sg[z_hat])^2)

    The first term asks each vector to be confidently one code (low per-sample
    entropy), the second asks the batch to spread over all codes (high entropy
    of the average). The per-sample term factorises over the bits; the batch term's
    average over all ``2^bits`` codes costs ``N x 2^bits`` memory: fine up to ~16 bits
    (:meth:`entropy_terms`). ``entropy_temperature=0.01`` is ``vector-quantize-pytorch``'s
    ``inv_temperature=100``; ``entropy_weight=0.1`` its default.

    If the encoder's channels ``dim`` differ from ``bits``, 1x1 convs project in and out.
    ``forward: (B, dim, h, w) -> Quantized`` with ``(B, h, w)`` indices.
    Book: chapter "Quantizers after VQ-GAN".
    """

    def __init__(self, bits: int, dim: int | None = None, beta: float = 0.25, entropy_weight: float = 0.1,
                 entropy_temperature: float = 0.01):
        if bits < 1:
            raise ValueError(f"LFQ `bits` must be >= 1 (2^bits codes), got {bits}")
        super().__init__(dim or bits, bits)
        self.bits = bits
        self.num_codes = 2**bits
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.register_buffer("_powers", 2 ** torch.arange(bits - 1, -1, -1), persistent=False)  # MSB first

    @property
    def num_indices(self) -> int:
        """How many index values ``forward`` can report: ``2^bits``."""
        return self.num_codes

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """``(...)`` indices -> ``(..., bits)`` codes in ``{-1, 1}``."""
        bits = (indices[..., None] // self._powers) % 2
        return bits.float() * 2 - 1

    @property
    def codebook(self) -> torch.Tensor:
        """``(2^bits, bits)``: the implicit codebook, every sign pattern in index order."""
        return self.indices_to_codes(torch.arange(self.num_codes, device=self._powers.device))

    def entropy_terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (N, bits)`` -> ``(per_sample_entropy, batch_entropy)``, the two scalars of the penalty.

        ``q(c | z)`` factorises over the bits: every code has ``||c||^2 = bits``, so
        ``-||z - c||^2 / T = 2 z.c / T + const`` and the softmax over all ``2^bits`` codes is a product of
        one two-way softmax per bit, ``p_i(+1) = sigmoid(4 z_i / T)``. The per-sample entropy is then the
        sum of the bits' entropies (``N x bits`` work, not ``N x 2^bits``); the batch entropy needs the
        average of ``q`` over the batch, which does not factorise: ``log q(c | z)`` for every code is one
        ``(N, bits) @ (bits, 2^bits)`` product.
        """
        logit = 4 * z / self.entropy_temperature  # (N, bits)
        log_plus, log_minus = F.logsigmoid(logit), F.logsigmoid(-logit)  # log p_i(+1), log p_i(-1)
        per_sample = -(log_plus.exp() * log_plus + log_minus.exp() * log_minus).sum(1).mean()
        plus = (self.codebook > 0).to(z.dtype)  # (K, bits): 1 where the code's bit is +1
        log_q = log_minus.sum(1, keepdim=True) + (log_plus - log_minus) @ plus.t()  # (N, K)
        average = log_q.exp().mean(0)  # (K,)
        batch = -(average * torch.log(average.clamp(min=1e-30))).sum()
        return per_sample, batch

    def forward(self, z: torch.Tensor) -> Quantized:
        self.check_input(z)
        z = self.project_in(z)
        with full_precision(z.device.type):
            z_flat = rearrange(z.float(), "b c h w -> b h w c")
            z_hat = torch.where(z_flat > 0, 1.0, -1.0)
            indices = ((z_flat > 0).long() * self._powers).sum(-1)  # (B, h, w)
            per_sample, batch = self.entropy_terms(z_flat.reshape(-1, self.bits))
            commitment = torch.mean((z_flat - z_hat) ** 2)
            loss = self.entropy_weight * (per_sample - batch) + self.beta * commitment
            z_hat = rearrange(straight_through(z_flat, z_hat), "b h w c -> b c h w")
        return Quantized(self.project_out(z_hat), loss, indices, batch_perplexity(indices, self.num_codes))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, h, w)`` LongTensor in ``[0, 2^bits)`` -> ``(B, dim, h, w)``."""
        check_indices(indices, self.num_codes)
        return self.project_out(rearrange(self.indices_to_codes(indices), "b h w c -> b c h w"))
