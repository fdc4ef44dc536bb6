"""vqlearn.prior, the transformer prior over codes (the shipped MNIST tokenizers it reads are checked in
tests/test_shipped.py).

Causal masking (by autograd and by perturbation), the raster flatten/unflatten round trip,
sampling shapes, determinism under a seed and what temperature/top-k do, a short training run whose
held-out loss falls, exact resume, the config's errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from vqlearn.errors import ConfigError
from vqlearn.prior import (CodePrior, PriorConfig, batch_indices, bits_per_token, flatten_codes, load_prior,
                           load_prior_config, train_prior, unflatten_codes)

REPO = Path(__file__).resolve().parents[1]
SMALL = PriorConfig(vocab_size=16, block_size=12, num_classes=3, n_layer=2, n_head=2, n_embd=16)


def small_model(seed=0, **changes) -> CodePrior:
    torch.manual_seed(seed)
    config = PriorConfig(**{**SMALL.__dict__, **changes})
    return CodePrior(config).eval()


# -- the sequence --------------------------------------------------------------


def test_flatten_unflatten_round_trip_in_raster_order():
    grid = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    seq = flatten_codes(grid)
    assert seq.shape == (2, 12)
    assert seq[0].tolist() == list(range(12))  # row 0 left to right, then row 1, ...
    assert torch.equal(unflatten_codes(seq, 3, 4), grid)
    with pytest.raises(ValueError, match="sequence"):
        unflatten_codes(seq, 4, 4)


# -- causality -------------------------------------------------------------------


def test_logits_do_not_depend_on_the_token_or_later_ones_autograd():
    model = small_model()
    codes = torch.randint(0, 16, (1, 12))
    captured = []
    hook = model.tok_emb.register_forward_hook(lambda module, args, out: captured.append(out))
    logits = model(codes, torch.tensor([1]))
    hook.remove()
    (embedded,) = captured  # (1, 11, C): the embeddings of codes[:, :11], input positions 1..11
    for t in range(12):
        (grad,) = torch.autograd.grad(logits[0, t].sum(), embedded, retain_graph=True)
        per_code = grad[0].abs().sum(-1)  # (11,): how much logits[t] depends on codes[j]
        assert torch.all(per_code[t:] == 0), t  # not on codes[t] or later ones
        assert torch.all(per_code[:t] > 0), t  # but on every earlier one


def test_logits_do_not_depend_on_the_token_or_later_ones_perturbation():
    model = small_model()
    codes = torch.randint(0, 16, (4, 12))
    labels = torch.tensor([0, 1, 2, 0])
    base = model(codes, labels)
    for t in range(12):
        changed = codes.clone()
        changed[:, t:] = torch.randint(0, 16, (4, 12 - t))
        out = model(changed, labels)
        assert torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-6)  # position t predicts codes[t]
        if t < 11:
            assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])  # later positions do see it


def test_class_token_conditions_every_position():
    model = small_model()
    codes = torch.randint(0, 16, (1, 12))
    a, b = model(codes, torch.tensor([0])), model(codes, torch.tensor([2]))
    assert not torch.allclose(a[:, 0], b[:, 0]) and not torch.allclose(a[:, -1], b[:, -1])


def test_weight_tying_and_label_errors():
    model = small_model()
    assert model.head.weight is model.tok_emb.weight
    with pytest.raises(ValueError, match="labels"):
        model(torch.zeros(2, 12, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        model(torch.zeros(2, 12, dtype=torch.long), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="unconditional"):
        small_model(num_classes=0)(torch.zeros(2, 12, dtype=torch.long), torch.tensor([0, 1]))


# -- sampling ---------------------------------------------------------------------


def test_sampling_shapes_and_determinism_under_a_seed():
    model = small_model()
    labels = torch.tensor([0, 1, 2, 2, 1])
    a = model.sample(5, labels, temperature=1.0, top_k=8, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, labels, temperature=1.0, top_k=8, generator=torch.Generator().manual_seed(3))
    c = model.sample(5, labels, temperature=1.0, top_k=8, generator=torch.Generator().manual_seed(4))
    assert a.shape == (5, 12) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < 16
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert unflatten_codes(a, 3, 4).shape == (5, 3, 4)
    unconditional = small_model(num_classes=0).sample(3, generator=torch.Generator().manual_seed(0))
    assert unconditional.shape == (3, 12)


def test_top_1_and_low_temperature_are_greedy():
    model = small_model()
    labels = torch.tensor([1, 1])
    greedy = model.sample(2, labels, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy[0], greedy[1])  # only the argmax can be drawn
    # the greedy sequence is the argmax of the model's own logits at every position
    assert torch.equal(model(greedy, labels).argmax(-1), greedy)
    cold = model.sample(2, labels, temperature=1e-4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(cold, greedy)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, torch.tensor([0]), temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        model.sample(1, torch.tensor([0]), top_k=17)


# -- training -------------------------------------------------------------------------


def toy_sequences(n=256, seed=0):
    """Sequences a prior can learn: class c repeats the pattern (c, c+1, ..., ) with noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    codes = (labels[:, None] * 4 + torch.arange(12)) % 16
    noise = torch.rand(n, 12, generator=g) < 0.1
    codes = torch.where(noise, torch.randint(0, 16, (n, 12), generator=g), codes)
    return codes, labels


