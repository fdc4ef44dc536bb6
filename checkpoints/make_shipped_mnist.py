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
``tests/test_shipped.py`` checks that each file loads and reproduces those metrics.

    .venv/bin/python checkpoints/make_shipped_mnist.py      # a few minutes on 2 cores
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_shipped import ship  # noqa: E402

# name -> (config, overrides)
RUNS = {
    "vqvae_mnist": ("configs/vqvae_mnist.yaml", []),
    "vqvae_mnist_seed": ("configs/vqvae_mnist_seed.yaml",
                         ["data.name=mnist", "data.root=null", "train.max_steps=2500", "train.log_every=50",
                          "train.ckpt_every=500", "train.eval_every=500", "train.sample_every=500"]),
}


def main(argv=None) -> int:
    return ship(RUNS, "shipped_mnist.json", argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
