"""The errors a user's mistake can raise: each message names the key or argument, the value and the fix.

They live here, below every other module, so the data registry, the config
schema, the checkpoint reader and the trainer can all raise them without
importing each other. Every one is a :class:`UserError`: a mistake in a
config, a path, an argument or a file, not a bug in vqlearn.

:func:`run_cli` is the one place where they become a command's short
``error: ...`` message and non-zero exit status; any other exception (a bug)
keeps its traceback. ``--debug`` or ``VQLEARN_DEBUG=1`` brings the traceback
back for user errors too.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Callable


class UserError(Exception):
    """Base class: an error about the user's input. A CLI prints its message and exits with ``exit_code``
    (2, argparse's status for bad usage; 1 for a run that stopped on its own, :class:`NonFiniteLossError`)."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config that cannot be used; the message names the dotted key and the fix."""


class UsageError(UserError, ValueError):
    """A command-line or API argument that cannot be used; the message names the argument and the fix."""


class DataError(UserError, ValueError):
    """Data that cannot be used: an empty folder, too few images, the wrong channels or dtype."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset's files, or its folder, are not where the config says."""


class OutputDirError(UserError, OSError):
    """An output directory that cannot be written, or that holds a run that would be overwritten."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be read, is not a vqlearn/torch checkpoint, or does not fit the model."""


class NonFiniteLossError(UserError, RuntimeError):
    """A loss became NaN or infinite; training stopped before that step changed any weight."""

    exit_code = 1


class DistributedTimeoutError(UserError, RuntimeError):
    """Under torchrun, another rank stopped answering for ``train.dist_timeout`` seconds."""

    exit_code = 1


DEBUG_ENV = "VQLEARN_DEBUG"


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` was given, or the environment sets ``VQLEARN_DEBUG`` to something other than ``0``/empty."""
    return flag or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def run_cli(body: Callable[[], int], debug: bool = False) -> int:
    """Run a command's ``body``; a :class:`UserError` becomes ``error: <message>`` on stderr and its exit code.

    With ``debug`` (or ``VQLEARN_DEBUG=1``) the exception propagates with its traceback.
    Other exceptions always propagate: they are bugs, and their traceback is what a report needs.
    """
    if debug_requested(debug):
        return body()
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return body()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return error.exit_code


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings in a command's output: ``warning: <message>``, without the source line."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)
