"""The one switch that sizes every chapter: ``cpu`` (seconds on a laptop) or ``gpu`` (the seeds' settings).

``VQLEARN_PROFILE=cpu|gpu`` chooses; without it the profile is ``gpu`` when
CUDA is available and ``cpu`` otherwise. Chapters read sizes through
:func:`by_profile`::

    steps = by_profile(cpu=300, gpu=20_000)
"""

from __future__ import annotations

import os

import torch

PROFILES = ("cpu", "gpu")


def active_profile() -> str:
    """``"cpu"`` or ``"gpu"``: ``$VQLEARN_PROFILE`` if set, else by CUDA availability."""
    chosen = os.environ.get("VQLEARN_PROFILE", "").strip().lower()
    if not chosen:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if chosen not in PROFILES:
        raise ValueError(f"VQLEARN_PROFILE must be one of {PROFILES}, got {chosen!r}")
    if chosen == "gpu" and not torch.cuda.is_available():
        raise ValueError("VQLEARN_PROFILE=gpu but CUDA is not available here; unset it or use VQLEARN_PROFILE=cpu")
    return chosen


def by_profile(cpu, gpu):
    """The value for the active profile."""
    return cpu if active_profile() == "cpu" else gpu
