import pytest
import torch

from vqlearn.profile import active_profile, by_profile


def test_profile_defaults_to_device(monkeypatch):
    monkeypatch.delenv("VQLEARN_PROFILE", raising=False)
    assert active_profile() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_profile_override_and_by_profile(monkeypatch):
    monkeypatch.setenv("VQLEARN_PROFILE", "cpu")
    assert active_profile() == "cpu"
    assert by_profile(cpu=1, gpu=2) == 1


def test_profile_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv("VQLEARN_PROFILE", "tpu")
    with pytest.raises(ValueError, match="VQLEARN_PROFILE"):
        active_profile()
