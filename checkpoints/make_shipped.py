"""Train the VQ-GAN checkpoints that ship with the repository (``make checkpoints``).

Two runs of ``configs/vqgan_photos.yaml`` with the config's own seed and step count,
started together (one CPU thread each):

* ``vqgan_photos``: the config as it is (the discriminator starts at ``loss.disc_start``);
* ``vqgan_photos_no_gan``: the same config with ``loss.disc_factor=0``, i.e. the same
  autoencoder, codebook, data order and step count without the GAN term. Both runs
  draw the same random numbers, so they are identical until ``disc_start``.

For each run this writes, into this folder:

* ``NAME.pt``: ``{"config", "model", "discriminator", "step"}`` with the weights stored as
  float16 (half the size); :func:`vqlearn.build.load_model` reads it like a training checkpoint
  (the discriminator, untrained in the no-GAN run, is there for the book's feature distances);
* ``NAME.metrics.jsonl``: the run's training log (every ``log_every`` steps);

and ``shipped.json``: per run, the overrides, the steps, the training time, the torch
version, and the held-out metrics of the *shipped* (float16-rounded) weights from
:func:`vqlearn.evaluate.evaluate_model` on the config's test split. ``tests/test_shipped.py``
checks that each file loads, matches its config and reproduces those metrics.

    .venv/bin/python checkpoints/make_shipped.py            # about 15-25 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# name -> (config, overrides)
RUNS = {
    "vqgan_photos": ("configs/vqgan_photos.yaml", []),
    "vqgan_photos_no_gan": ("configs/vqgan_photos.yaml", ["loss.disc_factor=0"]),
}
EVAL_BATCH_SIZE = 64


def half(state_dict: dict | None) -> dict | None:
    """A state dict with its floating-point tensors stored as float16."""
    if state_dict is None:
        return None
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}


def shipped_state(checkpoint: dict) -> dict:
    """What loading needs (config, model, step) and the trained discriminator, as float16."""
    return {
        "config": checkpoint["config"],
        "model": half(checkpoint["model"]),
        "discriminator": half(checkpoint["discriminator"]),
        "step": checkpoint["step"],
    }


def evaluate_shipped(path: Path) -> dict:
    """Held-out metrics of the file at ``path``, as the test recomputes them."""
    from vqlearn.build import build_datasets, load_model
    from vqlearn.evaluate import evaluate_model

    torch.set_num_threads(1)
    model, config = load_model(path)
    _, test_set = build_datasets(config)
    return evaluate_model(model, test_set, batch_size=EVAL_BATCH_SIZE)


def train_all(runs: dict, run_dir: Path) -> None:
    """Start one ``python -m vqlearn.train`` per run, one thread each, and wait for all of them."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    processes = {}
    for name, (config, overrides) in runs.items():
        out = run_dir / name
        if out.exists():
            shutil.rmtree(out)
        command = [sys.executable, "-m", "vqlearn.train", str(REPO / config), "--out", str(out), "--no-progress"]
        for override in overrides:
            command += ["--set", override]
        print("running:", " ".join(command), flush=True)
        processes[name] = subprocess.Popen(command, env=env)
    for name, process in processes.items():
        if process.wait() != 0:
            raise SystemExit(f"training {name} failed (exit {process.returncode})")


def training_seconds(metrics_path: Path) -> float:
    """The trainer's own clock at the last logged step (``time`` in ``metrics.jsonl``)."""
    last = json.loads(metrics_path.read_text().splitlines()[-1])
    return last["time"]


def ship(runs: dict, record_name: str, argv=None, description: str = "") -> int:
    """Train ``runs`` (name -> (config, overrides)) side by side and write their files and ``record_name``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", default=str(REPO / "runs" / "shipped"), help="where the training runs write")
    args = parser.parse_args(argv)
    run_dir = Path(args.runs)
    train_all(runs, run_dir)
    record = {}
    for name, (config, overrides) in runs.items():
        checkpoint = torch.load(run_dir / name / "last.ckpt", map_location="cpu", weights_only=True)
        target = HERE / f"{name}.pt"
        torch.save(shipped_state(checkpoint), target)
        shutil.copyfile(run_dir / name / "metrics.jsonl", HERE / f"{name}.metrics.jsonl")
        record[name] = {
            "config": config,
            "overrides": overrides,
            "steps": checkpoint["step"],
            "train_seconds": round(training_seconds(run_dir / name / "metrics.jsonl")),
            "threads": 1,
            "torch": torch.__version__,
            "size_bytes": target.stat().st_size,
            "eval_batch_size": EVAL_BATCH_SIZE,
            "metrics": evaluate_shipped(target),
        }
        print(name, json.dumps(record[name]), flush=True)
    (HERE / record_name).write_text(json.dumps(record, indent=2) + "\n")
    return 0


def main(argv=None) -> int:
    return ship(RUNS, "shipped.json", argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
