"""The VQ-GAN checkpoints shipped in checkpoints/ (written by ``make checkpoints``, i.e. checkpoints/make_shipped.py).

For each run recorded in ``checkpoints/shipped.json``: the file loads with :func:`vqlearn.build.load_model`, its
stored config is ``configs/vqgan_photos.yaml`` with the recorded overrides (and nothing else), its step count and
size are the recorded ones, its training log reaches that step, and :func:`vqlearn.evaluate.evaluate_model` on the
config's held-out split reproduces the recorded metrics. Evaluation on the CPU with one thread is deterministic, so
the tolerances are tight; they leave room only for float rounding on another CPU or torch build. About 3 s.

The chapter "Training a VQ-GAN" loads these files.
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
RUNS = ("vqgan_photos", "vqgan_photos_no_gan")  # what make_shipped.py writes
MAX_BYTES = 8 * 2**20  # "small: a few MB"


def record() -> dict:
    path = SHIPPED / "shipped.json"
    assert path.is_file(), f"{path} is missing: run `make checkpoints` (checkpoints/make_shipped.py)"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # how make_shipped.py evaluated: the same order of float sums
    yield
    torch.set_num_threads(threads)


def test_shipped_json_lists_both_runs():
    runs = record()
    assert sorted(runs) == sorted(RUNS)
    assert runs["vqgan_photos_no_gan"]["overrides"] == runs["vqgan_photos"]["overrides"] + ["loss.disc_factor=0"]


@pytest.mark.parametrize("name", RUNS)
def test_shipped_checkpoint_loads_and_matches_its_config(name):
    entry = record()[name]
    path = SHIPPED / f"{name}.pt"
    assert path.stat().st_size == entry["size_bytes"] <= MAX_BYTES
    model, config = load_model(path)
    expected = resolve_in_channels(load_config(REPO / entry["config"], entry["overrides"]))
    assert config_to_dict(config) == config_to_dict(expected)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["step"] == entry["steps"] == config.train.max_steps
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    assert state["discriminator"] is not None and len(state["discriminator"]) > 0
    log = [json.loads(line) for line in (SHIPPED / f"{name}.metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == entry["steps"]
    assert [row["step"] for row in log] == sorted({row["step"] for row in log})
    gan_on = [row for row in log if row.get("train/disc_factor", 0) > 0]
    if config.loss.disc_factor == 0:
        assert gan_on == [] and not any("train/disc_loss" in row for row in log)
    else:
        assert gan_on and gan_on[0]["step"] > config.loss.disc_start
        assert all("train/disc_loss" in row for row in gan_on)


@pytest.mark.parametrize("name", RUNS)
def test_shipped_checkpoint_reproduces_its_held_out_metrics(name, one_thread):
    entry = record()[name]
    model, config = load_model(SHIPPED / f"{name}.pt")
    _, test_set = build_datasets(config)
    measured = evaluate_model(model, test_set, batch_size=entry["eval_batch_size"])
    recorded = entry["metrics"]
    assert measured["num_images"] == recorded["num_images"] == len(test_set)
    assert measured["psnr"] == pytest.approx(recorded["psnr"], abs=1e-3)
    assert measured["ssim"] == pytest.approx(recorded["ssim"], abs=1e-4)
    assert abs(measured["codes_used"] - recorded["codes_used"]) <= 1  # a tie between two codes may flip elsewhere
    assert measured["perplexity"] == pytest.approx(recorded["perplexity"], rel=1e-3)