def toy_setup(*overrides):
    return load_prior_config(None, ["model.vocab_size=16", "model.block_size=12", "model.num_classes=3",
                                    "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "train.batch_size=32",
                                    "train.max_steps=120", "train.warmup_steps=10", "train.log_every=20",
                                    "train.ckpt_every=60", "train.lr=3e-3", *overrides])


def test_short_training_run_loss_falls(tmp_path):
    codes, labels = toy_sequences()
    val = toy_sequences(64, seed=1)
    run = train_prior(toy_setup(), codes, labels, val=val, out_dir=tmp_path / "run")
    first, last = run.history[0], run.history[-1]
    assert run.step == 120 and last["step"] == 120
    assert last["val/bits_per_token"] < 0.5 * math.log2(16)  # far below uniform (4 bits)
    assert last["val/bits_per_token"] < first["val/bits_per_token"] - 1.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40, 60, 80, 100, 120]
    model, setup = load_prior(tmp_path / "run" / "last.ckpt")
    assert bits_per_token(model, *val) == pytest.approx(last["val/bits_per_token"], abs=1e-6)


def test_resume_is_exact(tmp_path):
    codes, labels = toy_sequences()
    straight = train_prior(toy_setup(), codes, labels, out_dir=tmp_path / "a")
    train_prior(toy_setup(), codes, labels, out_dir=tmp_path / "b", max_steps=60)
    resumed = train_prior(toy_setup(), codes, labels, out_dir=tmp_path / "b", resume=True)
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)


def test_batches_cover_each_epoch_once():
    seen = torch.cat([batch_indices(100, 10, seed=0, step=s) for s in range(10)])
    assert sorted(seen.tolist()) == list(range(100))
    assert not torch.equal(batch_indices(100, 10, 0, 0), batch_indices(100, 10, 0, 10))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="train.lrr"):
        load_prior_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="model.n_embd"):
        load_prior_config(None, ["model.n_embd=30", "model.n_head=4"])
    with pytest.raises(ConfigError, match="train.lr"):
        load_prior_config(None, ["train.lr=fast"])
    setup = load_prior_config(REPO / "configs" / "prior" / "mnist.yaml")
    assert setup.model.block_size == 49 and setup.model.num_classes == 10


def test_encode_dataset_refuses_residual_codes():
    from vqlearn.prior import encode_dataset

    class ResidualTokenizer(torch.nn.Module):
        def tokenize(self, x):
            return torch.zeros(len(x), 4, 7, 7, dtype=torch.long)

    with pytest.raises(ValueError, match=r"codes of shape \(4, 7, 7\).*use a single-level quantizer"):
        encode_dataset(ResidualTokenizer(), [torch.zeros(1, 28, 28)] * 3)
