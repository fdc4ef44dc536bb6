"""One training loop for VQ-VAE, VQ-VAE-2 and VQ-GAN.

From Python (what the book does)::

    from vqlearn.train import load_config, train
    config = load_config("configs/vqvae_mnist.yaml", ["train.max_steps=200"])
    result = train(config)                 # nothing written to disk
    result.history[-1]["train/psnr"], result.model

From the shell::

    python -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist [--set train.lr=1e-3]
        [--max-steps N] [--max-seconds S] [--resume | --overwrite] [--debug]
    torchrun --nproc_per_node=2 -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist

writes ``DIR/last.ckpt``, ``DIR/metrics.jsonl`` (one JSON object per logging
interval) and ``DIR/samples/step_XXXXXX.png`` (originals over reconstructions).

Nothing already trained is lost by mistake: an ``--out`` that holds a run is
refused unless ``--resume`` continues it or ``--overwrite`` deletes it (its
``last.ckpt``, ``metrics.jsonl`` and ``samples/step_*.png``) on purpose.
``--resume`` with no ``last.ckpt`` there warns in one line and starts a fresh
run (so a job script can always pass it). A mistake in the config, the
arguments, the data or a checkpoint ends in one ``error: ...`` line and a
non-zero exit; ``--debug`` (or ``VQLEARN_DEBUG=1``) shows the traceback.

The loop itself is :class:`vqlearn.trainer.Trainer`; this module is the way in
(:func:`train`, the command line) and keeps the names users import from it.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable

import torch.distributed as dist
from torch.utils.data import Dataset

from vqlearn import runtime
from vqlearn.build import check_data_fits_model, learning_rate
from vqlearn.checkpoint import remove_stale_temporaries, write_failure
from vqlearn.config import Config, load_config
from vqlearn.data import check_data_paths
from vqlearn.errors import DistributedTimeoutError, NonFiniteLossError, OutputDirError, UsageError, run_cli
from vqlearn.trainer import Trainer, TrainResult

__all__ = ["train", "TrainResult", "Trainer", "load_config", "learning_rate", "NonFiniteLossError", "main",
           "check_run_arguments", "prepare_out_dir"]

RUN_FILES = ("last.ckpt", "metrics.jsonl", "samples")
"""What a run writes into its output directory (and ``--overwrite`` deletes)."""


# ---------------------------------------------------------------------------
# Checks that run before any setup
# ---------------------------------------------------------------------------


def check_run_arguments(max_steps=None, max_seconds=None) -> None:
    """Refuse step and time budgets that are not numbers in range (``max_steps=0`` is valid: step 0 is saved)."""
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise UsageError(f"--max-steps (max_steps) must be an integer >= 0 (0 saves and evaluates the initial "
                         f"model), got {max_steps!r}")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or math.isnan(max_seconds) or max_seconds <= 0):
        raise UsageError(f"--max-seconds (max_seconds) must be a number > 0, got {max_seconds!r}")


def prepare_out_dir(out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> Path:
    """Check (and create) a run's output directory before any model or data is set up.

    Refused, with one line that names the fix: a path that is a file; a directory that
    cannot be written; a directory that holds a run (``last.ckpt``, ``metrics.jsonl``,
    ``samples/``) when neither ``resume`` continues it nor ``overwrite`` deletes it.
    Temporary files of a checkpoint save that was killed are removed.
    """
    out = Path(out_dir)
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite deletes it; pass one of them")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is a file, not a directory; choose another --out")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not resume:
        if not overwrite:
            raise OutputDirError(
                f"--out {out} already holds a run ({', '.join(found)}); continue it with --resume, delete it and "
                f"start over with --overwrite, or choose another --out (from Python: resume=True / overwrite=True)"
            )
        try:
            for name in ("last.ckpt", "metrics.jsonl"):
                if (out / name).exists():
                    (out / name).unlink()
            samples = out / "samples"
            if samples.is_dir():
                for png in samples.glob("step_*.png"):
                    png.unlink()
                if not any(samples.iterdir()):
                    samples.rmdir()
        except OSError as error:
            raise write_failure(out, error, "output directory") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".vqlearn-write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise write_failure(out, error, "output directory") from None
    remove_stale_temporaries(out)
    return out


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def train(
    config,
    out_dir: str | os.PathLike | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    resume: bool = False,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = True,
    overrides=(),
    train_data: Dataset | None = None,
    val_data: Dataset | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train the model ``config`` describes; returns a :class:`TrainResult`.

    Args:
        config: a :class:`~vqlearn.config.Config`, a dict, or a YAML path.
        out_dir: where ``last.ckpt``, ``metrics.jsonl`` and ``samples/`` go; None
            keeps everything in memory (``result.history``, ``result.model``).
        max_steps: total autoencoder steps (default ``train.max_steps``); 0 saves and
            evaluates the initial model.
        max_seconds: wall-clock budget of this call (default ``train.max_seconds``).
        resume: continue from ``out_dir/last.ckpt`` (none there: a warning, and a fresh run).
        callback: called with each history row; returning True stops training.
        progress: show a tqdm bar.
        overrides: ``"key=value"`` strings applied to ``config``.
        train_data, val_data: datasets to use instead of the config's.
        overwrite: delete the run already in ``out_dir`` (without it, and without
            ``resume``, an ``out_dir`` holding a run is refused).

    Raises :class:`NonFiniteLossError` (naming the step) if a loss is NaN/inf;
    :class:`~vqlearn.errors.OutputDirError` for an ``out_dir`` that holds a run, is a
    file or cannot be written (before any setup); other :class:`~vqlearn.errors.UserError` s
    for the config, the data and the checkpoint.
    Under ``torchrun`` the process group is joined here and left at the end.
    """
    check_run_arguments(max_steps, max_seconds)
    if not isinstance(config, Config) or overrides:
        config = load_config(config, overrides)
    if train_data is None:  # the config's data: cheap checks before anything is created
        check_data_paths(config.data)
        check_data_fits_model(config)
    if out_dir is not None and runtime.distributed_env()[0] == 0:
        prepare_out_dir(out_dir, resume, overwrite)
    created_group = runtime.init_distributed(config.train.device, config.train.dist_timeout)
    try:
        trainer = Trainer(config, out_dir, progress, callback, train_data, val_data)
        try:
            if resume:
                trainer.resume()
            return trainer.run(max_steps, max_seconds)
        finally:
            trainer.close()
    except RuntimeError as error:
        if created_group and runtime.is_peer_failure(error):
            rank, world_size = runtime.world()
            raise DistributedTimeoutError(
                f"rank {rank} of {world_size}: {runtime.describe_peer_failure(error)} within "
                f"train.dist_timeout={config.train.dist_timeout:g} s; the run stopped (resume it with --resume; "
                f"raise train.dist_timeout if a rank legitimately works alone that long, e.g. a long evaluation)"
            ) from error
        raise
    finally:
        if created_group:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vqlearn.train", description="Train a VQ-VAE, VQ-VAE-2 or VQ-GAN.")
    parser.add_argument("config", help="YAML config, e.g. configs/vqvae_mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value), e.g. --set train.lr=1e-3; repeatable")
    parser.add_argument("--out", default=None, help="output directory (default runs/<config name>)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after N steps in total (0: save and evaluate the initial model)")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after S seconds of training")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last.ckpt (if there is none: a warning, and a fresh run)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run already in OUT (last.ckpt, metrics.jsonl, samples/) and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: VQLEARN_DEBUG=1)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: _main(args), args.debug)


def _main(args: argparse.Namespace) -> int:
    check_run_arguments(args.max_steps, args.max_seconds)
    out = args.out or os.path.join("runs", Path(args.config).stem)
    config = load_config(args.config, args.overrides)
    result = train(config, out, args.max_steps, args.max_seconds, args.resume, progress=not args.no_progress,
                   overwrite=args.overwrite)
    if result.checkpoint is not None:
        summary = {"step": result.step, "stopped": result.stopped, "checkpoint": str(result.checkpoint)}
        summary.update(result.final)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
