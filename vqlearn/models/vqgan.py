"""The VQ-GAN autoencoder (seed 000 §VQ-GAN, seed 001; Esser et al. 2021).

Encoder and decoder are the diffusion-UNet halves taming-transformers uses:
per resolution level ``num_res_blocks`` ResnetBlocks (plus attention at the
resolutions in ``attn_resolutions``), a Downsample/Upsample between levels, and
a middle of ResnetBlock-Attention-ResnetBlock at the lowest resolution. There
are no skip connections between encoder and decoder: everything the decoder
knows passes through the codes.

At taming's ImageNet f16/1024 setting (``ch=128, ch_mult=[1,1,2,2,4]``) a
256x256 image becomes a 16x16 grid of 256-dimensional latents, one of 1024
codes each. Attribute names are taming's ``VQModel`` names, so its checkpoints
load (:func:`vqlearn.pretrained.load_taming_vqgan`).

Book: chapter "The VQ-GAN encoder and decoder".
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from vqlearn.blocks import ATTENTION_TYPES, Downsample, Normalize, ResnetBlock, Upsample, make_attn, swish
from vqlearn.models.base import Tokenizer, VQOutput, quantizer_levels, split_levels
from vqlearn.quantizers import make_quantizer


@dataclass
class DDConfig:
    """taming's ``ddconfig``: the encoder/decoder hyperparameters.

    Defaults are the ImageNet f16 setting of seed 000 (256x256 RGB -> 16x16x256).
    """

    ch: int = 128
    out_ch: int = 3
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.0
    resamp_with_conv: bool = True
    in_channels: int = 3
    resolution: int = 256
    z_channels: int = 256
    double_z: bool = False
    give_pre_end: bool = False
    tanh_out: bool = False
    attn_type: str = "vanilla"
    num_groups: int = 32

    @classmethod
    def from_dict(cls, config: dict) -> DDConfig:
        """Build from a taming YAML ``ddconfig`` mapping; unknown keys are an error naming them."""
        config = dict(config)
        if config.pop("use_linear_attn", False):
            config["attn_type"] = "linear"
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown ddconfig key(s) {unknown}; known keys are {sorted(known)}")
        for key in ("ch_mult", "attn_resolutions"):
            if key in config:
                config[key] = tuple(config[key])
        return cls(**config)

    def __post_init__(self):
        if self.attn_type not in ATTENTION_TYPES:
            raise ValueError(f"ddconfig.attn_type must be one of {ATTENTION_TYPES}, got {self.attn_type!r}")
        for name in ("ch", "resolution", "z_channels", "num_groups", "in_channels", "out_ch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ddconfig.{name} must be a positive integer, got {value!r}")
        if isinstance(self.num_res_blocks, bool) or not isinstance(self.num_res_blocks, int) or self.num_res_blocks < 0:
            raise ValueError(f"ddconfig.num_res_blocks must be an integer >= 0, got {self.num_res_blocks!r}")
        mult = tuple(self.ch_mult)
        if not mult or any(isinstance(m, bool) or not isinstance(m, int) or m <= 0 for m in mult):
            raise ValueError(f"ddconfig.ch_mult must be a non-empty list of positive integers, got {list(mult)}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"ddconfig.dropout must be in [0, 1), got {self.dropout!r}")
        widths = sorted({self.ch * m for m in (1, *mult)})
        odd = [w for w in widths if w % self.num_groups]
        if odd:
            divisors = [g for g in (1, 2, 4, 8, 16, 32) if all(w % g == 0 for w in widths)]
            raise ValueError(
                f"ddconfig.num_groups is {self.num_groups}, which does not divide the channel widths {odd} "
                f"(ch={self.ch} times ch_mult={list(mult)}): GroupNorm splits each width into num_groups groups; "
                f"use one of {divisors}, or change ddconfig.ch"
            )


def middle(channels: int, config: DDConfig) -> nn.Module:
    """The bottleneck of encoder and decoder: ResnetBlock, attention, ResnetBlock.

    ``(B, channels, h, w) -> (B, channels, h, w)``; attributes ``block_1``,
    ``attn_1``, ``block_2`` as in taming (so checkpoints load).
    """
    mid = nn.Module()
    mid.block_1 = ResnetBlock(in_channels=channels, dropout=config.dropout, num_groups=config.num_groups)
    mid.attn_1 = make_attn(channels, config.attn_type, config.num_groups)
    mid.block_2 = ResnetBlock(in_channels=channels, dropout=config.dropout, num_groups=config.num_groups)
    return mid


def run_middle(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(h)))


class Encoder(nn.Module):
    """``(B, in_channels, H, W) -> (B, z_channels (x2 if double_z), H/f, W/f)``, ``f = 2**(len(ch_mult)-1)``."""

    def __init__(self, config: DDConfig):
        super().__init__()
        c = config
        self.num_resolutions = len(c.ch_mult)
        self.num_res_blocks = c.num_res_blocks
        groups = c.num_groups

        self.conv_in = nn.Conv2d(c.in_channels, c.ch, kernel_size=3, stride=1, padding=1)
        resolution = c.resolution
        in_ch_mult = (1,) + tuple(c.ch_mult)
        self.down = nn.ModuleList()
        for level in range(self.num_resolutions):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_in = c.ch * in_ch_mult[level]
            block_out = c.ch * c.ch_mult[level]
            for _ in range(c.num_res_blocks):
                block.append(
                    ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=c.dropout, num_groups=groups)
                )
                block_in = block_out
                if resolution in c.attn_resolutions:
                    attn.append(make_attn(block_in, c.attn_type, groups))
            down = nn.Module()
            down.block = block
            down.attn = attn
            if level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in, c.resamp_with_conv)
                resolution //= 2
            self.down.append(down)

        self.mid = middle(block_in, c)

        self.norm_out = Normalize(block_in, groups)
        z_out = 2 * c.z_channels if c.double_z else c.z_channels
        self.conv_out = nn.Conv2d(block_in, z_out, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level, down in enumerate(self.down):
            for i, block in enumerate(down.block):
                h = block(h)
                if len(down.attn) > 0:
                    h = down.attn[i](h)
            if level != self.num_resolutions - 1:
                h = down.downsample(h)
        h = run_middle(self.mid, h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """``(B, z_channels, h, w) -> (B, out_ch, h*f, w*f)``; the mirror image of :class:`Encoder`.

    Each level has ``num_res_blocks + 1`` ResnetBlocks. ``give_pre_end=True``
    returns the features before the final norm/conv; ``tanh_out=True`` squashes
    the output into [-1, 1].
    """

    def __init__(self, config: DDConfig):
        super().__init__()
        c = config
        self.num_resolutions = len(c.ch_mult)
        self.give_pre_end = c.give_pre_end
        self.tanh_out = c.tanh_out
        groups = c.num_groups

        block_in = c.ch * c.ch_mult[-1]
        resolution = c.resolution // 2 ** (self.num_resolutions - 1)
        self.z_shape = (1, c.z_channels, resolution, resolution)

        self.conv_in = nn.Conv2d(c.z_channels, block_in, kernel_size=3, stride=1, padding=1)
        self.mid = middle(block_in, c)

        self.up = nn.ModuleList()
        for level in reversed(range(self.num_resolutions)):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_out = c.ch * c.ch_mult[level]
            for _ in range(c.num_res_blocks + 1):
                block.append(
                    ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=c.dropout, num_groups=groups)
                )
                block_in = block_out
                if resolution in c.attn_resolutions:
                    attn.append(make_attn(block_in, c.attn_type, groups))
            up = nn.Module()
            up.block = block
            up.attn = attn
            if level != 0:
                up.upsample = Upsample(block_in, c.resamp_with_conv)
                resolution *= 2
            self.up.insert(0, up)  # so that self.up[level] is the block at that level

        self.norm_out = Normalize(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, c.out_ch, kernel_size=3, stride=1, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = run_middle(self.mid, h)
        for level in reversed(range(self.num_resolutions)):
            up = self.up[level]
            for i, block in enumerate(up.block):
                h = block(h)
                if len(up.attn) > 0:
                    h = up.attn[i](h)
            if level != 0:
                h = up.upsample(h)
        if self.give_pre_end:
            return h
        h = self.conv_out(swish(self.norm_out(h)))
        return torch.tanh(h) if self.tanh_out else h


class VQGAN(Tokenizer):
    """VQ-GAN autoencoder: encoder, ``quant_conv``, quantizer, ``post_quant_conv``, decoder.

    ``(B, in_channels, H, W) -> codes (B, H/f, W/f) -> (B, out_ch, H, W)``.

    Args:
        ddconfig: a :class:`DDConfig` or taming's ``ddconfig`` dict.
        num_codes: codebook size (ImageNet: 1024; taming's ``n_embed``).
        embed_dim: code dimension (ImageNet: 256).
        beta: commitment weight (0.25).
        quantizer: ``"vq"`` (taming's), ``"ema"``, ``"fsq"``, ``"lfq"`` or ``"rvq"``
            (:func:`vqlearn.quantizers.make_quantizer`).
        quantizer_options: extra quantizer arguments (``legacy``, ``remap``,
            ``l2_normalize``, ``lookup_dim``, ``rotation_trick``, ``levels``, ...).

    The adversarial and perceptual losses are not part of the model; they live
    in :class:`vqlearn.losses.VQLPIPSWithDiscriminator`.
    """

    def __init__(
        self,
        ddconfig: DDConfig | dict | None = None,
        num_codes: int = 1024,
        embed_dim: int = 256,
        beta: float = 0.25,
        quantizer: str = "vq",
        quantizer_options: dict | None = None,
    ):
        super().__init__()
        if ddconfig is None:
            ddconfig = DDConfig()
        elif isinstance(ddconfig, dict):
            ddconfig = DDConfig.from_dict(ddconfig)
        self.ddconfig = ddconfig
        self.in_channels = ddconfig.in_channels
        self.downsample_factor = 2 ** (len(ddconfig.ch_mult) - 1)
        z_out = 2 * ddconfig.z_channels if ddconfig.double_z else ddconfig.z_channels
        self.encoder = Encoder(ddconfig)
        self.decoder = Decoder(ddconfig)
        self.quantize = make_quantizer(quantizer, num_codes, embed_dim, beta, **(quantizer_options or {}))
        self.quant_conv = nn.Conv2d(z_out, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig.z_channels, 1)

    @property
    def quantizers(self) -> list[nn.Module]:
        return quantizer_levels(self.quantize)

    def get_last_layer(self) -> torch.Tensor:
        return self.decoder.conv_out.weight

    def encode(self, x: torch.Tensor, finite: bool = True):
        """``(B, C, H, W) -> Quantized`` (z_q ``(B, embed_dim, H/f, W/f)``, loss, codes, perplexity).

        NaN/inf input is refused (``finite=False``, what the training forward pass uses, skips that check).
        """
        self.check_images(x, finite=finite)
        b, _, h, w = x.shape
        f = self.downsample_factor
        quantized = self.quantize(self.quant_conv(self.encoder(x)))
        levels = (quantized.indices.shape[1],) if quantized.indices.dim() == 4 else ()  # residual: (B, depth, h, w)
        return quantized._replace(indices=quantized.indices.reshape(b, *levels, h // f, w // f))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """``(B, embed_dim, h, w) -> (B, out_ch, h*f, w*f)``."""
        return self.decoder(self.post_quant_conv(z_q))

    def forward(self, x: torch.Tensor) -> VQOutput:
        quantized = self.encode(x, finite=False)
        codes, perplexity = split_levels(self.quantize, quantized)
        return VQOutput(self.decode(quantized.z_q), quantized.loss, codes, perplexity)

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, H/f, W/f)`` code indices (residual quantizer: ``(B, depth, H/f, W/f)``)."""
        return self.encode(x).indices

    @torch.no_grad()
    def detokenize(self, codes: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` code indices -> ``(B, out_ch, h*f, w*f)`` images."""
        self.check_codes(codes, self.quantize)
        return self.decode(self.quantize.lookup(codes))

