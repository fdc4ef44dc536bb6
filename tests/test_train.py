"""The trainer on CPU: a short run of each family, exact resume, the VQ-GAN schedule,
the NaN stop, the in-memory API and the command line."""

import json
import pickle

import pytest
import torch

from vqlearn.build import load_model
from vqlearn.checkpoint import CheckpointError, load_checkpoint
from vqlearn.config import ConfigError
from vqlearn.models import VQVAE
from vqlearn.data import EpochSampler
from vqlearn.train import NonFiniteLossError, Trainer, load_config, main, train

# Tiny models: a few steps each, well under a second per step on 2 cores.
COMMON = ["train.batch_size=8", "train.log_every=1", "train.eval_batches=1", "train.sample_every=3",
          "train.ckpt_every=3", "train.num_samples=4"]
TINY = {
    "vqvae": ["model.dim=16", "model.num_codes=32", "quantizer.init=kmeans", "quantizer.init_vectors=256",
              "quantizer.restart_every=2"],
    "vqvae2": ["model.family=vqvae2", "model.channel=16", "model.n_res_block=1", "model.n_res_channel=8",
               "model.embed_dim=8", "model.num_codes=16", "data.name=photos", "data.image_size=16",
               "quantizer.init=samples", "quantizer.init_vectors=64", "quantizer.restart_every=2"],
    "vqgan": ["model.family=vqgan", "model.num_codes=16", "model.embed_dim=8",
              "model.ddconfig={ch: 16, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [8], z_channels: 8, "
              "resolution: 16, num_groups: 8}", "data.name=photos", "data.image_size=16", "loss.disc_start=3",
              "loss.perceptual_weight=0", "loss.disc_ndf=8", "loss.disc_num_layers=2", "train.grad_clip=1.0",
              "train.betas=[0.5, 0.9]"],
}
SEED_KEYS = ["total_loss", "quant_loss", "nll_loss", "rec_loss"]
GAN_KEYS = ["p_loss", "d_weight", "disc_factor", "g_loss"]
DISC_KEYS = ["disc_loss", "logits_real", "logits_fake"]


def tiny(family, *extra):
    return load_config(None, [*TINY[family], *COMMON, *extra])


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", ["vqvae", "vqvae2", "vqgan"])
def test_short_run_and_exact_resume(family, tmp_path):
    config = tiny(family)
    straight = train(config, tmp_path / "straight", max_steps=6, progress=False)
    train(config, tmp_path / "resumed", max_steps=3, progress=False)
    resumed = train(config, tmp_path / "resumed", max_steps=6, resume=True, progress=False)

    # N steps straight == N/2 + N/2 resumed, bit for bit.
    assert resumed.step == straight.step == 6
    assert states_equal(straight.model.state_dict(), resumed.model.state_dict())
    if family == "vqgan":
        assert states_equal(straight.loss.discriminator.state_dict(), resumed.loss.discriminator.state_dict())

    # What a run leaves on disk.
    out = tmp_path / "straight"
    assert (out / "last.ckpt").is_file()
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["step_000003.png", "step_000006.png"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows == straight.history
    last = rows[-1]
    for key in SEED_KEYS + (GAN_KEYS + DISC_KEYS if family == "vqgan" else []):
        assert f"train/{key}" in last, key
    for key in ("train/psnr", "train/codebook_usage", "train/perplexity", "val/psnr", "val/ssim", "val/codebook_usage"):
        assert key in last, key
    if family == "vqvae2":
        assert {"train/codebook_usage_top", "train/codebook_usage_bottom", "val/codebook_usage_top"} <= set(last)
    if family != "vqgan":
        assert "train/codes_restarted" in last
    resumed_rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_rows] == [1, 2, 3, 4, 5, 6]

    state = load_checkpoint(out / "last.ckpt")
    for key in ("model", "optimizers", "scaler", "rng", "data", "step", "config", "vqlearn_version"):
        assert key in state, key
    assert state["step"] == 6 and state["data"]["batch"] == 6


