"""The quantizer race, long version: every quantizer of vqlearn.race on MNIST and the photos, several seeds.

    python bench/quantizer_race.py [--steps 1000] [--seeds 0,1,2] [--datasets mnist,photos]
                                   [--quantizers vq_taming,vq,ema,vq_rotation,fsq,lfq,rvq]
                                   [--set key=value ...] [--threads 1] [--json out.json]

The same recipe (``configs/vqvae_mnist.yaml``: encoder, decoder, optimiser, cosine schedule
over ``--steps``) with each quantizer at ~10 bits per position, trained for ``--steps``
steps per seed, scored on the dataset's whole test split (500 MNIST digits; 512 crops
of photos never seen in training). The chapter "Quantizers after VQ-GAN" runs a short
version of this race live; this one is long enough for the ranking to settle.

Prints one line per run as it finishes, then the table of means ± standard deviations over
the seeds (text and Markdown), then the per-run rows as JSON (also written to ``--json``).
On the CPU training is seeded and deterministic with one thread, so every column except
ms/step is the same on every machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqlearn.race import DATASET_SETTINGS, RACE, format_table, run_race, summarize  # noqa: E402


def names(text: str, allowed, what: str, parser) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    for name in chosen:
        if name not in allowed:
            parser.error(f"--{what}: unknown name {name!r}; choose from {', '.join(allowed)}")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--datasets", default=",".join(DATASET_SETTINGS), help="comma-separated datasets")
    parser.add_argument("--quantizers", default=",".join(RACE), help="comma-separated quantizers of vqlearn.race.RACE")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the recipe for every run; repeatable")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1: deterministic)")
    parser.add_argument("--json", default=None, help="also write the per-run rows to this file")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    datasets = names(args.datasets, DATASET_SETTINGS, "datasets", parser)
    quantizers = names(args.quantizers, RACE, "quantizers", parser)
    torch.set_num_threads(args.threads)

    start = time.time()

    def report(row: dict) -> None:
        print(f"[{time.time() - start:6.0f} s] {row['dataset']:6s} {row['quantizer']:11s} seed {row['seed']}: "
              f"{row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}, {row['codes_used']}/{row['codes']} codes, "
              f"perplexity {row['perplexity']:.0f}, {row['ms_per_step']:.1f} ms/step", flush=True)

    rows = run_race(quantizers, datasets, seeds, args.steps, extra=args.overrides, report=report)
    rows = [{key: value for key, value in row.items() if key != "model"} for row in rows]
    summary = summarize(rows)
    print(f"\n{args.steps} steps per run, seeds {seeds}, torch threads {torch.get_num_threads()}, "
          f"{time.time() - start:.0f} s in all")
    print(format_table(summary))
    print()
    print(format_table(summary, markdown=True))
    print(json.dumps(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "seeds": seeds, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
