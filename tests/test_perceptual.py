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


# ----------------------------------------------------------------------------
# the command line: python -m vqlearn.perceptual


def test_cli_download_calls_the_downloader_and_writes_into_the_hub_cache(torch_home, monkeypatch, capsys):
    from vqlearn.perceptual import main

    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        with open(dst, "wb") as f:
            f.write(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    expected = torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert main(["--download", "vgg"]) == 0  # lpips' heads ship, and the trunk file is now there
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", str(expected), "397923af")]
    assert expected.read_bytes() == b"weights"
    assert str(expected) in capsys.readouterr().out
    # a file already there is kept: no second download
    assert main(["--download", "vgg"]) == 0
    assert len(calls) == 1 and "already present" in capsys.readouterr().out


def test_cli_download_several_nets(torch_home, monkeypatch):
    from vqlearn.perceptual import main

    urls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        urls.append(url)
        with open(dst, "wb") as f:
            f.write(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    assert main(["--download", "alex", "squeeze"]) == 0
    assert urls == [trunk_weights_url("alex"), trunk_weights_url("squeeze")]
    assert (torch_home / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth").is_file()
    assert (torch_home / "hub" / "checkpoints" / SQUEEZE_FILE).is_file()


def test_cli_offline_is_one_clear_error_without_traceback(torch_home, monkeypatch, capsys):
    from vqlearn.perceptual import main

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert main(["--download", "vgg"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: LPIPS(net='vgg') needs torchvision's ImageNet weights")
    assert "downloading it failed" in err and "https://download.pytorch.org/models/vgg16-397923af.pth" in err
    assert str(torch_home / "hub" / "checkpoints") in err and "perceptual_weight=0" in err
    assert "Traceback" not in err
    assert not (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()
    with pytest.raises(LPIPSUnavailableError):  # --traceback lets the exception through
        main(["--download", "vgg", "--traceback"])


def test_cli_check_reports_where_and_whether(squeeze_home, capsys):
    from vqlearn.perceptual import main

    assert main(["--check", "squeeze"]) == 0
    out = capsys.readouterr().out
    assert f"present  {squeeze_home / 'hub' / 'checkpoints' / SQUEEZE_FILE}" in out
    assert main([]) == 1  # no flag: every net; vgg and alex are missing here
    out = capsys.readouterr().out
    assert f"MISSING  {squeeze_home / 'hub' / 'checkpoints' / 'vgg16-397923af.pth'}" in out
    assert "python -m vqlearn.perceptual --download alex" in out


def test_cli_runs_as_a_module(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, TORCH_HOME=str(tmp_path), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "vqlearn.perceptual", "--check", "vgg"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f"MISSING  {tmp_path / 'hub' / 'checkpoints' / 'vgg16-397923af.pth'}" in done.stdout
    assert "Traceback" not in done.stderr
    bad = subprocess.run([sys.executable, "-m", "vqlearn.perceptual", "--download", "resnet"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'resnet'" in bad.stderr


def test_load_lpips_uses_the_trunk_file_never_a_random_trunk(squeeze_home, fake_trunk, monkeypatch):
    """The chapter's random-trunk LPIPS exists only in the book: the package's loader reads the trunk from disk."""
    import lpips

    built = []
    real_lpips = lpips.LPIPS

    def recording_lpips(*args, **kwargs):
        built.append(kwargs)
        return real_lpips(*args, **kwargs)

    monkeypatch.setattr(lpips, "LPIPS", recording_lpips)
    model = load_lpips("squeeze")
    assert len(built) == 1 and not built[0].get("pnet_rand", False)
    trunk = torch.load(fake_trunk, map_location="cpu", weights_only=True)
    assert torch.equal(model.net.slice1[0].weight, trunk["features.0.weight"])  # the file's weights, not a fresh init


def test_no_package_module_builds_a_random_trunk():
    from pathlib import Path

    import vqlearn

    for path in Path(vqlearn.__file__).parent.rglob("*.py"):
        assert "pnet_rand" not in path.read_text(), f"{path} mentions lpips' random-trunk switch"
