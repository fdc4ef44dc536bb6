"""LPIPS loading, offline. A fake trunk (an untrained torchvision squeezenet1_1,
saved under the file name torchvision expects) stands in for the ImageNet weights."""

import urllib.error

import pytest
import torch
import torch.hub

from vqlearn.perceptual import (
    LPIPSUnavailableError,
    load_lpips,
    lpips_available,
    trunk_weights_path,
    trunk_weights_url,
)

pytest.importorskip("lpips")
torchvision = pytest.importorskip("torchvision")

SQUEEZE_FILE = "squeezenet1_1-b8a52dc0.pth"


@pytest.fixture(scope="module")
def fake_trunk(tmp_path_factory):
    """An untrained squeezenet1_1 state dict under the exact file name torchvision loads."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("trunk") / SQUEEZE_FILE
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, and a network that fails the test if anything downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


@pytest.fixture
def squeeze_home(torch_home, fake_trunk):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / SQUEEZE_FILE).write_bytes(fake_trunk.read_bytes())
    return torch_home


def test_file_names_come_from_torchvision(torch_home):
    assert trunk_weights_url("vgg") == torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    assert trunk_weights_url("vgg").endswith("/vgg16-397923af.pth")
    assert trunk_weights_path("squeeze") == torch_home / "hub" / "checkpoints" / SQUEEZE_FILE
    with pytest.raises(ValueError, match="net must be one of"):
        trunk_weights_path("resnet")


def test_load_from_the_hub_cache_without_network(squeeze_home):
    assert lpips_available("squeeze")
    assert not lpips_available("vgg")
    model = load_lpips("squeeze")
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert model(x, x).shape == (2, 1, 1, 1)
    assert torch.all(model(x, x) == 0)
    assert torch.all(model(x, y) > 0)


def test_missing_trunk_error_names_file_directory_url_and_alternative(torch_home):
    assert not lpips_available("vgg")
    with pytest.raises(LPIPSUnavailableError) as info:
        load_lpips("vgg")  # download=False: never touches the (patched) network
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "vgg16-397923af.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "perceptual_weight=0" in message
    assert not (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()


def test_failed_download_raises_the_same_error(torch_home, monkeypatch):
    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(LPIPSUnavailableError, match="downloading it failed") as info:
        load_lpips("alex", download=True)
    assert "alexnet-owt-7be5be79.pth" in str(info.value) and "perceptual_weight=0" in str(info.value)


def test_download_checks_the_hash_prefix(torch_home, fake_trunk, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        with open(dst, "wb") as f:
            f.write(fake_trunk.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    load_lpips("squeeze", download=True)
    assert calls == [(trunk_weights_url("squeeze"), "b8a52dc0")]


def test_loss_module_with_lpips(squeeze_home):
    from vqlearn.losses import VQLPIPSWithDiscriminator

    loss_fn = VQLPIPSWithDiscriminator(disc_start=10, perceptual_net="squeeze", disc_ndf=4)
    loss_fn.train()
    assert loss_fn.training and not loss_fn.perceptual_loss.training  # LPIPS dropout stays off
    torch.manual_seed(2)
    x = torch.rand(2, 1, 32, 32) * 2 - 1  # grey images are repeated to RGB for LPIPS
    rec = torch.rand(2, 1, 32, 32) * 2 - 1
    loss_fn = VQLPIPSWithDiscriminator(disc_start=10, perceptual_net="squeeze", disc_ndf=4, disc_in_channels=1,
                                       perceptual_weight=0.5)
    _, log = loss_fn(torch.tensor(0.0), x, rec, 0, global_step=0)
    p = log["train/p_loss"]
    assert p > 0
    expected_rec = (x - rec).abs().mean() + 0.5 * p
    assert log["train/rec_loss"].item() == pytest.approx(expected_rec.item(), rel=1e-5)
