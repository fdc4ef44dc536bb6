"""The PatchGAN discriminator of VQ-GAN (seed 000 §Discriminator).

A plain stack of 4x4 convolutions (Isola et al. 2017, "pix2pix", §3.2.2):
``n_layers`` of them halve the resolution, two more keep it, and the last one
has a single output channel. The result is not one real/fake score per image
but a grid of logits, one per overlapping image patch. Each logit only sees a
``receptive_field(n_layers)`` square of the input (70x70 pixels for the default
``n_layers=3``, hence "the 70x70 PatchGAN"), so the discriminator judges local
texture and sharpness and leaves global structure to the reconstruction loss.
On small inputs the window can cover most of the image: ``n_layers=2`` on the
32x32 crops of ``configs/vqgan_photos.yaml`` sees 23 to 31 of the 32 rows per logit.

The layers live in an ``nn.Sequential`` named ``main`` with taming-transformers'
layout, so its checkpoint keys (``loss.discriminator.main.N.*``) load unchanged.

Book: chapter "The PatchGAN discriminator".
"""

from __future__ import annotations

import torch
import torch.nn as nn

KERNEL_SIZE = 4
PADDING = 1


def conv_strides(n_layers: int = 3) -> list[int]:
    """Strides of the discriminator's convolutions, first to last.

    ``n_layers`` stride-2 convs, then a stride-1 conv that widens the channels
    once more and the stride-1 conv to one logit: ``[2] * n_layers + [1, 1]``.
    :class:`NLayerDiscriminator`, :func:`receptive_field` and
    :func:`output_size` all read the architecture from here.
    """
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
    return [2] * n_layers + [1, 1]


def receptive_field(n_layers: int = 3, kernel_size: int = KERNEL_SIZE) -> int:
    """Side, in input pixels, of the square that one output logit depends on.

    Walk the convolutions from the last to the first: a window of ``r`` positions
    after a conv of kernel ``k`` and stride ``s`` covers ``(r - 1) * s + k``
    positions before it. Starting from one logit (``r = 1``) this gives 70 for
    ``n_layers=3``, 34 for 2 and 16 for 1 with the 4x4 kernels of the seed.
    """
    r = 1
    for stride in reversed(conv_strides(n_layers)):
        r = (r - 1) * stride + kernel_size
    return r


def output_size(input_size: int, n_layers: int = 3, kernel_size: int = KERNEL_SIZE, padding: int = PADDING) -> int:
    """Side of the logit grid for a square input of side ``input_size``.

    Each conv maps ``n -> floor((n + 2 * padding - kernel_size) / stride) + 1``;
    e.g. 256 -> 30 and 64 -> 6 for ``n_layers=3``. Returns a value <= 0 when the
    input is too small for the network (``NLayerDiscriminator`` then raises).
    """
    n = input_size
    for stride in conv_strides(n_layers):
        if n + 2 * padding < kernel_size:
            return 0
        n = (n + 2 * padding - kernel_size) // stride + 1
    return n


def patch_window(
    index: int, n_layers: int = 3, kernel_size: int = KERNEL_SIZE, padding: int = PADDING
) -> tuple[int, int]:
    """Input rows (or columns) ``[start, stop)`` that output row (or column) ``index`` sees.

    The window is ``receptive_field(n_layers)`` long and moves by the product of
    the strides (``2**n_layers``) per output step; ``start`` is shifted left by
    the zero padding of every layer, measured in input pixels. Positions < 0 or
    past the image are padding. For ``n_layers=3``: ``[8 i - 23, 8 i + 47)``.
    """
    jump, offset = 1, 0
    for stride in conv_strides(n_layers):
        offset += padding * jump
        jump *= stride
    start = index * jump - offset
    return start, start + receptive_field(n_layers, kernel_size)


def patch_coverage(input_size: int, n_layers: int = 3) -> torch.Tensor:
    """How many logits see each pixel of a square ``input_size`` image: int64 ``(input_size, input_size)``.

    Logit ``(i, j)`` sees rows :func:`patch_window` ``(i)`` and columns
    :func:`patch_window` ``(j)``; this counts, for every pixel, the logits of the
    ``output_size(input_size, n_layers)``-square grid whose window contains it.
    The windows are ``receptive_field(n_layers)`` wide and ``2**n_layers`` apart,
    so away from the borders a pixel is seen by ``ceil(70 / 8)**2 = 81`` or
    ``floor(70 / 8)**2 = 64`` logits (or a mix, 72) for ``n_layers=3``, and by
    fewer near the borders, where windows hang into the zero padding.
    """
    side = output_size(input_size, n_layers)
    if side < 1:
        raise ValueError(
            f"input_size={input_size} is too small for n_layers={n_layers}: the logit grid would be empty; "
            f"use a larger input_size or fewer layers"
        )
    per_axis = torch.zeros(input_size, dtype=torch.int64)
    for index in range(side):
        start, stop = patch_window(index, n_layers)
        per_axis[max(start, 0) : min(stop, input_size)] += 1
    return per_axis[:, None] * per_axis[None, :]


