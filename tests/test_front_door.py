"""The front door: every ordinary mistake ends in a short, named error (or is accepted and does the right
thing), and nothing already trained is lost.

``CASES`` is the table of mistakes: each runs the command (or API call) a user would, and checks the exit
status, that no traceback is printed, and a fragment of the message. The README's section
"When something goes wrong" is this table; ``test_readme_table_matches_the_cases`` checks that it says
what the commands print today. After changing a message, regenerate it with

    OMP_NUM_THREADS=1 .venv/bin/python tests/test_front_door.py

The three silent wrong results of issue 14 have their own regression tests below: a second run into the
same ``--out``, ``--max-steps 0``, and non-finite pixels given to ``tokenize``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vqlearn import evaluate, train as train_module
from vqlearn.checkpoint import CheckpointError, load_checkpoint, save_atomic
from vqlearn.errors import OutputDirError, UsageError
from vqlearn.models import VQVAE, VQVAE2
from vqlearn.pretrained import load_taming_vqgan
from vqlearn.train import load_config, train

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## When something goes wrong"
TINY = ["model.dim=8", "model.num_codes=16", "train.batch_size=8", "train.log_every=1", "train.eval_batches=1",
        "train.sample_every=0", "train.ckpt_every=0", "train.num_samples=4"]


def sets(*overrides: str, models: bool = True) -> list[str]:
    base = [o for o in TINY if models or not o.startswith("model.")]
    return [arg for o in (*base, *overrides) for arg in ("--set", o)]


# ---------------------------------------------------------------------------
# A place to make mistakes in: a YAML, a trained run, bad files
# ---------------------------------------------------------------------------


class Place:
    """Files the cases use, made lazily in one temporary folder (``DIR`` in the table)."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def yaml(self) -> str:
        path = self.root / "tiny.yaml"
        if not path.exists():
            path.write_text("{}  # every default; the cases --set the rest\n")
        return str(path)

    @property
    def run(self) -> Path:
        """A run of 2 steps: DIR/run/last.ckpt, DIR/run/metrics.jsonl."""
        out = self.root / "run"
        if not (out / "last.ckpt").exists():
            train(load_config(None, TINY), out, max_steps=2, progress=False)
        return out

    @property
    def ckpt(self) -> str:
        return str(self.run / "last.ckpt")

    def file(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def folder(self, name: str, images: int) -> str:
        path = self.root / name
        path.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(images):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path / f"{i}.png")
        return str(path)

    def truncated(self) -> str:
        data = Path(self.ckpt).read_bytes()
        return self.file("truncated.ckpt", data[: len(data) // 2])

    def flipped(self) -> str:
        """The checkpoint with one byte of tensor data flipped: torch.load alone would load it silently."""
        data = bytearray(Path(self.ckpt).read_bytes())
        import zipfile

        with zipfile.ZipFile(self.ckpt) as archive:
            info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 64)
        with open(self.ckpt, "rb") as f:  # the data starts after the local header, its name and extra field
            f.seek(info.header_offset + 26)
            n, m = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        data[info.header_offset + 30 + n + m + 5] ^= 0x10
        return self.file("flipped.ckpt", bytes(data))

    def taming_yaml(self, params: str) -> str:
        path = self.root / "taming.yaml"
        path.write_text("model:\n  target: taming.models.vqgan.VQModel\n  params:\n" + params)
        return str(path)


def run_cli(main, args: list[str]) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("always")
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def train_cli(p: Place, *args) -> tuple[int, str, str]:
    out = [] if "--out" in args else ["--out", p.path("unused-out")]  # never the default runs/ in the repository
    return run_cli(train_module.main, [p.yaml, *args, *out, "--no-progress"])


def evaluate_cli(p: Place, *args) -> tuple[int, str, str]:
    return run_cli(evaluate.main, list(args))


def api(call) -> tuple[int, str, str]:
    """An API call that must raise: ``(1, "", "TypeName: message")``."""
    try:
        call()
    except (TypeError, ValueError, RuntimeError, OSError) as error:
        return 1, "", f"{type(error).__name__}: {error}"
    raise AssertionError("no error raised")


# (what went wrong, how it is run (as shown in the README), the case, a fragment the message must contain)
CASES = [
    # -- the three silent wrong results ------------------------------------------------------------
    ("a second run into the same --out", "train ... --out DIR/run",
     lambda p: train_cli(p, *sets(), "--out", p.run), "already holds a run"),
    ("non-finite pixels given to the tokenizer", "model.tokenize(x with a NaN)",
     lambda p: api(lambda: VQVAE(1, 8, 16).tokenize(torch.zeros(1, 1, 8, 8).index_put_(
         (torch.tensor([0]), torch.tensor([0]), torch.tensor([2]), torch.tensor([3])), torch.tensor(float("nan"))))),
     "1 non-finite value"),
    ("a negative step count", "train ... --max-steps -1",
     lambda p: train_cli(p, "--max-steps", "-1"), "--max-steps"),
    ("a time budget of zero", "train ... --max-seconds 0",
     lambda p: train_cli(p, "--max-seconds", "0"), "--max-seconds"),
    # -- config values ------------------------------------------------------------------------------
    ("an empty YAML file", "train empty.yaml",
     lambda p: run_cli(train_module.main, [p.file("empty.yaml", b"# nothing here\n"), "--out", p.path("e")]),
     "is empty"),
    ("an old key name", "--set model.K=0", lambda p: train_cli(p, "--set", "model.K=0"), "model.num_codes"),
    ("taming's name for it", "--set model.n_embed=0",
     lambda p: train_cli(p, "--set", "model.n_embed=0"), "model.num_codes"),
    ("a size of zero", "--set model.dim=0", lambda p: train_cli(p, "--set", "model.dim=0"), "`model.dim` must be > 0"),
    ("a batch of zero", "--set train.batch_size=0",
     lambda p: train_cli(p, "--set", "train.batch_size=0"), "`train.batch_size` must be > 0"),
    ("a word where a number belongs", "--set train.lr=fast",
     lambda p: train_cli(p, "--set", "train.lr=fast"), "`train.lr` must be a number"),
    ("a misspelt key", "--set train.lrr=1", lambda p: train_cli(p, "--set", "train.lrr=1"), "unknown config key"),
    ("an unknown dataset", "--set data.name=imagenet",
     lambda p: train_cli(p, "--set", "data.name=imagenet"), "choose one of"),
    ("GroupNorm groups that do not divide the channels", "--set model.family=vqgan ... num_groups: 7",
     lambda p: train_cli(p, "--set", "model.family=vqgan", "--set", "model.ddconfig={num_groups: 7}"),
     "does not divide"),
    ("zero GroupNorm groups", "--set model.family=vqgan ... num_groups: 0",
     lambda p: train_cli(p, "--set", "model.family=vqgan", "--set", "model.ddconfig={num_groups: 0}"),
     "ddconfig.num_groups must be a positive integer"),
    ("an image size the model cannot downsample", "--set model.family=vqvae2 (on 28x28 mnist)",
     lambda p: train_cli(p, "--set", "model.family=vqvae2"), "`data.image_size`"),
    # -- data ---------------------------------------------------------------------------------------
    ("an empty image folder", "--set data.name=folder data.root=DIR/empty",
     lambda p: train_cli(p, *sets("data.name=folder", f"data.root={p.folder('empty', 0)}", "data.image_size=16")),
     "no readable images"),
    ("fewer images than one batch", "--set data.name=folder data.root=DIR/three (3 images)",
     lambda p: train_cli(p, *sets("data.name=folder", f"data.root={p.folder('three', 3)}", "data.image_size=16",
                                  "train.eval_batches=0"), "--out", p.path("three-run")),
     "`train.batch_size`"),
    ("a file given as the image folder", "--set data.name=folder data.root=DIR/tiny.yaml",
     lambda p: train_cli(p, *sets("data.name=folder", f"data.root={p.yaml}", "data.image_size=16")), "is a file"),
    ("images with other channels than the model", "--set data.name=photos model.in_channels=1",
     lambda p: train_cli(p, *sets("data.name=photos", "model.in_channels=1"), "--out", p.path("channels")),
     "`model.in_channels`"),
    ("bytes given to the tokenizer", "model.tokenize(uint8 images)",
     lambda p: api(lambda: VQVAE(1, 8, 16).tokenize(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))), "dtype torch.uint8"),
    ("evaluate on a folder without its root", "evaluate DIR/run/last.ckpt --data folder",
     lambda p: evaluate_cli(p, p.ckpt, "--data", "folder"), "--root"),
    # -- checkpoints --------------------------------------------------------------------------------
    ("random bytes as a checkpoint", "evaluate DIR/random.ckpt",
     lambda p: evaluate_cli(p, p.file("random.ckpt", bytes(np.random.default_rng(0).integers(0, 256, 4096,
                                                                                             dtype=np.uint8)))),
     "not a vqlearn/torch checkpoint"),
    ("a text file as a checkpoint", "evaluate DIR/notes.txt",
     lambda p: evaluate_cli(p, p.file("notes.txt", b"step: 3000\n")), "not a vqlearn/torch checkpoint"),
    ("a truncated checkpoint", "evaluate DIR/truncated.ckpt",
     lambda p: evaluate_cli(p, p.truncated()), "is truncated"),
    ("one flipped byte in a checkpoint", "evaluate DIR/flipped.ckpt",
     lambda p: evaluate_cli(p, p.flipped()), "CRC-32"),
    ("a directory as the checkpoint", "evaluate DIR/run",
     lambda p: evaluate_cli(p, p.run), "is a directory"),
    ("someone else's checkpoint", "evaluate DIR/lightning.ckpt",
     lambda p: evaluate_cli(p, save_and_name(p, "lightning.ckpt", {"state_dict": {"w": torch.zeros(1)}})),
     "not a vqlearn training checkpoint"),
    ("resuming with a config of another family", "train ... --set model.family=vqvae2 ... --resume --out DIR/run",
     lambda p: train_cli(p, *sets("model.family=vqvae2", "data.name=photos", "data.image_size=16",
                                  "model.embed_dim=8", "model.channel=8", "model.n_res_channel=8", models=False),
                         "--resume", "--out", p.run), "cannot resume"),
    ("a taming config without n_embed", "load_taming_vqgan(model.yaml)",
     lambda p: api(lambda: load_taming_vqgan(p.taming_yaml("    embed_dim: 4\n    ddconfig: {}\n"), None)),
     "model.params.n_embed"),
    ("a taming config with a wrongly typed n_embed", "load_taming_vqgan(model.yaml)",
     lambda p: api(lambda: load_taming_vqgan(p.taming_yaml("    n_embed: many\n    embed_dim: 4\n    ddconfig: {}\n"),
                                             None)), "must be a positive integer"),
    # -- output directory ---------------------------------------------------------------------------
    ("--out is a file", "train ... --out DIR/tiny.yaml",
     lambda p: train_cli(p, *sets(), "--out", p.yaml), "is a file"),
    ("--out cannot be written", "train ... --out /sys/vqlearn",
     lambda p: train_cli(p, *sets(), "--out", "/sys/vqlearn"), "cannot write the output directory"),
    ("--resume and --overwrite together", "train ... --resume --overwrite",
     lambda p: train_cli(p, *sets(), "--out", p.run, "--resume", "--overwrite"), "pass one of them"),
    # -- the tokenizer API --------------------------------------------------------------------------
    ("flat codes", "model.detokenize(codes of shape (B*h*w,))",
     lambda p: api(lambda: VQVAE(1, 8, 16).detokenize(torch.zeros(16, dtype=torch.long))), "got shape (16,)"),
    ("a list of codes", "model.detokenize([[1, 2], [3, 4]])",
     lambda p: api(lambda: VQVAE(1, 8, 16).detokenize([[1, 2], [3, 4]])), "got a list"),
    ("codes outside [0, K)", "model.detokenize(codes with a 16 for K=16)",
     lambda p: api(lambda: VQVAE(1, 8, 16).detokenize(torch.full((1, 2, 2), 16))), "got values in [16, 16]"),
    ("one level of codes for VQ-VAE-2", "vqvae2.detokenize(top)",
     lambda p: api(lambda: VQVAE2(1, 8, 1, 8, 8, 16).detokenize(torch.zeros(1, 2, 2, dtype=torch.long))),
     "expected a pair (top (B, h, w), bottom (B, 2h, 2w))"),
    # -- evaluate -----------------------------------------------------------------------------------
    ("evaluate with a batch of zero", "evaluate DIR/run/last.ckpt --batch-size 0",
     lambda p: evaluate_cli(p, p.ckpt, "--batch-size", "0"), "--batch-size must be an integer >= 1"),
    ("evaluate with no batches", "evaluate DIR/run/last.ckpt --max-batches 0",
     lambda p: evaluate_cli(p, p.ckpt, "--max-batches", "0"), "--max-batches must be an integer >= 1"),
]


