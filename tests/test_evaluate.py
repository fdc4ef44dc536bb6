"""PSNR and SSIM against values we can derive, and the evaluate command line."""

import json
import math

import pytest
import torch

from vqlearn.evaluate import evaluate_model, main
from vqlearn.metrics import gaussian_window, psnr, ssim
from vqlearn.perceptual import lpips_available
from vqlearn.train import load_config, train


def test_psnr_known_value():
    x = torch.zeros(2, 1, 8, 8)
    y = torch.full_like(x, 0.1)  # mse 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert torch.allclose(psnr(x, y), torch.tensor([20.0, 20.0]))
    assert torch.isinf(psnr(x, x)).all()


def test_gaussian_window_is_normalised():
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11) and math.isclose(float(w.sum()), 1.0, rel_tol=1e-12)
    assert w[5, 5] == w.max() and torch.allclose(w, w.t())


def test_ssim_identical_is_one_and_noise_lowers_it():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    scores = [float(ssim(x, (x + s * torch.randn_like(x)).clamp(0, 1)).mean()) for s in (0.01, 0.05, 0.2)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0


def test_ssim_of_constant_images_has_a_closed_form():
    # No variance anywhere: the structure term is C2 / C2 = 1 and only luminance remains,
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.6, 0.01**2
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim(x, y)) == pytest.approx(expected, rel=1e-9)
    assert float(ssim(x.float(), y.float())) == pytest.approx(expected, rel=1e-4)  # float32 rounding


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    torch.manual_seed(1)
    x = torch.rand(1, 3, 24, 24, dtype=torch.float64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    reference = metrics.structural_similarity(
        x[0].numpy(), y[0].numpy(), channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False)
    assert float(ssim(x, y)) == pytest.approx(reference, abs=1e-5)


def test_metrics_reject_mismatched_batches():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="at least"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


TINY_VQVAE2 = ["model.family=vqvae2", "model.channel=16", "model.n_res_block=1", "model.n_res_channel=8",
               "model.embed_dim=8", "model.num_codes=16", "data.name=photos", "data.image_size=16",
               "train.batch_size=8", "train.eval_batches=0", "train.sample_every=0"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    vqvae = train(load_config(None, ["model.dim=16", "model.num_codes=32", "train.batch_size=8",
                                     "train.eval_batches=0", "train.sample_every=0"]),
                  root / "vqvae", max_steps=2, progress=False)
    vqvae2 = train(load_config(None, TINY_VQVAE2), root / "vqvae2", max_steps=2, progress=False)
    torch.set_num_threads(threads)
    return {"vqvae": vqvae.checkpoint, "vqvae2": vqvae2.checkpoint}


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_evaluate_cli_reports_the_metrics(checkpoints, capsys):
    assert main([str(checkpoints["vqvae"]), "--max-batches", "2", "--batch-size", "16"]) == 0
    result = last_json(capsys)
    for key in ("psnr", "ssim", "codebook_usage", "codes_used", "perplexity"):
        assert key in result, key
    assert result["data"] == "mnist" and result["split"] == "test" and result["num_images"] == 32
    assert 0 < result["codebook_usage"] <= 1 and result["step"] == 2
    assert ("lpips" in result) == lpips_available("alex")


def test_evaluate_cli_vqvae2_levels_and_overrides(checkpoints, capsys):
    assert main([str(checkpoints["vqvae2"]), "--split", "train", "--max-batches", "1"]) == 0
    result = last_json(capsys)
    assert result["split"] == "train"
    for key in ("codebook_usage_top", "codebook_usage_bottom", "perplexity_top", "perplexity_bottom"):
        assert key in result, key
    mean = (result["codebook_usage_top"] + result["codebook_usage_bottom"]) / 2
    assert result["codebook_usage"] == pytest.approx(mean)
    assert main([str(checkpoints["vqvae2"]), "--data", "faces", "--max-batches", "1"]) == 2  # 1 channel vs 3
    assert main([str(checkpoints["vqvae2"]), "--data", "cifar10"]) == 2
    assert "data.root" in capsys.readouterr().err


def test_evaluate_cli_missing_checkpoint(tmp_path, capsys):
    assert main([str(tmp_path / "nothing.ckpt")]) == 2
    assert "nothing.ckpt" in capsys.readouterr().err


def test_evaluate_model_leaves_the_model_alone(checkpoints):
    from vqlearn.data import build_dataset
    from vqlearn.build import load_model

    model, _ = load_model(checkpoints["vqvae2"])
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = evaluate_model(model, build_dataset("photos", "test", image_size=16), batch_size=8, max_batches=2)
    assert metrics["num_images"] == 16 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # EMA codebooks did not move


def test_evaluate_model_code_counts_per_level(checkpoints):
    from vqlearn.build import load_model
    from vqlearn.data import build_dataset

    model, _ = load_model(checkpoints["vqvae2"])
    data = build_dataset("photos", "test", image_size=16)
    plain = evaluate_model(model, data, batch_size=8, max_batches=2)
    metrics = evaluate_model(model, data, batch_size=8, max_batches=2, code_counts=True)
    assert "code_counts" not in plain
    top, bottom = metrics["code_counts"]
    assert top.shape == bottom.shape == (16,) and top.device.type == "cpu"
    assert int(top.sum()) == 16 * 2 * 2 and int(bottom.sum()) == 16 * 4 * 4  # 16 images, 2x2 top, 4x4 bottom codes
    assert int((top > 0).sum()) == metrics["codes_used_top"] and int((bottom > 0).sum()) == metrics["codes_used_bottom"]
