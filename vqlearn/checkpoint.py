"""Reading and writing checkpoints safely.

* :func:`save_atomic` writes to a temporary file in the same directory and
  renames it over the target, so a crash mid-write never leaves a truncated
  checkpoint where the last good one was. The file gets the user's umask, like
  any other file; a full disk or an unwritable folder is an :class:`OutputDirError`
  that says the previous checkpoint is intact. :func:`remove_stale_temporaries`
  deletes the temporary files a killed save left behind.
* :func:`load_checkpoint` first checks the file: a directory, random bytes, a
  text file or a truncated download is named as such, and the CRC-32 that
  ``torch.save`` stores for every entry of its zip archive is verified
  (``torch.load`` does not: a flipped byte in tensor data would otherwise load
  silently as a different model). It then reads with ``weights_only=True``:
  tensors, numbers, strings and containers only. A file that needs arbitrary
  Python objects to be unpickled is refused with an explanation, because
  unpickling runs code.
* :func:`load_state_dict_checked` loads a state dict strictly and, on a
  mismatch, lists the missing and unexpected keys and the shape mismatches.
"""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch
import torch.nn as nn

from vqlearn.errors import CheckpointError, OutputDirError

__all__ = ["CheckpointError", "save_atomic", "load_checkpoint", "verify_checkpoint_file", "remove_stale_temporaries",
           "describe_mismatch", "load_state_dict_checked", "write_failure"]

_TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_failure(path: str | os.PathLike, error: BaseException, what: str = "checkpoint") -> OutputDirError:
    """An :class:`OutputDirError` for a failed write of ``path``: the reason in words and what to do."""
    number = getattr(error, "errno", None)
    if number in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
        reason = "the disk is full (no space left on device); free some space or use another --out"
    elif number in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "permission denied (or a read-only file system); choose a writable --out"
    else:
        reason = f"{type(error).__name__}: {error}"
    return OutputDirError(f"cannot write the {what} {path}: {reason}")


def save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through a temporary file and an atomic rename.

    The file gets the permissions of the user's umask (``mkstemp`` alone would make it 0600).
    A failed write (full disk, no permission) removes the temporary file, leaves any
    previous ``path`` untouched and raises :class:`OutputDirError` saying so.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    except OSError as error:
        raise write_failure(path, error) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, (OSError, RuntimeError)) and not isinstance(error, OutputDirError):
            kept = " (the previous checkpoint there is intact)" if path.exists() else ""
            failure = write_failure(path, error)
            raise OutputDirError(str(failure) + kept) from error
        raise


def remove_stale_temporaries(folder: str | os.PathLike, name: str = "last.ckpt") -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) that a save killed mid-write left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(folder.glob(f".{name}.*{_TMP_SUFFIX}"))
    for path in stale:
        try:
            path.unlink()
        except OSError:
            pass
    return stale


_ZIP_MAGIC = b"PK\x03\x04"


def verify_checkpoint_file(path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a readable file that looks like a torch checkpoint
    and (for the zip format of ``torch.save``) every entry matches its CRC-32.

    Files in torch's legacy (pre-1.6, plain pickle) format have no checksums; they pass to ``torch.load``.
    """
    path = Path(path)
    if path.is_dir():
        hint = f" (did you mean {path / 'last.ckpt'}?)" if (path / "last.ckpt").is_file() else ""
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; pass the file itself{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except Exception as error:  # BadZipFile, a damaged header, an impossible size, ...
            raise CheckpointError(f"{path} is damaged (its zip structure does not read: {error}); "
                                  f"use another copy of the checkpoint") from None
        if bad is not None:
            raise CheckpointError(
                f"{path} is corrupt: its entry {bad!r} fails the CRC-32 check torch.save wrote "
                f"(the file changed after it was saved: a disk or copy error); use another copy of the checkpoint"
            )
        return
    if head == _ZIP_MAGIC:
        raise CheckpointError(f"{path} is truncated: it starts like a torch checkpoint but its end is missing "
                              f"(an interrupted copy or download?); use a complete copy")
    if head[:1] != b"\x80":  # every torch file is a zip archive or (legacy format) a binary pickle
        raise CheckpointError(f"{path} is not a vqlearn/torch checkpoint (it is neither a torch.save zip archive "
                              f"nor a pickle; first bytes {head!r})")


def load_checkpoint(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` after :func:`verify_checkpoint_file`, with errors that say what to do."""
    path = Path(path)
    verify_checkpoint_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next((line.strip() for line in str(error).splitlines() if "GLOBAL" in line), "")
        if not reason:
            raise CheckpointError(f"{path} is not a vqlearn/torch checkpoint, or it is damaged "
                                  f"(unpickling failed: {str(error).splitlines()[0][:200]})") from None
        raise CheckpointError(
            f"refusing to load {path}: it needs Python objects unpickled that are not plain tensors, "
            f"numbers, strings or containers, and unpickling such objects can run arbitrary code. "
            f"{reason}\n"
            f"If you trust the file, convert it once in a separate Python session: "
            f"ckpt = torch.load(path, weights_only=False); "
            f"torch.save({{'state_dict': ckpt['state_dict']}}, 'clean.ckpt') -- then load clean.ckpt."
        ) from None
    except Exception as error:  # a damaged file can make torch.load raise almost anything
        first = (str(error).splitlines() or [""])[0][:200]
        raise CheckpointError(f"cannot read checkpoint {path}: it is damaged or not a torch checkpoint "
                              f"({type(error).__name__}: {first})") from None


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
    wrong_type = sorted(f"{k}: checkpoint holds a {type(state_dict[k]).__name__}, not a tensor"
                        for k in set(expected) & set(state_dict) if not torch.is_tensor(state_dict[k]))

    def listing(title: str, keys: list[str]) -> str:
        shown = "\n    ".join(keys[:20]) + (f"\n    ... and {len(keys) - 20} more" if len(keys) > 20 else "")
        return f"  {title} ({len(keys)}):\n    {shown}\n" if keys else ""

    return (
        listing("missing keys (in the model, not in the checkpoint)", missing)
        + listing("unexpected keys (in the checkpoint, not in the model)", unexpected)
        + listing("shape mismatches", wrong_shape)
        + listing("not tensors", wrong_type)
    )


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """``model.load_state_dict(state_dict, strict=True)``, raising :class:`CheckpointError`
    with every missing/unexpected key and shape mismatch listed when they do not fit."""
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) for k in state_dict):
        raise CheckpointError(f"{source} is not a state dict (a mapping of names to tensors); "
                              f"got a {type(state_dict).__name__}")
    problems = describe_mismatch(model, state_dict)
    if problems:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}:\n{problems}"
            f"Check that the model was built with the same configuration as the one that was saved."
        )
    model.load_state_dict(state_dict, strict=True)