def test_discriminator_starts_at_disc_start(tmp_path):
    """VQ-GAN: disc_start counts autoencoder steps; before it the discriminator neither steps nor
    weighs in (d_weight 0), from it on it does, on the same reconstruction."""
    config = tiny("vqgan", "train.sample_every=0", "train.eval_batches=0")
    def weights(discriminator):  # parameters only: BatchNorm statistics move in every forward pass, as in taming
        return {name: p.detach().clone() for name, p in discriminator.named_parameters()}

    initial = weights(Trainer(config, progress=False).discriminator)
    early = train(config, max_steps=3, progress=False)
    assert states_equal(initial, weights(early.loss.discriminator))
    late = train(config, max_steps=5, progress=False)
    assert not states_equal(initial, weights(late.loss.discriminator))
    rows = late.history
    for row in rows[:3]:
        assert row["train/disc_factor"] == 0 and row["train/d_weight"] == 0 and "train/disc_loss" not in row
    for row in rows[3:]:
        assert row["train/disc_factor"] == 1 and row["train/d_weight"] > 0 and "train/disc_loss" in row


def test_nan_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    config = tiny("vqvae", "train.ckpt_every=2", "train.sample_every=0")
    forward = VQVAE.forward
    calls = {"n": 0}

    def poisoned(self, x):
        out = forward(self, x)
        if self.training and torch.is_grad_enabled():  # a training step, not k-means or samples
            calls["n"] += 1
        if calls["n"] >= 5:
            return out._replace(reconstruction=out.reconstruction * float("nan"))
        return out

    monkeypatch.setattr(VQVAE, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 5") as error:
        train(config, tmp_path, max_steps=10, progress=False)
    assert "last.ckpt" in str(error.value)
    state = load_checkpoint(tmp_path / "last.ckpt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_in_memory_run_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []

    def callback(row):
        seen.append(row["step"])
        return row["step"] >= 2  # stop early

    result = train(tiny("vqvae"), callback=callback, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert result.stopped == "callback" and result.step == 2 and seen == [1, 2]
    assert result.out_dir is None and result.checkpoint is None
    assert [step for step, _ in result.metric("train/psnr")] == [1, 2]
    assert "val/psnr" in result.final

    timed = train(tiny("vqvae", "train.eval_batches=0"), max_seconds=1e-9, progress=False)
    assert timed.stopped == "max_seconds" and timed.step == 1 and timed.final == {}


def test_resume_refuses_a_different_model(tmp_path):
    train(tiny("vqvae"), tmp_path, max_steps=1, progress=False)
    with pytest.raises(CheckpointError, match=r"model\.dim"):
        train(tiny("vqvae", "model.dim=8"), tmp_path, max_steps=2, resume=True, progress=False)


def test_sampler_shards_and_resumes():
    shards = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    seen = [i for s in shards for i in s]
    assert len(seen) == 12 and set(seen) == set(range(10))  # padded to a multiple of 3
    assert list(shards[0]) == list(EpochSampler(10, seed=3, rank=0, world_size=3))  # seeded
    whole = list(shards[1])
    shards[1].set_position(0, start=2)
    assert list(shards[1]) == whole[2:]
    shards[1].set_position(1)
    assert list(shards[1]) != whole  # a new permutation each epoch


@pytest.fixture
def empty_yaml(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("{}  # all defaults; --set does the rest\n")
    return str(path)


def test_cli(tmp_path, capsys, empty_yaml):
    sets = [item for s in [*TINY["vqvae"], *COMMON] for item in ("--set", s)]
    out = tmp_path / "run"
    assert main([empty_yaml, *sets, "--out", str(out), "--max-steps", "2", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and (out / "last.ckpt").is_file() and (out / "metrics.jsonl").is_file()
    assert main([empty_yaml, *sets, "--out", str(out), "--max-steps", "3", "--resume", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3


@pytest.mark.parametrize(
    "args, named",
    [
        (["--set", "train.lrr=1"], "train.lrr"),
        (["--set", "train.batch_size=big"], "train.batch_size"),
        (["--set", "data.name=cifar10"], "data.root"),
        (["--set", "data.name=folder", "--set", "data.root=/nonexistent/images", "--set", "data.image_size=32"],
         "data.root"),
    ],
)
def test_cli_errors_name_the_key(args, named, tmp_path, capsys, empty_yaml):
    assert main([empty_yaml, *args, "--out", str(tmp_path), "--no-progress"]) == 2
    assert f"`{named}`" in capsys.readouterr().err


def test_cli_missing_config_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing.yaml"), "--out", str(tmp_path)]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_batch_larger_than_the_dataset_is_named():
    data = torch.zeros(4, 1, 8, 8)
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        Trainer(tiny("vqvae", "train.eval_batches=0"), progress=False, train_data=list(data))


def test_cuda_code_path_on_cpu():
    """bf16 autocast and channels_last (the CUDA defaults) also run on the CPU; the quantizer stays fp32."""
    result = train(tiny("vqgan", "train.precision=bf16", "train.channels_last=true", "train.sample_every=0"),
                   max_steps=4, progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for k, v in result.history[-1].items() if k.startswith("train/"))
    assert result.model.quantize.embedding.weight.dtype == torch.float32


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vqvae2", "vqgan"])
def test_compile_matches_eager_and_leaves_no_trace(family):
    """The compiled model, quantizers included, follows the eager one step for step (VQ-VAE-2: EMA
    codebooks; VQ-GAN: the adaptive weight's double backward). Afterwards the returned model pickles
    (nothing of the trainer patched onto it) and torch's process-wide donated-buffer setting is as before.
    Cold inductor compilation takes about 40 s per family on 2 cores, hence the `slow` mark."""
    from torch._functorch import config as functorch_config

    donated_before = functorch_config.donated_buffer
    losses = []
    for compile in ("false", "true"):
        result = train(tiny(family, f"train.compile={compile}", "train.sample_every=0", "train.eval_batches=0"),
                       max_steps=4, progress=False)
        losses.append([row["train/total_loss"] for row in result.history])
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    pickle.dumps(result.model)
    assert functorch_config.donated_buffer == donated_before


def test_restarts_skip_the_last_restart_interval(tmp_path):
    """Dead codes restart every `restart_every` steps, but not in the last `restart_every` steps of the
    planned run (train.max_steps), so the decoder sees every restarted code; resume stays exact."""
    config = tiny("vqvae", "train.max_steps=6", "quantizer.restart_every=2", "quantizer.restart_min_count=1000",
                  "train.sample_every=0", "train.ckpt_every=0")
    straight = train(config, tmp_path / "straight", progress=False)
    restarted_at = [row["step"] for row in straight.history if "train/codes_restarted" in row]
    assert restarted_at == [2, 4]
    train(config, tmp_path / "resumed", max_steps=3, progress=False)
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert states_equal(straight.model.state_dict(), resumed.model.state_dict())


def test_checkpoint_stores_the_channels_of_the_data_it_trained_on(tmp_path):
    """`data.name=mnist` (1 channel) trained on 3-channel images passed in directly: the checkpoint's
    config says 3 channels, so load_model rebuilds the model that was trained."""
    from vqlearn.build import load_model

    images = [torch.rand(3, 28, 28) * 2 - 1 for _ in range(16)]
    config = tiny("vqvae", "train.eval_batches=0", "train.sample_every=0", "quantizer.init=null",
                  "quantizer.restart_every=0")
    assert config.model.in_channels is None
    result = train(config, tmp_path, max_steps=2, progress=False, train_data=images)
    model, saved = load_model(result.checkpoint)
    assert saved.model.in_channels == 3 and model.in_channels == 3
    train(config, tmp_path, max_steps=3, resume=True, progress=False, train_data=images)  # resumable as well


def test_returned_model_carries_no_trainer_hooks():
    config = {
        "model": {"family": "vqvae", "dim": 16, "num_codes": 16},
        "data": {"name": "mnist"},
        "train": {"batch_size": 8, "max_steps": 2, "eval_batches": 0, "sample_every": 0, "ckpt_every": 0},
    }
    result = train(config, progress=False)
    assert all(not q._forward_pre_hooks for q in result.model.quantizers)
    pickle.dumps(result.model)  # would fail on the trainer's local hook closure


@pytest.mark.parametrize("family, old_key", [("vqvae", "K"), ("vqvae2", "n_embed")])
def test_a_checkpoint_with_old_config_keys_loads_and_resumes(family, old_key, tmp_path):
    """Checkpoints written before the rename store ``model.K`` / ``model.n_embed`` and no
    ``model.inplace_relu_skip``; ``upgrade_saved_config`` reads them in today's keys."""
    config = tiny(family, "train.eval_batches=0", "train.sample_every=0")
    result = train(config, tmp_path, max_steps=2, progress=False)
    path = tmp_path / "last.ckpt"
    state = load_checkpoint(path)
    saved_model = state["config"]["model"]
    saved_model[old_key] = saved_model.pop("num_codes")
    saved_model.pop("inplace_relu_skip", None)
    torch.save(state, path)

    model, loaded = load_model(path)
    assert loaded.model.num_codes == config.model.num_codes
    assert states_equal(model.state_dict(), result.model.state_dict())
    resumed = train(config, tmp_path, max_steps=3, resume=True, progress=False)
    assert resumed.step == 3