def save_and_name(p: Place, name: str, obj) -> str:
    torch.save(obj, p.path(name))
    return str(p.path(name))


def shown(p: Place, text: str) -> str:
    """A message as the README shows it: the temporary folder is ``DIR``, one line."""
    text = text.replace(str(p.root), "DIR").strip()
    return "<br>".join(line.strip() for line in text.splitlines()).replace("|", "\\|")


def run_case(p: Place, case) -> str:
    _, _, call, fragment = case
    rc, out, err = call(p)
    assert rc != 0, (case[0], out, err)
    assert "Traceback" not in err, (case[0], err)
    assert fragment in err, (case[0], fragment, err)
    assert len(err.splitlines()) <= 6, (case[0], err)
    return err.removeprefix("error: ")


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    return Place(tmp_path_factory.mktemp("front"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_gets_one_short_named_error(case, place):
    run_case(place, case)


def render_table(p: Place) -> str:
    rows = ["| What went wrong | Run | What it prints: a command `error: ...` and exit status 2; Python the exception |",
            "|---|---|---|"]
    for case in CASES:
        message = shown(p, run_case(p, case))
        rows.append(f"| {case[0]} | `{case[1]}` | {message} |")
    return "\n".join(rows) + "\n"


def readme_table(text: str) -> str:
    section = text[text.index(SECTION):]
    start = section.index("| What went wrong")
    end = section.index("\n\n", start)
    return section[start : end + 1]


def test_readme_table_matches_the_cases(place):
    """The README's table is what the commands print (regenerate: python tests/test_front_door.py)."""
    assert readme_table(README.read_text()) == render_table(place)


# ---------------------------------------------------------------------------
# The three silent wrong results
# ---------------------------------------------------------------------------


def test_a_second_run_into_the_same_out_is_refused_and_overwrite_starts_over(tmp_path):
    out = tmp_path / "run"
    first = train(load_config(None, TINY), out, max_steps=2, progress=False)
    before = (out / "last.ckpt").read_bytes(), (out / "metrics.jsonl").read_text()
    with pytest.raises(OutputDirError, match="--resume.*--overwrite"):
        train(load_config(None, TINY), out, max_steps=1, progress=False)
    assert ((out / "last.ckpt").read_bytes(), (out / "metrics.jsonl").read_text()) == before  # nothing lost
    again = train(load_config(None, TINY), out, max_steps=1, progress=False, overwrite=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert again.step == 1 and [r["step"] for r in rows] == [1] and load_checkpoint(out / "last.ckpt")["step"] == 1
    assert first.step == 2


def test_max_steps_zero_saves_and_evaluates_the_initial_model(tmp_path):
    result = train(load_config(None, TINY), tmp_path / "zero", max_steps=0, progress=False)
    assert result.step == 0 and result.history == [] and "val/psnr" in result.final
    assert load_checkpoint(tmp_path / "zero" / "last.ckpt")["step"] == 0
    rc, out, _ = train_cli(Place(tmp_path), *sets(), "--out", tmp_path / "zero-cli", "--max-steps", "0")
    assert rc == 0 and json.loads(out.splitlines()[-1])["step"] == 0
    for bad in ({"max_steps": -1}, {"max_steps": 1.5}, {"max_seconds": 0}, {"max_seconds": -3.0},
                {"max_seconds": float("nan")}):
        with pytest.raises(UsageError):
            train(load_config(None, TINY), **bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_refused_with_count_and_first_index(value):
    model = VQVAE(1, 8, 16).eval()
    x = torch.zeros(2, 1, 8, 8)
    x[1, 0, 3, 5] = value
    x[1, 0, 6, 1] = value
    for call in (model.tokenize, model.encode, model.reconstruct):
        with pytest.raises(ValueError, match=r"2 non-finite value\(s\) of 128 .*index \(1, 0, 3, 5\)"):
            call(x)
    vqvae2 = VQVAE2(1, 8, 1, 8, 8, 16).eval()
    with pytest.raises(ValueError, match="non-finite"):
        vqvae2.tokenize(torch.full((1, 1, 16, 16), value))


# ---------------------------------------------------------------------------
# Checkpoints, metrics and the output directory after a crash
# ---------------------------------------------------------------------------


def test_resume_without_a_checkpoint_warns_and_starts_fresh(tmp_path):
    with pytest.warns(UserWarning, match="no checkpoint.*starting a fresh run"):
        result = train(load_config(None, TINY), tmp_path / "new", max_steps=1, resume=True, progress=False)
    assert result.step == 1


def test_a_partial_metrics_line_and_stale_temporaries_do_not_block_resume(tmp_path):
    out = tmp_path / "run"
    train(load_config(None, TINY), out, max_steps=2, progress=False)
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "train/total_')  # a crash mid-append
    stale = out / ".last.ckpt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    with pytest.warns(UserWarning, match="dropped 1 unreadable line"):
        result = train(load_config(None, TINY), out, max_steps=3, resume=True, progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert result.step == 3 and [r["step"] for r in rows] == [1, 2, 3]
    assert not stale.exists()


def test_checkpoints_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_atomic({"x": torch.zeros(1)}, tmp_path / "a.ckpt")
        assert stat.S_IMODE((tmp_path / "a.ckpt").stat().st_mode) == 0o644
        os.umask(0o077)
        save_atomic({"x": torch.zeros(1)}, tmp_path / "b.ckpt")
        assert stat.S_IMODE((tmp_path / "b.ckpt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_atomic({"step": 1}, path)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputDirError, match="disk is full.*previous checkpoint there is intact"):
        save_atomic({"step": 2}, path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_nan_abort_names_a_checkpoint_that_exists(tmp_path, monkeypatch):
    from vqlearn.train import NonFiniteLossError

    config = load_config(None, [*TINY, "train.ckpt_every=2"])
    forward = VQVAE.forward
    calls = {"n": 0}

    def poisoned(self, x):
        out = forward(self, x)
        if self.training and torch.is_grad_enabled():
            calls["n"] += 1
        return out._replace(reconstruction=out.reconstruction * float("nan")) if calls["n"] >= 4 else out

    monkeypatch.setattr(VQVAE, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"holds step 2") as error:
        train(config, tmp_path / "a", max_steps=10, progress=False)
    assert str(tmp_path / "a" / "last.ckpt") in str(error.value)
    calls["n"] = 0
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written yet"):
        train(load_config(None, [*TINY, "train.ckpt_every=100"]), tmp_path / "b", max_steps=10, progress=False)
    assert not (tmp_path / "b" / "last.ckpt").exists()


def test_debug_brings_the_traceback_back(tmp_path, monkeypatch):
    place = Place(tmp_path)
    with pytest.raises(UsageError):
        train_cli(place, "--max-steps", "-1", "--debug")
    monkeypatch.setenv("VQLEARN_DEBUG", "1")
    with pytest.raises(UsageError):
        train_cli(place, "--max-steps", "-1")


def test_internal_bugs_keep_their_traceback(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("an internal bug")

    monkeypatch.setattr(train_module, "train", bug)
    with pytest.raises(KeyError):
        train_cli(Place(tmp_path), *sets(), "--out", tmp_path / "x")


def test_checkpoint_errors_never_suggest_unsafe_loading(place):
    for path in (place.truncated(), place.flipped(), place.file("r.ckpt", os.urandom(2048))):
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(path)
        assert "weights_only=False" not in str(error.value)


# ---------------------------------------------------------------------------
# Property-based: the two parsers of arbitrary input
# ---------------------------------------------------------------------------

KNOWN_KEYS = ["model.family", "model.dim", "model.num_codes", "model.in_channels", "model.batchnorm", "model.channel",
              "model.ddconfig", "model.ddconfig.ch", "model.ddconfig.ch_mult", "model.ddconfig.num_groups", "model.K",
              "data.name", "data.root", "data.image_size", "data.download", "quantizer.kind", "quantizer.beta",
              "quantizer.decay", "quantizer.init", "quantizer.restart_every", "loss.kind", "loss.rec_loss",
              "loss.disc_start", "loss.disc_loss", "train.lr", "train.betas", "train.batch_size", "train.max_steps",
              "train.max_seconds", "train.precision", "train.device", "train.seed", "train.dist_timeout", "model",
              "train", "data.name.x", "nonsense", "train.lr.x"]


def _strategies():
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                        st.text(max_size=12), st.sampled_from(["vqgan", "vqvae2", "ema", "kmeans", "1e-3", "cpu",
                                                               "cuda:0", "fp16", "photos", "folder"]))
    values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                          max_leaves=6)
    keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(alphabet="abcdefgz._ K=", max_size=14))
    return st, keys, values


def test_any_override_gives_a_config_or_a_config_error_naming_the_key():
    from hypothesis import HealthCheck, given, settings

    from vqlearn.config import Config, ConfigError

    st, keys, values = _strategies()

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pairs=st.lists(st.tuples(keys, values), min_size=1, max_size=1), as_text=st.booleans(),
           raw=st.text(max_size=20))
    def check(pairs, as_text, raw):
        (key, value), = pairs
        override = f"{key}={raw}" if as_text else (key, value)
        try:
            config = load_config(None, [override])
        except ConfigError as error:
            message = str(error)
            name = key.strip() if as_text else key
            parts = [part.strip() for part in name.split(".")]
            prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
            assert ("=" not in name and any(p and p in message for p in prefixes)) or "override" in message \
                or "key=value" in message or "=" in name, (override, message)
        else:
            assert isinstance(config, Config)

    check()


def test_any_truncation_or_byte_flip_of_a_checkpoint_loads_the_same_model_or_is_a_checkpoint_error(place):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vqlearn.build import load_model

    original = Path(place.ckpt).read_bytes()
    reference = load_model(place.ckpt)[0].state_dict()
    target = place.path("mutated.ckpt")

    @settings(max_examples=40, deadline=None, database=None)
    @given(cut=st.one_of(st.none(), st.integers(0, len(original) - 1)),
           flips=st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(1, 255)), max_size=3))
    def check(cut, flips):
        data = bytearray(original)
        for position, mask in flips:
            data[position] ^= mask
        if cut is not None:
            data = data[:cut]
        target.write_bytes(bytes(data))
        try:
            model, _ = load_model(target)
        except CheckpointError as error:
            assert "weights_only=False" not in str(error)
        else:
            state = model.state_dict()
            assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)

    check()


if __name__ == "__main__":  # regenerate the README table
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        torch.set_num_threads(1)
        table = render_table(Place(Path(folder)))
    text = README.read_text()
    old = readme_table(text)
    README.write_text(text.replace(old, table))
    print(f"README.md: {SECTION[3:]} table {'updated' if old != table else 'unchanged'}", file=sys.stderr)
