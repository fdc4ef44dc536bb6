"""The checkpoints shipped in checkpoints/: the VQ-GANs of ``make checkpoints`` (checkpoints/make_shipped.py,
recorded in ``shipped.json``) and the MNIST tokenizers of ``make checkpoints-mnist``
(checkpoints/make_shipped_mnist.py, recorded in ``shipped_mnist.json``).

For each recorded run: the file loads with :func:`vqlearn.build.load_model`, its stored config is the recorded
config file with the recorded overrides (and nothing else), its step count and size are the recorded ones, its
training log reaches that step, and :func:`vqlearn.evaluate.evaluate_model` on the config's held-out split
reproduces the recorded metrics. Evaluation on the CPU with one thread (tests/conftest.py) is deterministic, so the
tolerances are tight; they leave room only for float rounding on another CPU or torch build. About 8 s.

The chapters "Training a VQ-GAN" and "Generating images from tokens" load these files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vqlearn.build import build_datasets, load_model, resolve_in_channels
from vqlearn.config import config_to_dict, load_config
from vqlearn.evaluate import evaluate_model

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"
# record file -> (the command that writes it, its runs)
RECORDS = {
    "shipped.json": ("make checkpoints", ("vqgan_photos", "vqgan_photos_no_gan")),
    "shipped_mnist.json": ("make checkpoints-mnist", ("vqvae_mnist", "vqvae_mnist_seed")),
}
RUNS = [(record_name, name) for record_name, (_, names) in RECORDS.items() for name in names]
MAX_BYTES = {name: 8 * 2**20 for _, name in RUNS}  # "small: a few MB"
MAX_BYTES["vqvae_mnist_seed"] = 10 * 2**20  # the seed's recipe is 256 channels wide: 4.9M weights


def record(record_name: str) -> dict:
    path = SHIPPED / record_name
    assert path.is_file(), f"{path} is missing: run `{RECORDS[record_name][0]}`"
    return json.loads(path.read_text())


@pytest.mark.parametrize("record_name", RECORDS)
def test_each_record_lists_its_runs(record_name):
    assert sorted(record(record_name)) == sorted(RECORDS[record_name][1])


def test_the_no_gan_run_differs_only_by_its_disc_factor():
    runs = record("shipped.json")
    assert runs["vqgan_photos_no_gan"]["overrides"] == runs["vqgan_photos"]["overrides"] + ["loss.disc_factor=0"]


@pytest.mark.parametrize("record_name, name", RUNS)
def test_shipped_checkpoint_loads_and_matches_its_config(record_name, name):
    entry = record(record_name)[name]
    path = SHIPPED / f"{name}.pt"
    assert path.stat().st_size == entry["size_bytes"] <= MAX_BYTES[name]
    model, config = load_model(path)
    expected = resolve_in_channels(load_config(REPO / entry["config"], entry["overrides"]))
    assert config_to_dict(config) == config_to_dict(expected)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["step"] == entry["steps"] == config.train.max_steps
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    log = [json.loads(line) for line in (SHIPPED / f"{name}.metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == entry["steps"]
    assert [row["step"] for row in log] == sorted({row["step"] for row in log})
    if config.model.family != "vqgan":
        return
    assert state["discriminator"] is not None and len(state["discriminator"]) > 0
    gan_on = [row for row in log if row.get("train/disc_factor", 0) > 0]
    if config.loss.disc_factor == 0:
        assert gan_on == [] and not any("train/disc_loss" in row for row in log)
    else:
        assert gan_on and gan_on[0]["step"] > config.loss.disc_start
        assert all("train/disc_loss" in row for row in gan_on)


@pytest.mark.parametrize("record_name, name", RUNS)
def test_shipped_checkpoint_reproduces_its_held_out_metrics(record_name, name):
    entry = record(record_name)[name]
    model, config = load_model(SHIPPED / f"{name}.pt")
    _, test_set = build_datasets(config)
    measured = evaluate_model(model, test_set, batch_size=entry["eval_batch_size"])
    recorded = entry["metrics"]
    assert measured["num_images"] == recorded["num_images"] == len(test_set)
    assert measured["psnr"] == pytest.approx(recorded["psnr"], abs=1e-3)
    assert measured["ssim"] == pytest.approx(recorded["ssim"], abs=1e-4)
    assert abs(measured["codes_used"] - recorded["codes_used"]) <= 1  # a tie between two codes may flip elsewhere
    assert measured["perplexity"] == pytest.approx(recorded["perplexity"], rel=1e-3)
