"""vqlearn.checkpoint: a failing save, every damaged-file message, the mismatch listing
(mutation testing, issue 16)."""

import errno
import os
import pickle
import stat
import zipfile

import pytest
import torch
import torch.nn as nn

import vqlearn.checkpoint as checkpoint
from vqlearn.checkpoint import (
    describe_mismatch,
    load_checkpoint,
    load_state_dict_checked,
    remove_stale_temporaries,
    save_atomic,
    verify_checkpoint_file,
    write_failure,
)
from vqlearn.errors import CheckpointError, OutputDirError


# --- write_failure: the reason in words ---


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(errno.ENOSPC, "x"), "the disk is full (no space left on device); free some space or use another --out"),
        (OSError(errno.EDQUOT, "x"), "the disk is full (no space left on device); free some space or use another --out"),
        (RuntimeError("file write failed: No space left on device"),
         "the disk is full (no space left on device); free some space or use another --out"),
        (OSError(errno.EACCES, "x"), "permission denied (or a read-only file system); choose a writable --out"),
        (OSError(errno.EPERM, "x"), "permission denied (or a read-only file system); choose a writable --out"),
        (OSError(errno.EROFS, "x"), "permission denied (or a read-only file system); choose a writable --out"),
        (ValueError("odd"), "ValueError: odd"),
    ],
)
def test_write_failure_says_why(error, reason):
    failure = write_failure("out/last.ckpt", error, what="metrics file")
    assert isinstance(failure, OutputDirError)
    assert str(failure) == f"cannot write the metrics file out/last.ckpt: {reason}"
    assert str(write_failure("a", error)).startswith("cannot write the checkpoint a: ")


# --- save_atomic ---


def test_save_creates_folders_and_uses_the_umask(tmp_path):
    path = tmp_path / "deep" / "er" / "last.ckpt"
    old = os.umask(0o022)
    try:
        save_atomic({"step": 3}, path)
    finally:
        os.umask(old)
    assert torch.load(path) == {"step": 3}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary left


def test_the_temporary_is_a_hidden_sibling_that_remove_stale_temporaries_finds(tmp_path, monkeypatch):
    seen = []
    real_save = torch.save

    def looking_save(obj, f):
        seen.extend(p.name for p in tmp_path.iterdir())
        real_save(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", looking_save)
    save_atomic({"step": 1}, tmp_path / "last.ckpt")
    assert len(seen) == 1 and seen[0].startswith(".last.ckpt.") and seen[0].endswith(".tmp")


def test_an_unreadable_file_is_named(tmp_path, monkeypatch):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"PK\x03\x04")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checkpoint, "open", denied, raising=False)
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(path)
    assert str(error.value) == f"cannot read checkpoint {path}: Permission denied"


def test_a_failing_save_keeps_the_previous_checkpoint_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_atomic({"step": 1}, path)

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OutputDirError) as error:
        save_atomic({"step": 2}, path)
    assert str(error.value) == (f"cannot write the checkpoint {path}: the disk is full (no space left on device); "
                                f"free some space or use another --out (the previous checkpoint there is intact)")
    assert isinstance(error.value.__cause__, OSError)
    monkeypatch.undo()
    assert torch.load(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_failing_first_save_says_nothing_about_a_previous_one(tmp_path, monkeypatch):
    def broken(obj, f):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(checkpoint.torch, "save", broken)
    with pytest.raises(OutputDirError) as error:
        save_atomic({"step": 2}, tmp_path / "first.ckpt")
    assert str(error.value) == (f"cannot write the checkpoint {tmp_path / 'first.ckpt'}: "
                                f"RuntimeError: PytorchStreamWriter failed writing file data/0")
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_and_still_clean_up(tmp_path, monkeypatch):
    def interrupted(obj, f):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({}, tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []

    def unpicklable(obj, f):
        raise pickle.PicklingError("cannot pickle a lambda")

    monkeypatch.setattr(checkpoint.torch, "save", unpicklable)
    with pytest.raises(pickle.PicklingError):
        save_atomic({}, tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_folder_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputDirError) as error:
        save_atomic({}, blocker / "last.ckpt")
    assert str(error.value) == (f"cannot write the checkpoint {blocker / 'last.ckpt'}: "
                                f"FileExistsError: [Errno 17] File exists: '{blocker}'")


def test_remove_stale_temporaries_removes_only_this_names_temporaries(tmp_path):
    assert remove_stale_temporaries(tmp_path / "missing") == []
    names = [".last.ckpt.abc.tmp", ".last.ckpt.def.tmp", ".best.ckpt.x.tmp", "last.ckpt", ".last.ckpt.abc"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert removed == [tmp_path / ".last.ckpt.abc.tmp", tmp_path / ".last.ckpt.def.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.ckpt.x.tmp", ".last.ckpt.abc", "last.ckpt"]
    assert remove_stale_temporaries(tmp_path, name="best.ckpt") == [tmp_path / ".best.ckpt.x.tmp"]
    file = tmp_path / "last.ckpt"
    assert remove_stale_temporaries(file) == []


# --- verify_checkpoint_file / load_checkpoint: every kind of bad file ---


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}}, path)
    return path


