"""Frequency-domain measures for upsampling layers: overlap maps, checkerboard energy, frequency responses.

Three small tools, each exact rather than estimated:

* :func:`overlap_map` counts how many kernel taps land on each output position of a transposed
  convolution (Odena et al. 2016's "uneven overlap"), by running the transposed convolution itself
  on an all-ones input with an all-ones kernel.
* :func:`checkerboard_energy` is the fraction of an image's mean-removed power that sits at the three
  Nyquist frequencies ``(pi, 0)``, ``(0, pi)`` and ``(pi, pi)``: the energy of its period-2 pattern.
* :func:`frequency_response` is ``|H(omega)|`` of a 1-D filter on ``[0, pi]``, e.g. of the impulse
  response of "upsample, then filter".

Book: chapter "Appendix: checkerboard artifacts".
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
