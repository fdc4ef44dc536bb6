"""One training loop for VQ-VAE, VQ-VAE-2 and VQ-GAN.

From Python (what the book does)::

    from vqlearn.train import load_config, train
    config = load_config("configs/vqvae_mnist.yaml", ["train.max_steps=200"])
    result = train(config)                 # nothing written to disk
    result.history[-1]["train/psnr"], result.model

From the shell::

    python -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist [--set train.lr=1e-3]
        [--max-steps N] [--max-seconds S] [--resume]
    torchrun --nproc_per_node=2 -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist

writes ``DIR/last.ckpt``, ``DIR/metrics.jsonl`` (one JSON object per logging
interval) and ``DIR/samples/step_XXXXXX.png`` (originals over reconstructions).

The loop itself is :class:`vqlearn.trainer.Trainer`; this module is the way in
(:func:`train`, the command line) and keeps the names users import from it.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import torch.distributed as dist
from torch.utils.data import Dataset

from vqlearn import runtime
from vqlearn.build import learning_rate
from vqlearn.checkpoint import CheckpointError
from vqlearn.config import Config, ConfigError, load_config
from vqlearn.errors import NonFiniteLossError
from vqlearn.trainer import Trainer, TrainResult

__all__ = ["train", "TrainResult", "Trainer", "load_config", "learning_rate", "NonFiniteLossError", "main"]


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
) -> TrainResult:
    """Train the model ``config`` describes; returns a :class:`TrainResult`.

    Args:
        config: a :class:`~vqlearn.config.Config`, a dict, or a YAML path.
        out_dir: where ``last.ckpt``, ``metrics.jsonl`` and ``samples/`` go; None
            keeps everything in memory (``result.history``, ``result.model``).
        max_steps: total autoencoder steps (default ``train.max_steps``).
        max_seconds: wall-clock budget of this call (default ``train.max_seconds``).
        resume: continue from ``out_dir/last.ckpt`` if it exists.
        callback: called with each history row; returning True stops training.
        progress: show a tqdm bar.
        overrides: ``"key=value"`` strings applied to ``config``.
        train_data, val_data: datasets to use instead of the config's.

    Raises :class:`NonFiniteLossError` (naming the step) if a loss is NaN/inf.
    Under ``torchrun`` the process group is joined here and left at the end.
    """
    if not isinstance(config, Config) or overrides:
        config = load_config(config, overrides)
    created_group = runtime.init_distributed(config.train.device)
    try:
        trainer = Trainer(config, out_dir, progress, callback, train_data, val_data)
        try:
            if resume:
                trainer.resume()
            return trainer.run(max_steps, max_seconds)
        finally:
            trainer.close()
    finally:
        if created_group:
            dist.destroy_process_group()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vqlearn.train", description="Train a VQ-VAE, VQ-VAE-2 or VQ-GAN.")
    parser.add_argument("config", help="YAML config, e.g. configs/vqvae_mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value), e.g. --set train.lr=1e-3; repeatable")
    parser.add_argument("--out", default=None, help="output directory (default runs/<config name>)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps in total")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after S seconds of training")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join("runs", Path(args.config).stem)
    try:
        config = load_config(args.config, args.overrides)
        result = train(config, out, args.max_steps, args.max_seconds, args.resume, progress=not args.no_progress)
    except (ConfigError, CheckpointError, NonFiniteLossError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    if result.checkpoint is not None:
        summary = {"step": result.step, "stopped": result.stopped, "checkpoint": str(result.checkpoint)}
        summary.update(result.final)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
