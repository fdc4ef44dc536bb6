"""vqlearn.race: the race's configs differ from the recipe only in the quantizer (and the dataset), codes of
residual VQ are counted jointly, the summary gives mean and spread over seeds, and a short race runs end to end."""

import math

import pytest
import torch

from vqlearn.config import load_config
from vqlearn.quantize import VectorQuantizer
from vqlearn.race import (RACE, RECIPE, code_statistics, format_table, joint_codes, race_config, run_race,
                          stuck_channels, summarize)
from vqlearn.scalar_quantize import FSQ, LFQ


def test_every_entry_keeps_the_recipe_and_about_ten_bits():
    recipe = load_config(RECIPE)
    for name in RACE:
        config = race_config(name, "mnist", seed=3, steps=7)
        assert config.model.dim == recipe.model.dim and config.train.lr == recipe.train.lr
        assert (config.train.seed, config.train.max_steps) == (3, 7)
        assert config.train.eval_every == 0 and config.train.ckpt_every == 0
    assert race_config("vq_taming", "mnist", 0, 1).quantizer.legacy is True
    assert race_config("vq_taming", "mnist", 0, 1).quantizer.init is None
    assert race_config("fsq", "photos", 0, 1).data.name == "photos"
    assert race_config("rvq", "mnist", 0, 1).model.num_codes == 32


@pytest.mark.parametrize("quantizer, dataset, message", [
    ("vqq", "mnist", "race quantizer must be one of vq_taming"),
    ("vq", "cifar", "race dataset must be one of mnist, photos"),
])
def test_unknown_names_are_refused(quantizer, dataset, message):
    with pytest.raises(ValueError, match=message):
        race_config(quantizer, dataset, 0, 1)


def test_joint_codes_read_the_levels_first_most_significant():
    codes = torch.tensor([[[[3]], [[5]]]])  # (1, depth 2, 1, 1), 32 codes per level
    assert joint_codes(codes, 32).tolist() == [[[3 * 32 + 5]]]
    flat = torch.tensor([[[7, 8]]])
    assert joint_codes(flat, 32) is flat


def test_code_statistics():
    counts = torch.tensor([2, 2, 0, 0])
    stats = code_statistics(counts)
    assert stats == {"codes_used": 2, "codes": 4, "usage": 0.5, "perplexity": pytest.approx(2.0), "bits": 2.0}


def test_stuck_channels_hold_one_value_at_99_percent_of_the_positions():
    fsq = FSQ([5, 4])  # index = k0 + 5 k1
    counts = torch.zeros(20, dtype=torch.long)
    counts[[5, 6, 7, 8, 9]] = 100  # channel 1 always at digit 1, channel 0 spread over all five values
    assert stuck_channels(fsq, counts) == 1
    counts[0] = 1  # one position in 501 elsewhere: still stuck at 99 %
    assert stuck_channels(fsq, counts) == 1
    counts[0] = 10  # 10 in 510: no longer
    assert stuck_channels(fsq, counts) == 0
    lfq_counts = torch.zeros(8, dtype=torch.long)
    lfq_counts[[0b100, 0b101]] = 50  # bits 0 and 1 (most significant first) constant, bit 2 balanced
    assert stuck_channels(LFQ(3), lfq_counts) == 2
    assert stuck_channels(VectorQuantizer(8, 4), torch.ones(8, dtype=torch.long)) == 0


def test_summary_mean_and_spread_over_seeds():
    rows = [{"dataset": "mnist", "quantizer": "fsq", "seed": s, "psnr": p, "ssim": 0.5, "codes_used": 10,
             "codes": 1000, "usage": 0.01, "perplexity": 5.0, "bits": math.log2(1000), "channels": 4,
             "stuck_channels": s, "ms_per_step": 2.0}
            for s, p in ((0, 20.0), (1, 22.0))]
    (summary,) = summarize(rows)
    assert summary["psnr"] == 21.0 and summary["psnr_std"] == pytest.approx(math.sqrt(2))
    assert (summary["psnr_min"], summary["psnr_max"], summary["seeds"]) == (20.0, 22.0, 2)
    table = format_table([summary], markdown=True)
    assert "| mnist | fsq | 21.00 ± 1.41 |" in table and "10 / 1000" in table and "| 0.5 / 4 |" in table


def test_a_short_race_runs_and_scores_each_quantizer():
    torch.manual_seed(0)
    rows = run_race(["fsq", "rvq"], ["mnist"], seeds=[0], steps=2, extra=["model.dim=8"])
    assert [row["quantizer"] for row in rows] == ["fsq", "rvq"]
    fsq, rvq = rows
    assert fsq["codes"] == 1000 and rvq["codes"] == 32 * 32 and rvq["bits"] == 10.0
    assert (fsq["channels"], rvq["channels"], rvq["stuck_channels"]) == (4, 0, 0) and 0 <= fsq["stuck_channels"] <= 4
    for row in rows:
        assert 0 < row["codes_used"] <= row["codes"] and 1 <= row["perplexity"] <= row["codes_used"]
        assert 0 < row["psnr"] < 60 and row["steps"] == 2 and row["ms_per_step"] > 0
