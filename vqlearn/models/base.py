"""What the three model families share: the tokenizer interface and input checks.

Every family (VQ-VAE, VQ-VAE-2, VQ-GAN) is a :class:`Tokenizer`:

* ``tokenize(x)``: images ``(B, C, H, W)`` in [-1, 1] -> codes, a LongTensor
  ``(B, H/f, W/f)`` (VQ-VAE-2: a tuple ``(top, bottom)``; a residual quantizer's
  codes are ``(B, depth, H/f, W/f)``);
* ``detokenize(codes)``: codes -> images ``(B, C, H, W)``;
* ``reconstruct(x) = detokenize(tokenize(x))``;
* ``forward(x)`` (training): a :class:`VQOutput`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from vqlearn.codebook import level_names
from vqlearn.quantize import Quantized
from vqlearn.residual_quantize import ResidualVQ


def check_finite(x: torch.Tensor, name: str = "x") -> None:
    """Raise a ``ValueError`` saying how many values of ``x`` are NaN/inf and where the first one is."""
    if bool(torch.isfinite(x).all()):
        return
    bad = ~torch.isfinite(x)
    first = tuple(int(i) for i in bad.nonzero()[0])
    nan, total = int(torch.isnan(x).sum()), int(bad.sum())
    raise ValueError(
        f"`{name}` has {total} non-finite value(s) of {x.numel()} ({nan} NaN, {total - nan} +-inf), the first at "
        f"index {first}; clean the input (e.g. torch.nan_to_num(x).clamp(-1, 1)) before tokenizing"
    )


def quantizer_levels(quantizer: nn.Module) -> list[nn.Module]:
    """The codebooks of one bottleneck: a :class:`~vqlearn.residual_quantize.ResidualVQ`'s levels, else
    the quantizer itself. A model's ``quantizers`` lists these, so each level is counted,
    initialised and restarted as a codebook of its own."""
    return list(quantizer.quantizers) if isinstance(quantizer, ResidualVQ) else [quantizer]


def split_codes(quantizer: nn.Module, codes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One ``(B, h, w)`` tensor per :func:`quantizer_levels` entry: a residual quantizer's
    ``(B, depth, h, w)`` codes split by level, else ``(codes,)``."""
    return tuple(codes.unbind(1)) if isinstance(quantizer, ResidualVQ) else (codes,)


def split_levels(quantizer: nn.Module, quantized: Quantized) -> tuple[tuple, tuple]:
    """``(codes, perplexities)`` of one bottleneck, one entry per :func:`quantizer_levels` entry
    (a residual quantizer's ``(depth,)`` perplexities split by level too)."""
    perplexity = quantized.perplexity
    perplexities = tuple(perplexity.unbind(0)) if isinstance(quantizer, ResidualVQ) else (perplexity,)
    return split_codes(quantizer, quantized.indices), perplexities


class VQOutput(NamedTuple):
    """A training forward pass.

    reconstruction: ``(B, C, H, W)``.
    quant_loss: scalar, the sum of every quantizer's loss.
    codes: one LongTensor ``(B, h, w)`` per quantizer, in ``model.quantizers`` order
        (a residual quantizer's levels are quantizers of their own here).
    perplexity: one scalar per quantizer (this batch only).
    """

    reconstruction: torch.Tensor
    quant_loss: torch.Tensor
    codes: tuple[torch.Tensor, ...]
    perplexity: tuple[torch.Tensor, ...]


