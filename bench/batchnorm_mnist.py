"""Is BatchNorm necessary for the VQ-VAE on MNIST? Several seeds and widths, with and without it.

    python bench/batchnorm_mnist.py [--dims 64] [--seeds 0 1 2] [--steps 1000] [--check 300] [--threads 1]

Trains chapter 2's configuration ("The VQ-VAE": the reproduction's architecture, K = 512,
batch 32, Adam lr 3e-4, beta 0.25, MSE, held-out evaluation every 50 steps on the 500
held-out MNIST digits of ``mnist``) once with ``batchnorm=True`` and once with
``batchnorm=False`` for every (dim, seed), and prints one markdown table row per run:
held-out PSNR (dB, images in [0, 1]) and distinct codes used at step ``--check`` and at
the last step, SSIM at the last step, the codebook + commitment loss on the training
batches at the last step (averaged over the last 25 steps), and the PSNR gap (with minus
without BatchNorm).
Two runs with the same seed start from identical convolution weights and codebook
(BatchNorm draws no random numbers) and see the same batches; on the CPU training is
seeded and deterministic, so the table does not depend on the machine's load.

Chapter 2 shows the table this printed (its command is written next to it).
"""

from __future__ import annotations

import argparse
import torch

from vqlearn.train import train


def config(dim: int, batchnorm: bool, seed: int, steps: int) -> dict:
    """Chapter 2's experiment config (the same dict as the chapter's ``config``)."""
    return {
        "model": {"family": "vqvae", "dim": dim, "num_codes": 512, "batchnorm": batchnorm},
        "data": {"name": "mnist"},
        "quantizer": {"beta": 0.25},
        "loss": {"rec_loss": "mse"},
        "train": {"batch_size": 32, "lr": 3e-4, "max_steps": steps, "seed": seed, "log_every": 25,
                  "eval_every": 50, "eval_batches": 16, "sample_every": 0, "ckpt_every": 0},
    }


def held_out(history: list[dict], step: int) -> dict:
    (row,) = [row for row in history if row["step"] == step and "val/psnr" in row]
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--check", type=int, default=300, help="the early step also reported (a multiple of 50)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    check, end = args.check, args.steps
    print(f"| dim | seed | BatchNorm | PSNR @ {check} (dB) | codes @ {check} | PSNR @ {end} (dB) | "
          f"codes @ {end} | SSIM @ {end} | codebook loss @ {end} | gap @ {check} / @ {end} (dB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dim in args.dims:
        for seed in args.seeds:
            rows = {}
            for batchnorm in (True, False):
                history = train(config(dim, batchnorm, seed, end), progress=False).history
                quant = [row["train/quant_loss"] for row in history if "train/quant_loss" in row][-1]
                rows[batchnorm] = (held_out(history, check), held_out(history, end), quant)
            for batchnorm in (True, False):
                early, last, quant = rows[batchnorm]
                gap = ""
                if batchnorm:
                    gap_early = early["val/psnr"] - rows[False][0]["val/psnr"]
                    gap_end = last["val/psnr"] - rows[False][1]["val/psnr"]
                    gap = f"{gap_early:+.2f} / {gap_end:+.2f}"
                print(f"| {dim} | {seed} | {'with' if batchnorm else 'without'} | {early['val/psnr']:.2f} | "
                      f"{early['val/codes_used']} | {last['val/psnr']:.2f} | {last['val/codes_used']} | "
                      f"{last['val/ssim']:.3f} | {quant:.2f} | {gap} |", flush=True)


if __name__ == "__main__":
    main()
