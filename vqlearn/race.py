"""The quantizer race: one VQ-VAE recipe, each quantizer swapped in, the same data and the same step budget.

    rows = run_race(["vq_taming", "fsq"], datasets=["mnist"], seeds=[0, 1], steps=500)
    print(format_table(summarize(rows)))

Every entry of :data:`RACE` is ``configs/vqvae_mnist.yaml`` (the same encoder, decoder,
optimiser and learning-rate schedule) with one quantizer, all at about 10 bits per latent
position: VQ and EMA with 1,024 codes, FSQ with levels ``[8, 5, 5, 5]`` (1,000 codes), LFQ
with 10 bits, residual VQ with 2 levels of 32 codes. On ``photos`` the recipe trains on
32x32 crops (:data:`DATASET_SETTINGS`).

A run is scored on the dataset's whole test split: PSNR and SSIM per image (averaged, as
:func:`vqlearn.evaluate.evaluate_model` computes them), and the *joint* code at each position
(for residual VQ the pair of level codes read as one number, so every quantizer is
counted over its ~1,024 possible codes): how many distinct codes occur, their share of
all codes, and the perplexity ``exp(H)`` of their histogram. ``bits`` is ``log2`` of
the number of possible codes. For FSQ and LFQ, ``stuck_channels`` counts the channels
that hold one value at 99 % or more of the positions (of ``channels``); ``ms_per_step`` is the run's wall-clock time over its
steps (including the codebook's k-means start where there is one), on whatever
machine runs it.

Used by ``bench/quantizer_race.py`` (the long race, several seeds) and
``bench/vqvae_mnist.py``. Book: chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from vqlearn.config import Config, load_config
from vqlearn.build import build_datasets
from vqlearn.codebook import CodebookUsage
from vqlearn.evaluate import evaluate_model
from vqlearn.scalar_quantize import FSQ, LFQ
from vqlearn.train import train

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "vqvae_mnist.yaml"

NO_ANTI_COLLAPSE = ["quantizer.init=null", "quantizer.restart_every=0"]


@dataclass(frozen=True)
class RaceEntry:
    """One quantizer of the race: what the table calls it and the config overrides that make it."""

    label: str
    overrides: tuple[str, ...]


RACE: dict[str, RaceEntry] = {
    "vq_taming": RaceEntry(
        "VQ as taming trains it (uniform start, legacy loss, no restarts)",
        ("quantizer.lookup_dim=null", "quantizer.legacy=true", *NO_ANTI_COLLAPSE)),
    "vq": RaceEntry("VQ + k-means start, dead-code restarts, 16-d lookup (the recipe)", ()),
    "ema": RaceEntry("EMA codebook + k-means start, restarts", ("quantizer.kind=ema", "quantizer.lookup_dim=null")),
    "vq_rotation": RaceEntry("VQ (the recipe) + rotation trick", ("quantizer.rotation_trick=true",)),
    "fsq": RaceEntry("FSQ, levels [8, 5, 5, 5]",
                     ("quantizer.kind=fsq", "quantizer.levels=[8, 5, 5, 5]", "quantizer.lookup_dim=null",
                      *NO_ANTI_COLLAPSE)),
    "lfq": RaceEntry("LFQ, 10 bits, entropy penalty 0.1",
                     ("quantizer.kind=lfq", "quantizer.lookup_dim=null", *NO_ANTI_COLLAPSE)),
    "rvq": RaceEntry("residual VQ, 2 levels x 32 codes + k-means, restarts",
                     ("quantizer.kind=rvq", "quantizer.depth=2", "model.num_codes=32", "quantizer.lookup_dim=null")),
}

# What a race run on each dataset changes in the recipe; the test split is the held-out data.
DATASET_SETTINGS: dict[str, tuple[str, ...]] = {
    "mnist": (),
    "photos": ("data.name=photos", "data.image_size=32"),
}

# Training only: no evaluation, samples or checkpoints during the run (the race scores the model afterwards).
QUIET_RUN = ("train.eval_batches=0", "train.eval_every=0", "train.sample_every=0", "train.ckpt_every=0",
             "train.log_every=50")


def race_config(quantizer: str, dataset: str, seed: int, steps: int, recipe=RECIPE, extra: Iterable[str] = ()) -> Config:
    """The recipe with ``quantizer`` (a key of :data:`RACE`), on ``dataset``, seeded, for ``steps`` steps
    (the learning-rate schedule spread over them); ``extra`` overrides apply last."""
    if quantizer not in RACE:
        raise ValueError(f"race quantizer must be one of {', '.join(RACE)}, got {quantizer!r}")
    if dataset not in DATASET_SETTINGS:
        raise ValueError(f"race dataset must be one of {', '.join(DATASET_SETTINGS)}, got {dataset!r}")
    overrides = [*RACE[quantizer].overrides, *DATASET_SETTINGS[dataset], *QUIET_RUN,
                 f"train.seed={seed}", f"train.max_steps={steps}", *extra]
    return load_config(recipe, overrides)


def joint_codes(codes: torch.Tensor, num_indices: int) -> torch.Tensor:
    """One code per position: ``(B, h, w)`` unchanged, or ``(B, depth, h, w)`` (residual VQ) read as
    a number in base ``num_indices`` with the first level most significant -> ``(B, h, w)``."""
    if codes.dim() == 3:
        return codes
    joint = torch.zeros_like(codes[:, 0])
    for level in range(codes.shape[1]):
        joint = joint * num_indices + codes[:, level]
    return joint


def code_statistics(counts: torch.Tensor) -> dict:
    """``counts (codes,)``, how often each possible code occurred -> codes used, their share, perplexity, bits
    (the statistics of :class:`vqlearn.codebook.CodebookUsage` over that histogram)."""
    usage = CodebookUsage(len(counts))
    usage.counts = counts
    return {
        "codes_used": usage.codes_used,
        "codes": len(counts),
        "usage": usage.fraction_used,
        "perplexity": usage.perplexity,
        "bits": math.log2(len(counts)),
    }


def stuck_channels(quantizer, counts: torch.Tensor, share: float = 0.99) -> int:
    """FSQ / LFQ: how many channels hold one value at ``share`` or more of the positions that ``counts`` (how
    often each code occurred) describes -- channels that carry (almost) no information. 0 for a codebook."""
    if not isinstance(quantizer, (FSQ, LFQ)):
        return 0
    codebook = quantizer.codebook.cpu()  # (codes, channels): every code's channel values
    stuck = 0
    for channel in codebook.unbind(1):
        values, which = channel.unique(return_inverse=True)
        per_value = torch.zeros(len(values), dtype=torch.float64).index_add_(0, which, counts.double())
        stuck += int(per_value.max() >= share * counts.sum())
    return stuck


@torch.no_grad()
def joint_code_counts(model, data, batch_size: int = 250) -> torch.Tensor:
    """``(possible,)``: how often each joint code (all levels of a position read as one number) occurs on ``data``."""
    model.eval()
    per_level = model.quantizers[0].num_indices
    counts = torch.zeros(per_level ** len(model.quantizers), dtype=torch.long)
    device = next(model.parameters()).device
    for start in range(0, len(data), batch_size):
        images = torch.stack([data[i] for i in range(start, min(start + batch_size, len(data)))]).to(device)
        codes = joint_codes(model.tokenize(images), per_level).flatten().cpu()
        counts += torch.bincount(codes, minlength=len(counts))
    return counts


def race_run(config: Config, test_set) -> dict:
    """Train ``config`` (in memory) and score it on ``test_set``: one row of the race."""
    result = train(config, progress=False)
    model = result.model
    metrics = evaluate_model(model, test_set, batch_size=250, code_counts=True)
    if len(model.quantizers) == 1:
        counts = metrics["code_counts"][0]
    else:  # residual VQ: count the joint codes, one more pass over the test split
        counts = joint_code_counts(model, test_set)
    quantizer = model.quantizers[0]
    return {
        "psnr": metrics["psnr"],
        "ssim": metrics["ssim"],
        **code_statistics(counts),
        "channels": quantizer.code_dim if isinstance(quantizer, (FSQ, LFQ)) else 0,
        "stuck_channels": stuck_channels(quantizer, counts),
        "steps": result.step,
        "ms_per_step": 1000 * result.seconds / max(result.step, 1),
        "model": model,
    }


def run_race(quantizers: Iterable[str] = tuple(RACE), datasets: Iterable[str] = ("mnist", "photos"),
             seeds: Iterable[int] = (0, 1, 2), steps: int = 500, recipe=RECIPE, extra: Iterable[str] = (),
             report: Callable[[dict], None] | None = None) -> list[dict]:
    """Every quantizer on every dataset with every seed; one row each (``model`` holds the trained model).

    ``report``, if given, is called with each row as it is finished (e.g. to print progress).
    """
    rows = []
    for dataset in datasets:
        test_set = None
        for quantizer in quantizers:
            for seed in seeds:
                config = race_config(quantizer, dataset, seed, steps, recipe, extra)
                if test_set is None:  # the held-out split, built once per dataset
                    test_set = build_datasets(config)[1]
                row = {"dataset": dataset, "quantizer": quantizer, "seed": seed, **race_run(config, test_set)}
                rows.append(row)
                if report is not None:
                    report(row)
    return rows


SCORES = ("psnr", "ssim", "codes_used", "codes", "usage", "perplexity", "bits", "channels", "stuck_channels",
          "ms_per_step")


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread over seeds: one dict per (dataset, quantizer), in the rows' order, with
    ``<score>`` (mean), ``<score>_std`` (standard deviation over seeds, 0 for one seed),
    ``<score>_min``, ``<score>_max`` and ``seeds`` (how many)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["quantizer"]), []).append(row)
    summary = []
    for (dataset, quantizer), runs in groups.items():
        entry = {"dataset": dataset, "quantizer": quantizer, "seeds": len(runs)}
        for score in SCORES:
            values = torch.tensor([float(run[score]) for run in runs], dtype=torch.float64)
            entry[score] = float(values.mean())
            entry[f"{score}_std"] = float(values.std()) if len(runs) > 1 else 0.0
            entry[f"{score}_min"] = float(values.min())
            entry[f"{score}_max"] = float(values.max())
        summary.append(entry)
    return summary


def format_table(summary: list[dict], markdown: bool = False) -> str:
    """The summary as a text (or Markdown) table: mean ± standard deviation over seeds."""
    header = ["dataset", "quantizer", "PSNR (dB)", "SSIM", "codes used", "perplexity", "bits", "stuck channels",
              "ms/step", "seeds"]
    lines = []
    for s in summary:
        lines.append([
            s["dataset"], s["quantizer"],
            f"{s['psnr']:.2f} ± {s['psnr_std']:.2f}",
            f"{s['ssim']:.3f} ± {s['ssim_std']:.3f}",
            f"{s['codes_used']:.0f} / {s['codes']:.0f}",
            f"{s['perplexity']:.0f} ± {s['perplexity_std']:.0f}",
            f"{s['bits']:.2f}",
            f"{s['stuck_channels']:.1f} / {s['channels']:.0f}" if s["channels"] else "-",
            f"{s['ms_per_step']:.1f}",
            str(s["seeds"]),
        ])
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                         + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in [header, *lines])
