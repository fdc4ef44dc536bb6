"""Matplotlib figures the chapters share: image grids, training curves, token maps.

Images are ``(B, C, H, W)`` tensors in [-1, 1] (the datasets' range) unless a
function says otherwise. Each function draws on a given ``ax`` or makes a new
figure, and returns the axes so a chapter can add titles or annotations.

Book: every chapter's figures.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from vqlearn.images import denormalize
from torchvision.utils import make_grid


def _new_axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, figsize=(8, 4)):
    """Tile a batch ``(B, C, H, W)`` in [-1, 1] (C = 1 or 3) into one picture, 2 white pixels between tiles."""
    ax = _new_axes(ax, figsize)
    grid = make_grid(denormalize(images.detach().float().cpu()), nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")  # grey images come back as 3 equal channels
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_reconstructions(originals: torch.Tensor, reconstructions: torch.Tensor, n: int = 8, title: str | None = None,
                         ax=None, figsize=(8, 2.6)):
    """Originals (top row) above their reconstructions (bottom row), first ``n`` of each."""
    n = min(n, len(originals))
    pair = torch.cat([originals[:n].detach().cpu(), reconstructions[:n].detach().cpu()])
    ax = show_images(pair, nrow=n, title=title, ax=ax, figsize=figsize)
    return ax


def plot_history(history: list[dict], keys: list[str], ax=None, logy: bool = False, figsize=(6, 3.5), labels=None):
    """Curves of metric ``keys`` against ``step`` from a training history (list of dicts)."""
    ax = _new_axes(ax, figsize)
    for i, key in enumerate(keys):
        points = [(row["step"], row[key]) for row in history if key in row]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=labels[i] if labels else key)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def show_token_map(codes: torch.Tensor, num_codes: int, ax=None, title: str | None = None, annotate: bool = True,
                   figsize=(3.5, 3.5)):
    """One image's ``(h, w)`` grid of code indices, coloured by index and (if small) labelled."""
    ax = _new_axes(ax, figsize)
    codes = codes.detach().cpu().numpy()
    ax.imshow(codes, cmap="viridis", vmin=0, vmax=num_codes - 1, interpolation="nearest")
    if annotate and codes.size <= 100:
        for (row, col), value in np.ndenumerate(codes):
            ax.text(col, row, str(value), ha="center", va="center", fontsize=7, color="white")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_code_histogram(counts: torch.Tensor, ax=None, title: str | None = None, figsize=(6, 2.5)):
    """Bar chart of how often each code was chosen, sorted from most to least used."""
    ax = _new_axes(ax, figsize)
    counts = torch.as_tensor(counts).double()
    ordered = torch.sort(counts, descending=True).values.numpy()
    ax.bar(np.arange(len(ordered)), ordered / max(ordered.sum(), 1), width=1.0)
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("share of vectors")
    if title:
        ax.set_title(title)
    return ax


def frame_player(fig, draw_frame, n_frames: int, interval_ms: int = 500, dpi: int = 80):
    """A slider-and-buttons player of ``n_frames`` precomputed frames that works in the static HTML book.

    ``draw_frame(i)`` updates ``fig`` to show frame ``i`` (set data of existing artists, or clear the axes and
    draw again). Every frame is rendered once, here, to a PNG at ``dpi`` and embedded with matplotlib's
    ``FuncAnimation.to_jshtml()``: the built page needs neither a kernel nor a network, and its slider scrubs
    through the frames. In Jupyter the same player works too; an ipywidgets control can add what a static
    player cannot (values that were not precomputed). The figure is closed, so only the player is shown.

    Returns an ``IPython.display.HTML`` object (display it, or let it be a cell's last value).
    """
    import matplotlib
    from matplotlib.animation import FuncAnimation
    from IPython.display import HTML

    if n_frames < 1:
        raise ValueError(f"frame_player needs n_frames >= 1, got {n_frames}")
    animation = FuncAnimation(fig, draw_frame, frames=n_frames, interval=interval_ms, repeat=False)
    with matplotlib.rc_context({"savefig.dpi": dpi}):
        html = animation.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(html)
