"""Image quality metrics: PSNR and SSIM, on images in [0, 1].

The models work on images in [-1, 1]; :func:`vqlearn.images.denormalize` maps
them (and clamps reconstructions that overshoot) to [0, 1], where both metrics
use a peak value of 1.0. Every function returns one number per image, ``(B,)``, so
a caller can average over a dataset image by image.

Book: chapter "Training a VQ-VAE" (how good is 26 dB?).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB: ``10 log10(peak^2 / mse)``.

    ``x, y: (B, C, H, W)`` in [0, 1] -> ``(B,)``. Identical images give ``inf``.
    """
    _check_pair(x, y)
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(peak**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """``(size, size)`` normalised 2-D Gaussian, the SSIM window of Wang et al. 2004."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    peak: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), averaged over channels and positions.

    ``x, y: (B, C, H, W)`` in [0, 1] -> ``(B,)``, computed in float32 (float64 if
    given float64: the variances are differences of nearly equal numbers). Local means, variances and the
    covariance come from an ``window_size`` x ``window_size`` Gaussian window
    (sigma 1.5), evaluated only where the window fits inside the image ("valid"),
    and combine as

        SSIM = (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)),

    ``C1 = (k1 peak)^2``, ``C2 = (k2 peak)^2``. This matches
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``.
    """
    _check_pair(x, y)
    h, w = x.shape[-2:]
    if h < window_size or w < window_size:
        raise ValueError(f"SSIM with an {window_size}x{window_size} window needs images at least that big, got {h}x{w}")
    channels = x.shape[1]
    dtype = torch.promote_types(x.dtype, torch.float32)  # float64 stays float64
    window = gaussian_window(window_size, sigma).to(x.device, dtype)
    window = window.expand(channels, 1, window_size, window_size)  # depthwise

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    x, y = x.to(dtype), y.to(dtype)
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two image batches (B, C, H, W) of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
