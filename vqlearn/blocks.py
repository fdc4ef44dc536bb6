"""Building blocks of the VQ-GAN encoder and decoder (seed 000 §VQ-GAN, seed 001).

The blocks come from the diffusion-model UNet that taming-transformers reuses:
GroupNorm, swish, a pre-activation ResnetBlock, a self-attention block over
spatial positions, and strided-conv / nearest-neighbour resampling.
Parameter names (``norm1``, ``conv1``, ``nin_shortcut``, ``q``, ``k``, ``v``,
``proj_out``, ...) are taming's, so its checkpoints load unchanged.

Book: chapter "GroupNorm", chapter "Attention in the bottleneck", chapter "The VQ-GAN encoder and decoder".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

ATTENTION_TYPES = ("vanilla", "linear", "none")


def Normalize(in_channels: int, num_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with taming's settings (eps=1e-6, affine).

    Raises a ``ValueError`` naming both numbers and the settings to change when
    ``in_channels`` is not divisible by ``num_groups`` (torch raises too, but its
    message does not say which setting to change).
    """
    if in_channels % num_groups != 0:
        raise ValueError(
            f"GroupNorm needs the channel count to be divisible by num_groups, got "
            f"in_channels={in_channels} and num_groups={num_groups}. Choose `ch` (and "
            f"`ch_mult`) so every level's channels are a multiple of num_groups, or "
            f"set num_groups to a divisor of {in_channels}."
        )
    return nn.GroupNorm(num_groups=num_groups, num_channels=in_channels, eps=1e-6, affine=True)


def swish(x: torch.Tensor) -> torch.Tensor:
    """Swish / SiLU: ``x * sigmoid(x)``, the nonlinearity of every VQ-GAN block."""
    return F.silu(x)


class ResnetBlock(nn.Module):
    """Pre-activation residual block: (GN, swish, conv3x3) twice, plus a shortcut.

    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``. The shortcut is the
    identity when the channel counts match, otherwise a 1x1 conv
    (``nin_shortcut``) or a 3x3 conv (``conv_shortcut=True``). With
    ``temb_channels > 0`` a time embedding ``(B, temb_channels)`` is added after
    the first conv, as in the diffusion UNet; VQ-GAN uses ``temb_channels=0``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int | None = None,
        conv_shortcut: bool = False,
        dropout: float = 0.0,
        temb_channels: int = 0,
        num_groups: int = 32,
    ):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_conv_shortcut = conv_shortcut

        self.norm1 = Normalize(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if temb_channels > 0:
            self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = Normalize(out_channels, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
            else:
                self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        if temb is not None:
            if not hasattr(self, "temb_proj"):
                raise ValueError("this ResnetBlock was built with temb_channels=0; pass temb=None")
            h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.conv_shortcut(x) if self.use_conv_shortcut else self.nin_shortcut(x)
        return x + h


def attention_bmm(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The seed's attention, written with two ``bmm`` calls (seed 001, AttnBlock).

    ``q, k, v: (B, C, H, W) -> (B, C, H, W)``. The weight matrix is
    ``(B, HW, HW)``: every spatial position attends to every other one, with the
    C channels as the feature vector. This is *spatial* self-attention; the
    seed's notes call it "channel attention", which it is not (a channel
    attention matrix would be ``(C, C)``).
    """
    b, c, h, w = q.shape
    q = rearrange(q, "b c h w -> b (h w) c")
    k = rearrange(k, "b c h w -> b c (h w)")
    weights = torch.bmm(q, k) * c**-0.5  # (B, HW, HW): weights[b, i, j] = <q_i, k_j> / sqrt(C)
    weights = weights.softmax(dim=2)
    v = rearrange(v, "b c h w -> b c (h w)")
    out = torch.bmm(v, weights.transpose(1, 2))  # (B, C, HW): out[:, :, i] = sum_j w[i, j] v[:, :, j]
    return rearrange(out, "b c (h w) -> b c h w", h=h, w=w)


def attention_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same attention as :func:`attention_bmm` through ``F.scaled_dot_product_attention``.

    SDPA picks a fused kernel (flash / memory-efficient) on GPU and never
    materialises the ``(HW, HW)`` matrix there. ``(B, C, H, W) -> (B, C, H, W)``.
    """
    b, c, h, w = q.shape
    q, k, v = (rearrange(t, "b c h w -> b 1 (h w) c") for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)  # scale defaults to 1/sqrt(C)
    return rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with a residual connection.

    ``(B, C, H, W) -> (B, C, H, W)``: GroupNorm, 1x1 convs for q, k, v, attention
    over the H*W positions, a 1x1 output projection, plus the input.
    """

    def __init__(self, in_channels: int, num_groups: int = 32):
        super().__init__()
        self.in_channels = in_channels
        self.norm = Normalize(in_channels, num_groups)
        self.q = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.k = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.v = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.proj_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        h = attention_sdpa(self.q(h), self.k(h), self.v(h))
        return x + self.proj_out(h)


class LinAttnBlock(nn.Module):
    """Linear attention (Shen et al. 2021, as in latent-diffusion's ``LinAttnBlock``).

    ``(B, C, H, W) -> (B, C, H, W)``. Keys are softmaxed over positions and
    summarised into a ``(C, C)`` context before the queries read it, so the cost
    is linear in H*W instead of quadratic. Unlike latent-diffusion's block, this
    one keeps the GroupNorm and the residual connection of :class:`AttnBlock`, so
    the three attention types are interchangeable drop-ins.
    """

    def __init__(self, in_channels: int, num_groups: int = 32):
        super().__init__()
        self.norm = Normalize(in_channels, num_groups)
        self.to_qkv = nn.Conv2d(in_channels, 3 * in_channels, kernel_size=1, bias=False)
        self.to_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = rearrange(self.to_qkv(self.norm(x)), "b (three c) h w -> three b c (h w)", three=3)
        k = k.softmax(dim=-1)
        context = torch.einsum("bdn,ben->bde", k, v)  # (B, C, C)
        out = torch.einsum("bde,bdn->ben", context, q)  # (B, C, HW)
        return x + self.to_out(rearrange(out, "b c (h w) -> b c h w", h=h, w=w))


def make_attn(in_channels: int, attn_type: str = "vanilla", num_groups: int = 32) -> nn.Module:
    """Attention block by name: ``vanilla`` (SDPA), ``linear`` or ``none`` (identity)."""
    if attn_type == "vanilla":
        return AttnBlock(in_channels, num_groups)
    if attn_type == "linear":
        return LinAttnBlock(in_channels, num_groups)
    if attn_type == "none":
        return nn.Identity()
    raise ValueError(f"attn_type must be one of {ATTENTION_TYPES}, got {attn_type!r}")


class Downsample(nn.Module):
    """Halve H and W: ``(B, C, H, W) -> (B, C, H/2, W/2)``.

    ``with_conv=True``: a 3x3 stride-2 conv after padding one zero row/column on
    the bottom and right only (torch's ``padding=`` is symmetric, which would
    shift the sampling grid). ``with_conv=False``: 2x2 average pooling.
    """

    def __init__(self, in_channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_conv:
            return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class Upsample(nn.Module):
    """Double H and W: ``(B, C, H, W) -> (B, C, 2H, 2W)``.

    Nearest-neighbour interpolation, then (``with_conv=True``) a 3x3 conv. Every
    output pixel sees the same number of inputs, which avoids the checkerboard
    pattern of transposed convolutions (book appendix, Odena et al. 2016).
    """

    def __init__(self, in_channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x
