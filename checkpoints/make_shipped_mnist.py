"""Train the MNIST tokenizers that ship with the repository (``make checkpoints-mnist``).

Two runs on the 5,000 embedded MNIST digits, started together (one CPU thread each), with the
configs' own seed:

* ``vqvae_mnist``: ``configs/vqvae_mnist.yaml`` as it is (vqlearn's recipe: 1,024 codes, k-means
  init, dead-code restarts; 2,500 steps);
* ``vqvae_mnist_seed``: ``configs/vqvae_mnist_seed.yaml`` (seed 000's recipe) on the same digits
  for the same 2,500 steps: the tokenizer whose codebook collapses, kept so the chapter
  "Generating images from tokens" can train a prior on its tokens without retraining it.

For each run this writes, into this folder, ``NAME.pt`` (``{"config", "model", "discriminator",
"step"}``, weights in float16; :func:`vqlearn.build.load_model` reads it), ``NAME.metrics.jsonl``
(the training log) and, for both, ``shipped_mnist.json``: overrides, steps, training time, torch
version, file size and the held-out metrics of the shipped weights
(:func:`vqlearn.evaluate.evaluate_model` on the test split, batch 64, one thread).
``tests/test_prior.py`` checks that each file loads and reproduces those metrics.

    .venv/bin/python checkpoints/make_shipped_mnist.py      # a few minutes on 2 cores
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
sys.path.insert(0, str(HERE))
from make_shipped import EVAL_BATCH_SIZE, evaluate_shipped, shipped_state, training_seconds  # noqa: E402

# name -> (config, overrides)
RUNS = {
    "vqvae_mnist": ("configs/vqvae_mnist.yaml", []),
    "vqvae_mnist_seed": ("configs/vqvae_mnist_seed.yaml",
                         ["data.name=mnist", "data.root=null", "train.max_steps=2500", "train.log_every=50",
                          "train.ckpt_every=500", "train.eval_every=500", "train.sample_every=500"]),
}


def train_all(run_dir: Path) -> None:
    """Start one ``python -m vqlearn.train`` per run, one thread each, and wait for both."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    processes = {}
    for name, (config, overrides) in RUNS.items():
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(REPO / "runs" / "shipped"), help="where the training runs write")
    args = parser.parse_args(argv)
    run_dir = Path(args.runs)
    train_all(run_dir)
    record = {}
    for name, (config, overrides) in RUNS.items():
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
    (HERE / "shipped_mnist.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