class Tokenizer(nn.Module):
    """Base class: input validation and ``reconstruct``.

    Subclasses set ``in_channels`` and ``downsample_factor`` and implement
    ``tokenize``, ``detokenize``, ``forward``, ``quantizers`` and ``get_last_layer``.
    """

    in_channels: int
    downsample_factor: int

    def check_images(self, x: torch.Tensor, name: str = "x", finite: bool = False) -> None:
        """Raise a ``ValueError``/``TypeError`` naming ``name`` for a batch this model cannot encode.

        ``finite``: also refuse NaN and +-inf (one ``isfinite().all()``, a host sync: the
        public ``tokenize``/``encode`` ask for it, the training forward pass does not --
        there the trainer's non-finite-loss check catches bad input).
        """
        if not torch.is_tensor(x):
            raise TypeError(f"`{name}` must be a torch.Tensor image batch (B, C, H, W) of floats in [-1, 1], "
                            f"got a {type(x).__name__}; e.g. torch.as_tensor(...).float()")
        if x.dim() != 4:
            raise ValueError(f"`{name}` must be a 4-D image batch (B, C, H, W), got shape {tuple(x.shape)}"
                             + ("; for one image use x[None]" if x.dim() == 3 else ""))
        if not x.is_floating_point():
            raise TypeError(
                f"`{name}` must be a floating-point image batch in [-1, 1], got dtype {x.dtype}; "
                f"for bytes 0..255 use x.float() / 127.5 - 1 (vqlearn.images.normalize(x.float() / 255))"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"`{name}` has {x.shape[1]} channels but this {type(self).__name__} was built for "
                f"in_channels={self.in_channels}; convert the images (e.g. grey <-> RGB) or build "
                f"the model with in_channels={x.shape[1]}"
            )
        h, w = x.shape[-2:]
        f = self.downsample_factor
        if h % f or w % f:
            raise ValueError(
                f"`{name}` is {h}x{w}, but {type(self).__name__} downsamples by {f}, so height and "
                f"width must be multiples of {f}; resize or crop to e.g. "
                f"{max(f, h // f * f)}x{max(f, w // f * f)}"
            )
        if finite:
            check_finite(x, name)

    def check_codes(self, codes, quantizer: nn.Module, name: str = "codes", level: str = "") -> None:
        """Raise a ``TypeError``/``ValueError`` unless ``codes`` is an integer tensor ``(B, h, w)`` in ``[0, K-1]``
        (for a residual quantizer ``(B, n, h, w)``, its first ``1 <= n <= depth`` levels)."""
        k = quantizer.num_indices
        depth = quantizer.depth if isinstance(quantizer, ResidualVQ) else None
        shape = "(B, h, w)" if depth is None else f"(B, n, h, w) (the first 1 <= n <= {depth} levels)"
        expected = f"expected {level}codes as an integer tensor {shape} with values in [0, {k - 1}] ({k} codes)"
        if not torch.is_tensor(codes):
            raise TypeError(f"`{name}`: {expected}, got a {type(codes).__name__}; e.g. torch.as_tensor(codes)")
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise TypeError(f"`{name}`: {expected}, got dtype {codes.dtype}; e.g. codes.long()")
        if depth is not None and (codes.dim() != 4 or not 1 <= codes.shape[1] <= depth):
            raise ValueError(f"`{name}`: {expected}, got shape {tuple(codes.shape)}")
        if depth is None and codes.dim() != 3:
            hint = "; reshape a flat (B*h*w,) tensor with codes.view(B, h, w)" if codes.dim() == 1 else ""
            hint = "; for one image use codes[None]" if codes.dim() == 2 else hint
            raise ValueError(f"`{name}`: {expected}, got shape {tuple(codes.shape)}{hint}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
            raise ValueError(f"`{name}`: {expected}, got values in [{int(codes.min())}, {int(codes.max())}]")

    @property
    def quantizers(self) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def level_names(self) -> list[str]:
        """Metric-name suffix of each of ``quantizers``: ``[""]`` for one codebook, ``["_0", "_1", ...]``
        for the levels of a residual quantizer (:func:`vqlearn.codebook.level_names`)."""
        return level_names(len(self.quantizers))

    def get_last_layer(self) -> torch.Tensor:
        """Weight of the decoder's last layer: where the adaptive GAN weight is measured."""
        raise NotImplementedError

    def tokenize(self, x: torch.Tensor):
        raise NotImplementedError

    def detokenize(self, codes) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``: encode to codes and decode them."""
        return self.detokenize(self.tokenize(x))
