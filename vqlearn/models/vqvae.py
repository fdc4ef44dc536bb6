"""The VQ-VAE of the pytorch-vqvae reproduction (seed 000 §1; van den Oord et al. 2017).

Encoder: two stride-2 4x4 convs (H -> H/4) and two residual blocks.
Decoder: the mirror image with transposed convs and a tanh output for images
in [-1, 1]. The residual blocks use BatchNorm, which the seed reports was
necessary on MNIST (chapter "The VQ-VAE" measures that claim).

Seed hyperparameters (MNIST and CIFAR-10): ``dim=256``, ``K=512``, batch 32,
lr 3e-4.

Book: chapter "The VQ-VAE".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vqlearn.models.base import Tokenizer, VQOutput
from vqlearn.quantize import make_quantizer


def _norm(dim: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(dim) if batchnorm else nn.Identity()


class ResBlock(nn.Module):
    """``x + [ReLU, conv3x3, BN, ReLU, conv1x1, BN](x)``: ``(B, dim, H, W) -> (B, dim, H, W)``."""

    def __init__(self, dim: int, batchnorm: bool = True):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1),
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 1),
            _norm(dim, batchnorm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class VQVAE(Tokenizer):
    """VQ-VAE: ``(B, input_dim, H, W) -> codes (B, H/4, W/4) -> (B, input_dim, H, W)``.

    Args:
        input_dim: image channels (1 for MNIST, 3 for CIFAR-10).
        dim: channels of every hidden layer and of the codes (seed: 256).
        K: codebook size (seed: 512).
        beta: commitment weight.
        batchnorm: keep the seed's BatchNorm layers (``False`` replaces them by identities).
        quantizer: ``"vq"`` (learned codebook, the seed's) or ``"ema"``.
        quantizer_options: extra arguments of the quantizer (``l2_normalize``,
            ``lookup_dim``, ``legacy``, ``decay``...), see :func:`vqlearn.quantize.make_quantizer`.
    """

    downsample_factor = 4

    def __init__(
        self,
        input_dim: int = 1,
        dim: int = 256,
        K: int = 512,
        beta: float = 0.25,
        batchnorm: bool = True,
        quantizer: str = "vq",
        quantizer_options: dict | None = None,
    ):
        super().__init__()
        self.in_channels = input_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(input_dim, dim, 4, 2, 1),  # (B, dim, H/2, W/2)
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 4, 2, 1),  # (B, dim, H/4, W/4)
            ResBlock(dim, batchnorm),
            ResBlock(dim, batchnorm),
        )
        self.quantize = make_quantizer(quantizer, K, dim, beta, **(quantizer_options or {}))
        self.decoder = nn.Sequential(
            ResBlock(dim, batchnorm),
            ResBlock(dim, batchnorm),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, dim, 4, 2, 1),  # (B, dim, H/2, W/2)
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, input_dim, 4, 2, 1),  # (B, input_dim, H, W)
            nn.Tanh(),
        )

    @property
    def quantizers(self) -> list[nn.Module]:
        return [self.quantize]

    def get_last_layer(self) -> torch.Tensor:
        return self.decoder[-2].weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim, H, W) -> z_e (B, dim, H/4, W/4)``, before quantization."""
        self.check_images(x)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> VQOutput:
        z_q, loss, codes, perplexity = self.quantize(self.encode(x))
        return VQOutput(self.decoder(z_q), loss, (codes,), (perplexity,))

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim, H, W) -> (B, H/4, W/4)`` code indices."""
        return self.quantize(self.encode(x)).indices

    @torch.no_grad()
    def detokenize(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` code indices -> ``(B, input_dim, 4h, 4w)`` images."""
        return self.decoder(self.quantize.lookup(codes))
