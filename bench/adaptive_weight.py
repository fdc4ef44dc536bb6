"""The adaptive GAN weight against fixed weights, over several seeds: the table behind chapter 13's claims.

    python bench/adaptive_weight.py [--seeds 0,1,2] [--steps 500] [--disc-start 150]
                                    [--settings adaptive,fixed,matched,none] [--fixed-weight 0.8] [--threads N]

trains chapter 13's small VQ-GAN (``configs/vqgan_photos.yaml`` narrowed to ``ch=16``,
8 GroupNorm groups, dead-code restarts every 50 steps: the chapter's ``OVERRIDES``) on
32x32 crops of the embedded photos, once per seed and per way of weighting the GAN term
``w * g_loss`` in the autoencoder's loss, all for the same number of steps:

* ``adaptive``: vqlearn's rule, ``w = disc_weight * lambda`` with lambda of VQ-GAN's eq. 7
  (``disc_weight`` 0.8, the config's);
* ``fixed``: ``w = --fixed-weight`` at every step (default 0.8: the loss without lambda,
  ``L_rec + disc_weight * L_GAN``);
* ``matched``: a constant equal to the median of the ``adaptive`` run's ``w`` for the same
  seed (so ``adaptive`` must run first): the same typical size, no adaptation;
* ``none``: no GAN term at all (``loss.disc_factor=0``), the plain autoencoder.

The fixed weights replace the loss module's ``calculate_adaptive_weight`` on the
trainer's instance (as the chapter does); vqlearn itself is not changed. Every run
records, at each step from ``disc_start`` on, the two gradient norms at the decoder's
last layer, ``||grad L_rec||`` and ``||grad L_GAN||``, and the weight ``w`` used.

One row per run: held-out PSNR (dB, all 512 ``photos`` test crops, on [0, 1] images),
the GAN term's share of the gradient at the last layer,
``s = ||w grad L_GAN|| / (||grad L_rec|| + ||w grad L_GAN||)`` (mean and 5th-95th
percentile over the steps with the GAN on), and the weight ``w`` (median, 5th-95th
percentile). Then a summary over seeds (min-max), and per seed the PSNR of each setting
minus ``adaptive``.

On the CPU training is seeded and deterministic, so the table does not depend on the
machine's load (only the seconds column does).
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
from vqlearn.losses import AdaptiveWeightRecorder  # noqa: E402
from vqlearn.train import Trainer, load_config  # noqa: E402

# The chapter's model: book/13_adaptive_weight.ipynb, OVERRIDES.
OVERRIDES = ["model.ddconfig.ch=16", "model.ddconfig.num_groups=8", "quantizer.restart_every=50",
             "train.log_every=1", "train.eval_batches=0", "train.sample_every=0", "train.ckpt_every=0"]
SETTINGS = ("adaptive", "fixed", "matched", "none")


def run(setting: str, seed: int, steps: int, disc_start: int, fixed: float | None):
    """Train one run; returns ``(model, recorder rows)``."""
    overrides = OVERRIDES + [f"train.max_steps={steps}", f"train.seed={seed}", f"loss.disc_start={disc_start}"]
    if setting == "none":
        overrides.append("loss.disc_factor=0")
    trainer = Trainer(load_config(ROOT / "configs" / "vqgan_photos.yaml", overrides), progress=False)
    recorder = AdaptiveWeightRecorder(trainer.loss_fn, fixed)
    trainer.loss_fn.calculate_adaptive_weight = recorder
    try:
        trainer.run(steps)
    finally:
        trainer.close()
    return trainer.model, recorder.rows


def quantiles(values: torch.Tensor) -> tuple[float, float, float]:
    q = torch.quantile(values, torch.tensor([0.05, 0.5, 0.95], dtype=values.dtype))
    return float(q[0]), float(q[1]), float(q[2])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    parser.add_argument("--steps", type=int, default=500, help="autoencoder steps per run (default 500)")
    parser.add_argument("--disc-start", type=int, default=150, help="loss.disc_start (default 150)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, from {list(SETTINGS)}")
    parser.add_argument("--fixed-weight", type=float, default=0.8, help="the constant of `fixed` (default 0.8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.settings.split(",")
    for name in names:
        if name not in SETTINGS:
            parser.error(f"--settings: unknown setting {name!r}; choose from {list(SETTINGS)}")
    if "matched" in names and ("adaptive" not in names or names.index("adaptive") > names.index("matched")):
        parser.error("--settings: `matched` copies the `adaptive` run's median weight, so list `adaptive` first")

    test_set = build_dataset("photos", "test", image_size=32)
    print(f"VQ-GAN ch 16 on 32x32 photo crops: {args.steps} steps of batch 16, GAN term from step {args.disc_start}; "
          f"held-out: {len(test_set)} test crops; torch threads {torch.get_num_threads()}")
    print(f"{'setting':9s} {'seed':>4s} {'PSNR dB':>7s} {'share mean':>10s} {'share 5-95%':>12s} "
          f"{'w median':>8s} {'w 5-95%':>13s} {'seconds':>7s}")
    rows, median_weight = [], {}
    for name in names:
        for seed in seeds:
            start = time.time()
            fixed = {"fixed": args.fixed_weight, "matched": median_weight.get(seed)}.get(name)
            model, recorded = run(name, seed, args.steps, args.disc_start, fixed)
            psnr = evaluate_model(model, test_set, batch_size=128)["psnr"]
            row = dict(name=name, seed=seed, psnr=psnr)
            line = f"{name:9s} {seed:4d} {psnr:7.2f}"
            if recorded:
                r = torch.tensor(recorded, dtype=torch.float64)
                gan = r[:, 2] * r[:, 1]
                share = gan / (r[:, 0] + gan)
                s_lo, _, s_hi = quantiles(share)
                w_lo, w_med, w_hi = quantiles(r[:, 2])
                if name == "adaptive":
                    median_weight[seed] = round(w_med, 3)
                row.update(share=float(share.mean()), share_lo=s_lo, share_hi=s_hi, w=w_med)
                line += f" {row['share']:10.3f} {s_lo:5.3f}-{s_hi:5.3f} {w_med:8.3f} {w_lo:6.3f}-{w_hi:6.3f}"
            else:
                line += f" {'-':>10s} {'-':>12s} {'-':>8s} {'-':>13s}"
            rows.append(row)
            print(line + f" {time.time() - start:7.1f}", flush=True)

    print("\nsummary over seeds " + ",".join(map(str, seeds)) + ": min-max")
    for name in names:
        mine = [r for r in rows if r["name"] == name]
        psnr = [r["psnr"] for r in mine]
        line = f"{name:9s} PSNR {min(psnr):5.2f}-{max(psnr):5.2f} dB"
        if "share" in mine[0]:
            lo = min(r["share_lo"] for r in mine)
            hi = max(r["share_hi"] for r in mine)
            spread = [r["share_hi"] - r["share_lo"] for r in mine]
            line += (f"   share mean {min(r['share'] for r in mine):.3f}-{max(r['share'] for r in mine):.3f}"
                     f", 5-95% band {lo:.3f}-{hi:.3f} (width {min(spread):.3f}-{max(spread):.3f})")
        print(line)
    if "adaptive" in names:
        by = {(r["name"], r["seed"]): r for r in rows}
        for name in names:
            if name != "adaptive":
                gaps = [by[name, s]["psnr"] - by["adaptive", s]["psnr"] for s in seeds]
                print(f"PSNR {name} - adaptive per seed: " + ", ".join(f"{g:+.2f}" for g in gaps) + " dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