def test_folders_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(tmp_path)
    assert str(error.value) == f"{tmp_path} is a directory, not a checkpoint file; pass the file itself"
    (tmp_path / "last.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(tmp_path)
    assert str(error.value).endswith(f"pass the file itself (did you mean {tmp_path / 'last.ckpt'}?)")
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(tmp_path / "last.ckpt")
    assert str(error.value) == f"{tmp_path / 'last.ckpt'} is empty (0 bytes), not a checkpoint"
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "nope.ckpt")
    assert str(error.value) == f"checkpoint not found: {tmp_path / 'nope.ckpt'}"


def test_corrupt_truncated_and_foreign_files(good, tmp_path):
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = next(i for i in archive.infolist() if i.file_size >= 4000)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 100] ^= 0xFF  # one flipped byte inside the tensor data
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(corrupt)
    assert str(error.value) == (f"{corrupt} is corrupt: its entry {info.filename!r} fails the CRC-32 check "
                                f"torch.save wrote (the file changed after it was saved: a disk or copy error); "
                                f"use another copy of the checkpoint")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(truncated)
    assert str(error.value) == (f"{truncated} is truncated: it starts like a torch checkpoint but its end is missing "
                                f"(an interrupted copy or download?); use a complete copy")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError) as error:
        verify_checkpoint_file(text)
    assert str(error.value) == (f"{text} is not a vqlearn/torch checkpoint (it is neither a torch.save zip archive "
                                f"nor a pickle; first bytes b'hell')")


def test_a_damaged_zip_structure_is_named(good, tmp_path):
    data = bytearray(good.read_bytes())
    central = data.find(b"PK\x01\x02")  # the first central-directory entry
    data[central:central + 4] = b"PK\x09\x09"  # its signature broken; the end record still says "zip"
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(bytes(data))
    if not zipfile.is_zipfile(damaged):
        pytest.fail("the damaged file should still look like a zip archive to zipfile.is_zipfile")
    with pytest.raises(CheckpointError, match=r"is damaged \(its zip structure does not read: .*\); "
                                              r"use another copy of the checkpoint"):
        verify_checkpoint_file(damaged)


def test_a_legacy_pickle_passes_the_check_and_loads(tmp_path):
    path = tmp_path / "legacy.ckpt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:1] == b"\x80"
    verify_checkpoint_file(path)
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2))


class Unsafe:
    pass


