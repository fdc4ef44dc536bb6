"""Frequency-domain measures: overlap maps, checkerboard energy, frequency responses, sharpness.

Three small tools for upsampling layers, each exact rather than estimated:

* :func:`overlap_map` counts how many kernel taps land on each output position of a transposed
  convolution (Odena et al. 2016's "uneven overlap"), by running the transposed convolution itself
  on an all-ones input with an all-ones kernel.
* :func:`checkerboard_energy` is the fraction of an image's mean-removed power that sits at the three
  Nyquist frequencies ``(pi, 0)``, ``(0, pi)`` and ``(pi, pi)``: the energy of its period-2 pattern.
* :func:`frequency_response` is ``|H(omega)|`` of a 1-D filter on ``[0, pi]``, e.g. of the impulse
  response of "upsample, then filter".

And three for how sharp reconstructions are, on the same radial frequency grid:

* :func:`radial_power_spectrum` is each image's power in rings of spatial frequency, from 0 to
  the corner of the spectrum;
* :func:`high_frequency_energy` is the mean square of an image's high-pass part: the power above
  ``cutoff`` cycles per pixel (Nyquist is 0.5);
* :func:`high_frequency_ratio` divides a reconstruction's high-frequency energy by its original's:
  below 1 is blurrier than the original, 1 is as much fine detail, above 1 more (noise, artifacts).

Book: chapter "Appendix: checkerboard artifacts", chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def overlap_map(kernel_size: int, stride: int, size: int, *, dims: int = 2, padding: int = 0) -> torch.Tensor:
    """How many input positions paint each output position of a transposed convolution.

    Runs ``conv_transpose{dims}d`` on an all-ones input of ``size`` positions per axis with an all-ones
    ``kernel_size`` kernel, so each output value is the number of (input, tap) pairs that reach it.

    Shapes: ``dims=1 -> (L_out,)``, ``dims=2 -> (L_out, L_out)``, with
    ``L_out = (size - 1) * stride - 2 * padding + kernel_size`` (PyTorch's formula, no output padding).
    In 2-D the map is the outer product of the 1-D map with itself.

    Book: chapter "Appendix: checkerboard artifacts".
    """
    if dims not in (1, 2):
        raise ValueError(f"overlap_map: dims must be 1 or 2, got {dims}")
    if kernel_size < 1 or stride < 1 or size < 1:
        raise ValueError(f"overlap_map: kernel_size, stride and size must be >= 1, got {kernel_size}, {stride}, {size}")
    ones_in = torch.ones((1, 1) + (size,) * dims, dtype=torch.float64)
    ones_kernel = torch.ones((1, 1) + (kernel_size,) * dims, dtype=torch.float64)
    transpose = F.conv_transpose1d if dims == 1 else F.conv_transpose2d
    return transpose(ones_in, ones_kernel, stride=stride, padding=padding)[0, 0]


def checkerboard_energy(images: torch.Tensor) -> torch.Tensor:
    """The fraction of each image's mean-removed spectral power at the Nyquist frequencies.

    ``images``: ``(B, C, H, W)`` (or ``(H, W)``, treated as one single-channel image) with H and W even,
    since only then does the discrete Fourier transform have a bin at frequency ``pi``. Returns ``(B,)``
    (a 0-d tensor for an ``(H, W)`` input), each value in ``[0, 1]``::

        E = (|X(pi, 0)|^2 + |X(0, pi)|^2 + |X(pi, pi)|^2) / sum_{k != (0, 0)} |X(k)|^2

    summed over channels. ``X(pi, 0) = sum_{h, w} x[h, w] (-1)^h`` and so on: these three bins hold
    exactly the part of the image that repeats with period 2 (the 2x2 checkerboard and the stripes
    of alternating rows or columns) and nothing else. The denominator is the total power minus the
    mean's (Parseval: ``H W sum (x - mean)^2``). A pure checkerboard gives 1, a linear ramp across W
    columns ``3 / (W^2 - 1)``, and an image without any variation 0 (defined, not 0/0).

    Book: chapter "Appendix: checkerboard artifacts".
    """
    single = images.dim() == 2
    if single:
        images = images[None, None]
    if images.dim() != 4:
        raise ValueError(f"checkerboard_energy: expected (B, C, H, W) or (H, W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if height % 2 or width % 2:
        raise ValueError(
            f"checkerboard_energy: H and W must be even to have a Nyquist bin, got {height} x {width}; crop one row/column"
        )
    x = images.double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    rows = 1.0 - 2.0 * (torch.arange(height, device=x.device) % 2).double()  # (+1, -1, +1, ...)
    cols = 1.0 - 2.0 * (torch.arange(width, device=x.device) % 2).double()
    x_pi_0 = (x * rows[:, None]).sum(dim=(-2, -1))  # (B, C)
    x_0_pi = (x * cols[None, :]).sum(dim=(-2, -1))
    x_pi_pi = (x * (rows[:, None] * cols[None, :])).sum(dim=(-2, -1))
    nyquist = (x_pi_0**2 + x_0_pi**2 + x_pi_pi**2).sum(dim=1)  # (B,)
    total = height * width * (x**2).sum(dim=(1, 2, 3))  # (B,), Parseval
    energy = torch.where(total > 0, nyquist / total.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(total))
    energy = energy.to(images.dtype if images.is_floating_point() else torch.float32)
    return energy[0] if single else energy


def frequency_response(impulse_response: torch.Tensor, n_fft: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """``(omega, |H(omega)|)`` of a 1-D FIR filter, for ``omega`` in ``[0, pi]`` (radians per sample).

    ``impulse_response``: ``(L,)`` with ``L <= n_fft``. Returns two ``(n_fft // 2 + 1,)`` tensors, computed
    with a zero-padded real FFT. For nearest-neighbour upsampling by 2 the impulse response is
    ``[1, 1]`` and ``|H(omega)| = 2 |cos(omega / 2)|``.

    Book: chapter "Appendix: checkerboard artifacts".
    """
    h = torch.as_tensor(impulse_response, dtype=torch.float64).flatten()
    if h.numel() > n_fft:
        raise ValueError(f"frequency_response: {h.numel()} taps do not fit n_fft={n_fft}; raise n_fft")
    magnitude = torch.fft.rfft(h, n=n_fft).abs()
    omega = torch.linspace(0.0, math.pi, n_fft // 2 + 1, dtype=torch.float64)
    return omega, magnitude


def _radial_frequency(height: int, width: int, device=None) -> torch.Tensor:
    """``(H, W)``: the radius ``sqrt(fy^2 + fx^2)`` in cycles per pixel of each bin of ``fft2``."""
    fy = torch.fft.fftfreq(height, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, device=device, dtype=torch.float64)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _power(images: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, C, H, W) -> (B, H, W)``: ``|fft2|^2 / (H W)^2`` summed over channels, in float64.

    Scaled so that summing it over all bins gives ``sum_c mean_{h,w} x_c[h, w]^2`` (Parseval).
    """
    if images.dim() != 4:
        raise ValueError(f"{name}: expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    spectrum = torch.fft.fft2(images.double())
    return (spectrum.real**2 + spectrum.imag**2).sum(dim=1) / (height * width) ** 2


def radial_power_spectrum(images: torch.Tensor, num_bins: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """``(edges, power)``: each image's spectral power in rings of radial frequency.

    ``images``: ``(B, C, H, W)``. The radius ``sqrt(fy^2 + fx^2)`` of each bin of the 2-D DFT, in cycles
    per pixel, runs from 0 (the mean) to ``sqrt(2) / 2`` (the ``(pi, pi)`` corner; Nyquist along one
    axis is 0.5). Returns ``edges``: ``(num_bins + 1,)`` ring boundaries from 0 to that corner, and
    ``power``: ``(B, num_bins)`` float64, the power ``|X(k)|^2 / (H W)^2`` summed over the bins of each
    ring (a bin on an edge goes to the ring above it; the last ring includes its outer edge) and over
    channels. The rings add up to the mean square of the image (Parseval), mean included, so the
    values are comparable between image sizes.

    Book: chapter "Training a VQ-GAN".
    """
    if num_bins < 1:
        raise ValueError(f"radial_power_spectrum: num_bins must be >= 1, got {num_bins}")
    power = _power(images, "radial_power_spectrum")
    radius = _radial_frequency(*images.shape[-2:], device=images.device)
    edges = torch.linspace(0.0, math.sqrt(2) / 2, num_bins + 1, dtype=torch.float64, device=images.device)
    ring = (torch.bucketize(radius, edges, right=True) - 1).clamp(0, num_bins - 1)  # (H, W) ring index
    rings = torch.zeros(power.shape[0], num_bins, dtype=torch.float64, device=images.device)
    rings.index_add_(1, ring.flatten(), power.flatten(1))
    return edges, rings


def high_frequency_energy(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """The mean square of each image's high-pass part: its power above ``cutoff`` cycles per pixel.

    ``images``: ``(B, C, H, W)`` -> ``(B,)`` float64, ``sum_c mean_{h,w} hp(x_c)[h, w]^2`` where ``hp`` is
    the ideal high-pass filter that keeps the DFT bins of radial frequency ``sqrt(fy^2 + fx^2) > cutoff``
    (0 < ``cutoff`` < ``sqrt(2) / 2``; Nyquist is 0.5). With the default 0.25 it keeps the details whose
    period is shorter than 4 pixels, i.e. finer than one token of a factor-4 autoencoder. A blurred image
    loses most of this energy; a constant image has none.

    Book: chapter "Training a VQ-GAN".
    """
    if not 0 < cutoff < math.sqrt(2) / 2:
        raise ValueError(f"high_frequency_energy: cutoff must be in (0, 0.707) cycles per pixel, got {cutoff}")
    power = _power(images, "high_frequency_energy")
    mask = _radial_frequency(*images.shape[-2:], device=images.device) > cutoff
    return (power * mask).sum(dim=(1, 2))


def high_frequency_ratio(reconstructions: torch.Tensor, originals: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Sharpness of reconstructions relative to their originals: ``E_hf(reconstruction) / E_hf(original)``.

    ``reconstructions``, ``originals``: ``(B, C, H, W)`` of the same shape (and value range) ->
    ``(B,)`` float64, with :func:`high_frequency_energy` at ``cutoff``. 1 means as much fine detail as
    the original (not necessarily the *same* detail: PSNR measures that); a blurry reconstruction
    scores below 1, one with noise or artifacts can score above. An original with no energy above
    ``cutoff`` gives ``inf`` (or ``nan`` if its reconstruction has none either).

    Book: chapter "Training a VQ-GAN".
    """
    if reconstructions.shape != originals.shape:
        raise ValueError(
            f"high_frequency_ratio: reconstructions {tuple(reconstructions.shape)} and originals "
            f"{tuple(originals.shape)} must have the same shape"
        )
    return high_frequency_energy(reconstructions, cutoff) / high_frequency_energy(originals, cutoff)
