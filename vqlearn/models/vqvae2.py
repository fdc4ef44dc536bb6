"""VQ-VAE-2: a two-level hierarchy of codes (seed 000 §2; Razavi et al. 2019).

The bottom encoder downsamples by 4, the top encoder by 2 more. The top codes
are quantized first and decoded to the bottom resolution; the bottom codes are
quantized from the bottom features *and* that top decoding, so they only need
to carry what the top level misses. The decoder reads both levels. At the
seed's ImageNet setting a 256x256 image becomes 32x32 top and 64x64 bottom
codes, each from a 512-entry EMA codebook of 64-dimensional vectors.

Module and buffer names follow rosinality/vq-vae-2-pytorch's ``VQVAE`` so its
checkpoints load with ``strict=True`` (:func:`vqlearn.pretrained.load_rosinality_vqvae2`).

Book: chapter "VQ-VAE-2: a hierarchy of codes".
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vqlearn.codebook import level_names
from vqlearn.models.base import Tokenizer, VQOutput, quantizer_levels, split_codes, split_levels
from vqlearn.quantizers import make_quantizer


class ResBlock(nn.Module):
    """``x + [ReLU, conv3x3 -> channel, ReLU, conv1x1 -> in_channels](x)``, no normalization.

    ``(B, in_channels, H, W) -> (B, in_channels, H, W)``. (rosinality's first ReLU
    is not in-place, so its skip adds the untouched ``x``, as here.)
    """

    def __init__(self, in_channels: int, channel: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(in_channels, channel, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channel, in_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Encoder(nn.Module):
    """``(B, in_channels, H, W) -> (B, channel, H/stride, W/stride)``, stride 4 or 2.

    Stride 4: two 4x4 stride-2 convs then a 3x3 conv; stride 2: one 4x4
    stride-2 conv then a 3x3 conv; then ``n_res_block`` residual blocks and a ReLU.
    """

    def __init__(self, in_channels: int, channel: int, n_res_block: int, n_res_channel: int, stride: int):
        super().__init__()
        if stride == 4:
            blocks = [
                nn.Conv2d(in_channels, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(channel // 2, channel, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(channel, channel, 3, padding=1),
            ]
        elif stride == 2:
            blocks = [
                nn.Conv2d(in_channels, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(channel // 2, channel, 3, padding=1),
            ]
        else:
            raise ValueError(f"Encoder stride must be 2 or 4, got stride={stride}")
        blocks += [ResBlock(channel, n_res_channel) for _ in range(n_res_block)]
        blocks.append(nn.ReLU())
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Decoder(nn.Module):
    """``(B, in_channels, h, w) -> (B, out_channels, h*stride, w*stride)``, stride 4 or 2.

    A 3x3 conv, ``n_res_block`` residual blocks, a ReLU, then one (stride 2) or
    two (stride 4) 4x4 stride-2 transposed convs. No output nonlinearity.
    """

    def __init__(
        self, in_channels: int, out_channels: int, channel: int, n_res_block: int, n_res_channel: int, stride: int
    ):
        super().__init__()
        blocks = [nn.Conv2d(in_channels, channel, 3, padding=1)]
        blocks += [ResBlock(channel, n_res_channel) for _ in range(n_res_block)]
        blocks.append(nn.ReLU())
        if stride == 4:
            blocks += [
                nn.ConvTranspose2d(channel, channel // 2, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(channel // 2, out_channels, 4, stride=2, padding=1),
            ]
        elif stride == 2:
            blocks.append(nn.ConvTranspose2d(channel, out_channels, 4, stride=2, padding=1))
        else:
            raise ValueError(f"Decoder stride must be 2 or 4, got stride={stride}")
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class VQVAE2(Tokenizer):
    """Two-level VQ-VAE: ``(B, in_channels, H, W) -> (top (B, H/8, W/8), bottom (B, H/4, W/4))``.

    Args (rosinality's defaults, and its names except ``in_channels`` and
    ``num_codes``, its ``in_channel`` and ``n_embed``; the seed's ImageNet table
    uses ``n_res_channel=64``):
        in_channels: image channels.
        channel: hidden channels of encoders and decoders (128).
        n_res_block: residual blocks per encoder/decoder (2).
        n_res_channel: hidden channels inside a residual block (32).
        embed_dim: code dimension (64).
        num_codes: codebook size of each level (512).
        decay: EMA decay of the codebooks (0.99).
        beta: commitment weight of each level (0.25).
        quantizer: ``"ema"`` (the paper's), ``"vq"``, ``"fsq"``, ``"lfq"`` or ``"rvq"``.
        quantizer_options: extra quantizer arguments, see :func:`vqlearn.quantizers.make_quantizer`.
    """

    downsample_factor = 8

    def __init__(
        self,
        in_channels: int = 3,
        channel: int = 128,
        n_res_block: int = 2,
        n_res_channel: int = 32,
        embed_dim: int = 64,
        num_codes: int = 512,
        decay: float = 0.99,
        beta: float = 0.25,
        quantizer: str = "ema",
        quantizer_options: dict | None = None,
    ):
        super().__init__()
        self.in_channels = in_channels
        options = dict(quantizer_options or {})
        if quantizer == "ema":
            options.setdefault("decay", decay)
        self.enc_b = Encoder(in_channels, channel, n_res_block, n_res_channel, stride=4)
        self.enc_t = Encoder(channel, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_t = nn.Conv2d(channel, embed_dim, 1)
        self.quantize_t = make_quantizer(quantizer, num_codes, embed_dim, beta, **options)
        self.dec_t = Decoder(embed_dim, embed_dim, channel, n_res_block, n_res_channel, stride=2)
        self.quantize_conv_b = nn.Conv2d(embed_dim + channel, embed_dim, 1)
        self.quantize_b = make_quantizer(quantizer, num_codes, embed_dim, beta, **options)
        self.upsample_t = nn.ConvTranspose2d(embed_dim, embed_dim, 4, stride=2, padding=1)
        self.dec = Decoder(embed_dim + embed_dim, in_channels, channel, n_res_block, n_res_channel, stride=4)

    @property
    def quantizers(self) -> list[nn.Module]:
        return quantizer_levels(self.quantize_t) + quantizer_levels(self.quantize_b)

    @property
    def level_names(self) -> list[str]:
        """``["_top", "_bottom"]``; a residual quantizer's levels as ``"_top_0"``, ``"_top_1"``, ..."""
        return (level_names(len(quantizer_levels(self.quantize_t)), "_top")
                + level_names(len(quantizer_levels(self.quantize_b)), "_bottom"))

    def get_last_layer(self) -> torch.Tensor:
        return self.dec.blocks[-1].weight

    def encode(self, x: torch.Tensor, finite: bool = True):
        """Quantize both levels.

        ``(B, C, H, W) -> (quant_t (B, D, H/8, W/8), quant_b (B, D, H/4, W/4), loss, top, bottom)``
        where ``top``/``bottom`` are the code indices and ``loss`` the sum of
        both levels' commitment losses. Also returns each codebook's perplexity (a residual
        quantizer has one per level: see :func:`vqlearn.models.base.split_levels`).
        NaN/inf input is refused (``finite=False``, what the training forward pass uses, skips that check).
        """
        self.check_images(x, finite=finite)
        enc_b = self.enc_b(x)  # (B, channel, H/4, W/4)
        enc_t = self.enc_t(enc_b)  # (B, channel, H/8, W/8)
        q_t = self.quantize_t(self.quantize_conv_t(enc_t))
        dec_t = self.dec_t(q_t.z_q)  # (B, D, H/4, W/4): what the top level says about the bottom
        enc_b = torch.cat([dec_t, enc_b], dim=1)
        q_b = self.quantize_b(self.quantize_conv_b(enc_b))
        perplexity = split_levels(self.quantize_t, q_t)[1] + split_levels(self.quantize_b, q_b)[1]
        return q_t.z_q, q_b.z_q, q_t.loss + q_b.loss, q_t.indices, q_b.indices, perplexity

    def decode(self, quant_t: torch.Tensor, quant_b: torch.Tensor) -> torch.Tensor:
        """``(B, D, H/8, W/8), (B, D, H/4, W/4) -> (B, C, H, W)``."""
        return self.dec(torch.cat([self.upsample_t(quant_t), quant_b], dim=1))

    def forward(self, x: torch.Tensor) -> VQOutput:
        quant_t, quant_b, loss, top, bottom, perplexity = self.encode(x, finite=False)
        codes = split_codes(self.quantize_t, top) + split_codes(self.quantize_b, bottom)
        return VQOutput(self.decode(quant_t, quant_b), loss, codes, perplexity)

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W) -> (top (B, H/8, W/8), bottom (B, H/4, W/4))``."""
        _, _, _, top, bottom, _ = self.encode(x)
        return top, bottom

    @torch.no_grad()
    def detokenize(self, codes: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(top (B, h, w), bottom (B, 2h, 2w)) -> (B, C, 8h, 8w)``."""
        if not isinstance(codes, (tuple, list)) or len(codes) != 2:
            given = f"a {type(codes).__name__}" + (f" of shape {tuple(codes.shape)}" if torch.is_tensor(codes) else
                                                    f" of {len(codes)}" if isinstance(codes, (tuple, list)) else "")
            raise ValueError(f"VQ-VAE-2 `codes`: expected a pair (top (B, h, w), bottom (B, 2h, 2w)) of integer "
                             f"tensors, as tokenize returns, got {given}")
        top, bottom = codes
        self.check_codes(top, self.quantize_t, "codes[0]", "top ")
        self.check_codes(bottom, self.quantize_b, "codes[1]", "bottom ")
        if bottom.shape[0] != top.shape[0] or bottom.shape[-2:] != tuple(2 * s for s in top.shape[-2:]):
            raise ValueError(
                f"`codes`: bottom codes must be twice the top's size, (B, 2h, 2w) for top (B, h, w), "
                f"got top {tuple(top.shape)} and bottom {tuple(bottom.shape)}"
            )
        return self.decode(self.quantize_t.lookup(top), self.quantize_b.lookup(bottom))