def test_unsafe_and_unreadable_pickles_are_refused_with_the_way_out(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "callback": Unsafe()}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"refusing to load {path}: it needs Python objects unpickled")
    assert "GLOBAL" in message and "Unsafe" in message
    assert message.endswith("torch.save({'state_dict': ckpt['state_dict']}, 'clean.ckpt') -- then load clean.ckpt.")
    pickled = tmp_path / "pickled.ckpt"
    pickled.write_bytes(b"\x80\x02\xff")  # a pickle with an opcode that does not exist
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(pickled)
    assert str(error.value).startswith(f"{pickled} is not a vqlearn/torch checkpoint, or it is damaged "
                                       f"(unpickling failed: Weights only load failed.")
    prefix = f"{pickled} is not a vqlearn/torch checkpoint, or it is damaged (unpickling failed: "
    assert "\n" not in str(error.value) and len(str(error.value)) == len(prefix) + 200 + 1  # 200 characters, ")"
    pickled.write_bytes(b"\x80\x02K\x01.")  # a pickle, but not torch's legacy format
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(pickled)
    assert str(error.value) == (f"cannot read checkpoint {pickled}: it is damaged or not a torch checkpoint "
                                f"(RuntimeError: Invalid magic number; corrupt file?)")


def test_load_checkpoint_maps_to_the_requested_device(good):
    loaded = load_checkpoint(good, map_location="meta")
    assert loaded["state_dict"]["w"].device.type == "meta"
    assert load_checkpoint(good)["state_dict"]["w"].device.type == "cpu"


# --- describe_mismatch / load_state_dict_checked ---


def test_describe_mismatch_lists_every_problem():
    model = nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1), "bias": 1.5}
    assert describe_mismatch(model, state) == (
        "  unexpected keys (in the checkpoint, not in the model) (1):\n    extra\n"
        "  shape mismatches (1):\n    weight: checkpoint (2, 4) vs model (2, 3)\n"
        "  not tensors (1):\n    bias: checkpoint holds a float, not a tensor\n"
    )
    assert describe_mismatch(model, {"weight": torch.zeros(2, 3)}) == (
        "  missing keys (in the model, not in the checkpoint) (1):\n    bias\n")
    assert describe_mismatch(model, model.state_dict()) == ""


def test_long_listings_are_cut_after_twenty():
    model = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(23)])
    listing = describe_mismatch(model, {})
    lines = listing.splitlines()
    assert lines[0] == "  missing keys (in the model, not in the checkpoint) (23):"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "    ... and 3 more"
    assert lines[1:3] == ["    0.weight", "    1.weight"]
    exactly = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(20)])
    assert "more" not in describe_mismatch(exactly, {})
    one_over = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(21)])
    assert describe_mismatch(one_over, {}).splitlines()[-1] == "    ... and 1 more"


def test_load_state_dict_checked(tmp_path):
    model = nn.Linear(3, 2)
    source = nn.Linear(3, 2)
    load_state_dict_checked(model, source.state_dict())
    assert torch.equal(model.weight, source.weight) and torch.equal(model.bias, source.bias)
    for bad, kind in (([1, 2], "list"), ({1: torch.zeros(1)}, "dict")):
        with pytest.raises(CheckpointError) as error:
            load_state_dict_checked(model, bad, source="my.ckpt")
        assert str(error.value) == (f"my.ckpt is not a state dict (a mapping of names to tensors); got a {kind}")
    with pytest.raises(CheckpointError) as error:
        load_state_dict_checked(model, {"weight": torch.zeros(2, 3)})
    assert str(error.value) == (
        "checkpoint does not fit Linear:\n"
        "  missing keys (in the model, not in the checkpoint) (1):\n    bias\n"
        "Check that the model was built with the same configuration as the one that was saved.")


@pytest.mark.parametrize("error, shown", [(RuntimeError(), ""), (RuntimeError("x" * 300 + "\nsecond line"), "x" * 200)])
def test_a_failing_torch_load_is_shown_by_its_first_line_cut_at_200(good, monkeypatch, error, shown):
    def failing_load(*args, **kwargs):
        raise error

    monkeypatch.setattr(checkpoint.torch, "load", failing_load)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(good)
    assert str(info.value) == (f"cannot read checkpoint {good}: it is damaged or not a torch checkpoint "
                               f"(RuntimeError: {shown})")
