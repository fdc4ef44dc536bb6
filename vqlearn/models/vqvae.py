"""The VQ-VAE of the pytorch-vqvae reproduction (seed 000 §1; van den Oord et al. 2017).

Encoder: two stride-2 4x4 convs (H -> H/4) and two residual blocks.
Decoder: the mirror image with transposed convs and a tanh output for images
in [-1, 1]. The residual blocks use BatchNorm, which the seed reports was
necessary on MNIST (chapter "The VQ-VAE" measures that claim).

Seed hyperparameters (MNIST and CIFAR-10): ``dim=256``, ``num_codes=512``
(the paper's K), batch 32, lr 3e-4.

Book: chapter "The VQ-VAE".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vqlearn.models.base import Tokenizer, VQOutput, quantizer_levels, split_levels
from vqlearn.quantizers import make_quantizer


def _norm(dim: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(dim) if batchnorm else nn.Identity()


class ResBlock(nn.Module):
    """``x + [ReLU, conv3x3, BN, ReLU, conv1x1, BN](x)``: ``(B, dim, H, W) -> (B, dim, H, W)``.

    ``inplace_relu_skip=True`` computes ``ReLU(x) + block(x)`` instead, which is
    what the seed's / pytorch-vqvae's ResBlock really computes: its block starts
    with ``nn.ReLU(True)``, an *in-place* ReLU, so ``block(x)`` overwrites ``x``
    with ``ReLU(x)`` before ``forward`` adds it (``return x + self.block(x)``).
    Checkpoints trained with that code were trained with the ReLU'd skip; set the
    flag to load one and get what it was trained to compute. The parameters (and
    state_dict keys) are the same either way. Book: chapter "The VQ-VAE".
    """

    def __init__(self, dim: int, batchnorm: bool = True, inplace_relu_skip: bool = False):
        super().__init__()
        self.inplace_relu_skip = inplace_relu_skip
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1),
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 1),
            _norm(dim, batchnorm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(x) if self.inplace_relu_skip else x
        return skip + self.block(x)


class VQVAE(Tokenizer):
    """VQ-VAE: ``(B, in_channels, H, W) -> codes (B, H/4, W/4) -> (B, in_channels, H, W)``.

    Args:
        in_channels: image channels (1 for MNIST, 3 for CIFAR-10).
        dim: channels of every hidden layer and of the codes (seed: 256).
        num_codes: codebook size, the paper's K (seed: 512).
        beta: commitment weight.
        batchnorm: keep the seed's BatchNorm layers (``False`` replaces them by identities).
        quantizer: ``"vq"`` (learned codebook, the seed's), ``"ema"``, or one of the
            quantizers after VQ-GAN: ``"fsq"``, ``"lfq"``, ``"rvq"``.
        quantizer_options: extra arguments of the quantizer (``l2_normalize``,
            ``lookup_dim``, ``legacy``, ``decay``, ``rotation_trick``, ``levels``, ``depth``...),
            see :func:`vqlearn.quantizers.make_quantizer`.
        inplace_relu_skip: every :class:`ResBlock` adds ``ReLU(x)``, not ``x``, as the
            seed's / pytorch-vqvae's in-place ReLU makes it do; set it to run their
            checkpoints as they were trained (default ``False``: the plain skip).
    """

    downsample_factor = 4

    def __init__(
        self,
        in_channels: int = 1,
        dim: int = 256,
        num_codes: int = 512,
        beta: float = 0.25,
        batchnorm: bool = True,
        quantizer: str = "vq",
        quantizer_options: dict | None = None,
        inplace_relu_skip: bool = False,
    ):
        super().__init__()
        self.in_channels = in_channels
        res = dict(batchnorm=batchnorm, inplace_relu_skip=inplace_relu_skip)
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, dim, 4, 2, 1),  # (B, dim, H/2, W/2)
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 4, 2, 1),  # (B, dim, H/4, W/4)
            ResBlock(dim, **res),
            ResBlock(dim, **res),
        )
        self.quantize = make_quantizer(quantizer, num_codes, dim, beta, **(quantizer_options or {}))
        self.decoder = nn.Sequential(
            ResBlock(dim, **res),
            ResBlock(dim, **res),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, dim, 4, 2, 1),  # (B, dim, H/2, W/2)
            _norm(dim, batchnorm),
            nn.ReLU(),
            nn.ConvTranspose2d(dim, in_channels, 4, 2, 1),  # (B, in_channels, H, W)
            nn.Tanh(),
        )

    @property
    def quantizers(self) -> list[nn.Module]:
        return quantizer_levels(self.quantize)

    def get_last_layer(self) -> torch.Tensor:
        return self.decoder[-2].weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> z_e (B, dim, H/4, W/4)``, before quantization. NaN/inf input is refused."""
        self.check_images(x, finite=True)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> VQOutput:
        self.check_images(x)  # no finiteness check here: no host sync in a training step
        quantized = self.quantize(self.encoder(x))
        codes, perplexity = split_levels(self.quantize, quantized)
        return VQOutput(self.decoder(quantized.z_q), quantized.loss, codes, perplexity)

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, H/4, W/4)`` code indices (residual quantizer: ``(B, depth, H/4, W/4)``)."""
        return self.quantize(self.encode(x)).indices

    @torch.no_grad()
    def detokenize(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` code indices -> ``(B, in_channels, 4h, 4w)`` images."""
        self.check_codes(codes, self.quantize)
        return self.decoder(self.quantize.lookup(codes))
