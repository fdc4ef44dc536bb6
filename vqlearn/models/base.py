"""What the three model families share: the tokenizer interface and input checks.

Every family (VQ-VAE, VQ-VAE-2, VQ-GAN) is a :class:`Tokenizer`:

* ``tokenize(x)``: images ``(B, C, H, W)`` in [-1, 1] -> codes, a LongTensor
  ``(B, H/f, W/f)`` (VQ-VAE-2: a tuple ``(top, bottom)``);
* ``detokenize(codes)``: codes -> images ``(B, C, H, W)``;
* ``reconstruct(x) = detokenize(tokenize(x))``;
* ``forward(x)`` (training): a :class:`VQOutput`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn


class VQOutput(NamedTuple):
    """A training forward pass.

    reconstruction: ``(B, C, H, W)``.
    quant_loss: scalar, the sum of every quantizer's loss.
    codes: one LongTensor ``(B, h, w)`` per quantizer, in ``model.quantizers`` order.
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

    def check_images(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise a ``ValueError`` naming ``name`` for a batch this model cannot encode."""
        if not torch.is_tensor(x) or x.dim() != 4:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"`{name}` must be a 4-D image batch (B, C, H, W), got {shape}")
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

    @property
    def quantizers(self) -> list[nn.Module]:
        raise NotImplementedError

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
