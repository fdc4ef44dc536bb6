"""VQ-VAE-2 on 32x32 photo crops: chapter 6's CPU recipe vs rosinality's codebook setup, same steps.

    python bench/vqvae2_photos.py [--steps 300] [--only chapter|rosinality] [--threads N]

trains, for ``--steps`` optimiser steps each (seeded; deterministic on the CPU),

(a) ``rosinality``: the chapter's model (64 hidden, 32 residual channels, 2 x 512
    EMA codes of dim 64, batch 32) trained the way rosinality/vq-vae-2-pytorch
    trains: EMA codebooks drawn from a standard normal, no dead-code restarts,
    Adam at a constant 3e-4;
(b) ``chapter``: book/06_vqvae2.ipynb's CPU config -- k-means initialised
    codebooks, dead codes restarted every 50 steps, lr 1e-3 with 50 warmup steps
    and a cosine decay over the run;

then evaluates each on 512 held-out crops (the photos test split: chelsea, coffee,
flower) and prints held-out PSNR (dB, images in [0, 1]), the codes of each level
used on those crops, and the PSNR of painting each crop in its own mean colour.
The last line is the same table as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqlearn.data import build_dataset  # noqa: E402
from vqlearn.evaluate import evaluate_model  # noqa: E402
from vqlearn.images import denormalize  # noqa: E402
from vqlearn.metrics import psnr  # noqa: E402
from vqlearn.train import train  # noqa: E402

MODEL = {"family": "vqvae2", "channel": 64, "n_res_block": 2, "n_res_channel": 32, "embed_dim": 64, "num_codes": 512}
COMMON = {"batch_size": 32, "log_every": 50, "eval_batches": 0, "sample_every": 0, "ckpt_every": 0, "seed": 0}
RECIPES = {
    "rosinality": {"quantizer": {"kind": "ema", "beta": 0.25, "decay": 0.99},
                   "train": {"lr": 3e-4, **COMMON}},
    "chapter": {"quantizer": {"kind": "ema", "beta": 0.25, "decay": 0.99, "init": "kmeans", "init_vectors": 4096,
                              "restart_every": 50},
                "train": {"lr": 1e-3, "warmup_steps": 50, "lr_schedule": "cosine", **COMMON}},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per recipe (default 300)")
    parser.add_argument("--only", choices=tuple(RECIPES), default=None, help="run one recipe")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    test_set = build_dataset("photos", "test", image_size=32)
    x = torch.stack([test_set[i] for i in range(len(test_set))])
    flat = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    flat_psnr = psnr(denormalize(x), denormalize(flat)).mean().item()
    rows = []
    for name, recipe in RECIPES.items():
        if args.only not in (None, name):
            continue
        config = {"model": MODEL, "data": {"name": "photos", "image_size": 32}, "loss": {"rec_loss": "mse"},
                  "quantizer": recipe["quantizer"], "train": {**recipe["train"], "max_steps": args.steps}}
        result = train(config, progress=False)
        m = evaluate_model(result.model, test_set, batch_size=128)
        rows.append({"recipe": name, "steps": result.step, "psnr": round(m["psnr"], 2),
                     "codes_used_top": m["codes_used_top"], "codes_used_bottom": m["codes_used_bottom"],
                     "mean_colour_psnr": round(flat_psnr, 2), "seconds": round(result.seconds, 1)})
    print(f"torch threads {torch.get_num_threads()}, held-out: photos test ({len(test_set)} crops of 32 x 32)")
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in columns))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
