"""Reading and writing checkpoints safely.

* :func:`save_atomic` writes to a temporary file in the same directory and
  renames it over the target, so a crash mid-write never leaves a truncated
  checkpoint where the last good one was.
* :func:`load_checkpoint` reads with ``weights_only=True``: tensors, numbers,
  strings and containers only. A file that needs arbitrary Python objects to
  be unpickled is refused with an explanation, because unpickling runs code.
* :func:`load_state_dict_checked` loads a state dict strictly and, on a
  mismatch, lists the missing and unexpected keys and the shape mismatches.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import torch
import torch.nn as nn


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or does not fit the model."""


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with errors that say what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        raise CheckpointError(
            f"refusing to load {path}: it needs Python objects unpickled that are not plain tensors, "
            f"numbers, strings or containers, and unpickling such objects can run arbitrary code. "
            f"{reason}\n"
            f"If you trust the file, convert it once in a separate Python session: "
            f"ckpt = torch.load(path, weights_only=False); "
            f"torch.save({{'state_dict': ckpt['state_dict']}}, 'clean.ckpt') -- then load clean.ckpt."
        ) from None
    except (RuntimeError, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a torch file?): {error}") from None


def describe_mismatch(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> str:
    """Human-readable list of missing keys, unexpected keys and shape mismatches ('' if none)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if torch.is_tensor(state_dict[k]) and state_dict[k].shape != expected[k].shape
    )

    def listing(title: str, keys: list[str]) -> str:
        shown = "\n    ".join(keys[:20]) + (f"\n    ... and {len(keys) - 20} more" if len(keys) > 20 else "")
        return f"  {title} ({len(keys)}):\n    {shown}\n" if keys else ""

    return (
        listing("missing keys (in the model, not in the checkpoint)", missing)
        + listing("unexpected keys (in the checkpoint, not in the model)", unexpected)
        + listing("shape mismatches", wrong_shape)
    )


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``model.load_state_dict(state_dict, strict=True)``, raising :class:`CheckpointError`
    with every missing/unexpected key and shape mismatch listed when they do not fit."""
    problems = describe_mismatch(model, state_dict)
    if problems:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}:\n{problems}"
            f"Check that the model was built with the same configuration as the one that was saved."
        )
    model.load_state_dict(state_dict, strict=True)