class ActNorm(nn.Module):
    """Per-channel affine normalisation with data-dependent initialisation.

    ``(B, C, H, W) -> (B, C, H, W)``: ``y = scale * (x + loc)`` with ``loc`` and
    ``scale`` of shape ``(1, C, 1, 1)`` (Kingma & Dhariwal 2018, "Glow", §3.1;
    the ``use_actnorm=True`` option of taming-transformers, whose parameter and
    buffer names this keeps). On the first forward pass in training mode,
    ``loc`` and ``scale`` are set from that batch so its output has zero mean and
    unit standard deviation per channel; afterwards they are ordinary trainable
    parameters. The ``initialized`` buffer (uint8, saved in the state dict)
    records that this has happened, so a loaded checkpoint is not re-initialised.
    Unlike BatchNorm, nothing depends on the batch after the first step.
    """

    def __init__(self, num_features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.loc = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``loc = -mean`` and ``scale = 1 / (std + eps)`` per channel of ``x``."""
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.loc.copy_(-mean)
        self.scale.copy_(1.0 / (std + self.eps))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.initialized.item() == 0:
            self.initialize(x)
        return self.scale * (x + self.loc)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator: images ``(B, input_nc, H, W)`` -> logits ``(B, 1, h, w)``.

    ``h = output_size(H, n_layers)`` (30 for 256, 6 for 64 with ``n_layers=3``).
    Logit ``[b, 0, i, j]`` is the discriminator's real-vs-fake score for the
    ``receptive_field(n_layers)``-pixel square of image ``b`` spanning rows
    ``patch_window(i)`` and columns ``patch_window(j)`` (a step of
    ``2**n_layers`` pixels per logit, so neighbouring squares overlap; squares at
    the border include zero padding). Large positive means "real".

    Layout (seed 000 §Discriminator; ``main.N`` indices for ``n_layers=3``)::

        0  conv 4x4 s2  input_nc -> ndf        (bias, no norm)
        1  LeakyReLU(0.2)
        2  conv 4x4 s2  ndf -> 2 ndf            3 norm   4 LeakyReLU
        5  conv 4x4 s2  2 ndf -> 4 ndf          6 norm   7 LeakyReLU
        8  conv 4x4 s1  4 ndf -> 8 ndf          9 norm  10 LeakyReLU
        11 conv 4x4 s1  8 ndf -> 1              (bias)

    Channel multipliers double per layer and stop at 8. The norm is BatchNorm2d
    (convs before it have no bias: BatchNorm's shift makes one redundant) or, with
    ``use_actnorm=True``, :class:`ActNorm` (convs keep their bias, as in taming).
    Apply :func:`weights_init` after construction for the seed's initialisation.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, use_actnorm: bool = False):
        super().__init__()
        strides = conv_strides(n_layers)
        if input_nc < 1 or ndf < 1:
            raise ValueError(f"input_nc and ndf must be >= 1, got input_nc={input_nc}, ndf={ndf}")
        self.input_nc = input_nc
        self.n_layers = n_layers
        norm_layer = ActNorm if use_actnorm else nn.BatchNorm2d
        conv_bias = use_actnorm

        def conv(c_in: int, c_out: int, stride: int, bias: bool) -> nn.Conv2d:
            return nn.Conv2d(c_in, c_out, kernel_size=KERNEL_SIZE, stride=stride, padding=PADDING, bias=bias)

        layers: list[nn.Module] = [conv(input_nc, ndf, strides[0], bias=True), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n, stride in enumerate(strides[1:-1], start=1):
            prev, mult = mult, min(2**n, 8)
            layers += [
                conv(ndf * prev, ndf * mult, stride, bias=conv_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(conv(ndf * mult, 1, strides[-1], bias=True))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_nc, H, W) -> (B, 1, h, w)`` patch logits."""
        self._check_input(x)
        return self.main(x)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after every LeakyReLU, then the logits: ``n_layers + 2`` tensors.

        ``(B, input_nc, H, W) -> [(B, ndf, H/2, W/2), (B, 2 ndf, H/4, W/4), ..., (B, 1, h, w)]``;
        the last entry equals :meth:`forward`'s output. These are the features
        that feature matching compares (:attr:`VQLPIPSWithDiscriminator.feature_matching_weight`).
        """
        self._check_input(x)
        features = []
        for layer in self.main:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        features.append(x)
        return features

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.input_nc:
            raise ValueError(
                f"the discriminator expects images (B, {self.input_nc}, H, W), got {tuple(x.shape)}; "
                f"build it with input_nc={x.shape[1] if x.dim() == 4 else '<channels>'} "
                f"(disc_in_channels in the loss; add cond's channels when disc_conditional=True)"
            )
        smallest = min(x.shape[-2:])
        if output_size(smallest, self.n_layers) < 1:
            need = next(s for s in range(1, 10_000) if output_size(s, self.n_layers) >= 1)
            raise ValueError(
                f"input {tuple(x.shape[-2:])} is too small for a discriminator with n_layers={self.n_layers}: "
                f"height and width must be at least {need}; use larger images or fewer layers"
            )


def weights_init(module: nn.Module) -> None:
    """The seed's initialisation (DCGAN, Radford et al. 2016, §4), for ``model.apply``.

    Conv weights ~ N(0, 0.02) (conv biases keep torch's default); BatchNorm
    weights ~ N(1, 0.02) and biases 0. Other modules, ActNorm included, are left
    alone (ActNorm initialises itself from the first batch).
    """
    if isinstance(module, nn.modules.conv._ConvNd):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, mean=1.0, std=0.02)
        nn.init.zeros_(module.bias)
