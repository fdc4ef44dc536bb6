"""Codebook tools: usage statistics and metrics, the quantizer-input hooks,
k-means, data initialisation and dead-code restarts."""

import pickle

import numpy as np
import pytest
import torch

from vqlearn.codebook import (
    CodebookUsage,
    QuantizerInputs,
    codebook_metrics,
    init_codebook_from_data,
    kmeans,
    kmeans_plus_plus,
    level_names,
    restart_dead_codes,
)
from vqlearn.quantize import VectorQuantizer, make_codebook


def test_codebook_usage_accumulates_over_batches():
    usage = CodebookUsage(8)
    usage.update(torch.tensor([0, 0, 1]))
    usage.update(torch.tensor([[2, 3], [3, 3]]))
    assert usage.codes_used == 4
    assert usage.fraction_used == 0.5
    assert usage.counts.tolist() == [2, 1, 1, 3, 0, 0, 0, 0]
    uniform = CodebookUsage(4)
    uniform.update(torch.arange(4).repeat(10))
    assert uniform.perplexity == pytest.approx(4.0)


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centers])
    found = kmeans(points, 3, iters=20, generator=torch.Generator().manual_seed(0))
    dist = torch.cdist(found, centers).min(dim=1).values
    assert dist.max() < 0.5


@pytest.mark.parametrize("kind", ["vq", "ema"])
@pytest.mark.parametrize("method", ["kmeans", "samples"])
def test_init_codebook_from_data_puts_every_code_on_the_data(kind, method):
    torch.manual_seed(0)
    q = make_codebook(kind, 8, 4)
    z = 5.0 + torch.randn(4, 4, 4, 4)  # data far from the initial codebook
    init_codebook_from_data(q, z, method=method, generator=torch.Generator().manual_seed(0))
    usage = CodebookUsage(8)
    usage.update(q.eval()(z).indices)
    assert usage.codes_used >= 6
    assert (q.codebook.mean() - 5.0).abs() < 1.0


def test_init_codebook_needs_enough_vectors():
    with pytest.raises(ValueError, match="at least num_codes=8"):
        init_codebook_from_data(make_codebook("vq", 8, 4), torch.randn(1, 4, 2, 2))


@pytest.mark.parametrize("kind", ["vq", "ema"])
def test_restart_dead_codes_moves_only_dead_codes(kind):
    torch.manual_seed(0)
    q = make_codebook(kind, 8, 4)
    before = q.codebook.clone()
    counts = torch.tensor([5, 0, 3, 0, 1, 1, 1, 0])
    z = torch.randn(2, 4, 4, 4)
    restarted = restart_dead_codes(q, z, counts, generator=torch.Generator().manual_seed(0))
    assert restarted == 3
    after = q.codebook
    alive = counts > 0
    assert torch.equal(after[alive], before[alive])
    vectors = q.to_lookup_space(z)
    for row in after[~alive]:
        assert torch.isclose(vectors, row[None]).all(dim=1).any()


def test_codebook_usage_update_stays_on_the_codes_device_without_host_reads(monkeypatch):
    usage = CodebookUsage(8)
    codes = torch.tensor([[1, 1], [7, 2]])

    def no_host_read(*args, **kwargs):
        raise AssertionError("CodebookUsage.update read a tensor on the host")

    with monkeypatch.context() as patch:
        for name in ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__"):
            patch.setattr(torch.Tensor, name, no_host_read)
        usage.update(codes)
        usage.update(codes)
    assert usage.counts.device == codes.device
    assert usage.counts.tolist() == [0, 4, 2, 0, 0, 0, 0, 2]
    usage.reset()
    assert usage.counts.device == codes.device and usage.codes_used == 0


def test_codebook_usage_restores_from_assigned_counts():
    usage = CodebookUsage(4)
    usage.update(torch.tensor([0, 3, 3]))
    saved = usage.counts.clone()
    restored = CodebookUsage(4)
    restored.counts = saved.clone()
    restored.update(torch.tensor([1]))
    assert restored.counts.tolist() == [1, 1, 0, 2]


def test_level_names():
    assert level_names(1) == [""]
    assert level_names(2) == ["_0", "_1"]
    assert level_names(1, "_top") == ["_top"]
    assert level_names(3, "_bottom") == ["_bottom_0", "_bottom_1", "_bottom_2"]


def test_models_name_their_levels():
    """A residual quantizer's levels are numbered; VQ-VAE-2's two bottlenecks are top and bottom."""
    from vqlearn.models import VQVAE, VQVAE2

    assert VQVAE(dim=8, num_codes=4).level_names == [""]
    assert VQVAE(dim=8, num_codes=4, quantizer="rvq", quantizer_options={"depth": 2}).level_names == ["_0", "_1"]
    small = dict(channel=8, n_res_block=1, n_res_channel=4, embed_dim=4, num_codes=4)
    assert VQVAE2(**small).level_names == ["_top", "_bottom"]
    residual = VQVAE2(**small, quantizer="rvq", quantizer_options={"depth": 2})
    assert residual.level_names == ["_top_0", "_top_1", "_bottom_0", "_bottom_1"]
    assert len(residual.level_names) == len(residual.quantizers)


def test_codebook_metrics_name_each_level_and_their_mean():
    one = CodebookUsage(4)
    one.update(torch.tensor([0, 1]))
    assert codebook_metrics([one], [""]) == {"codebook_usage": 0.5, "codes_used": 2, "perplexity": pytest.approx(2.0)}
    top, bottom = CodebookUsage(4), CodebookUsage(8)
    top.update(torch.arange(4))
    bottom.update(torch.tensor([5]))
    metrics = codebook_metrics([top, bottom], ["_top", "_bottom"], prefix="train/")
    assert metrics["train/codebook_usage_top"] == 1.0 and metrics["train/codes_used_bottom"] == 1
    assert metrics["train/codebook_usage"] == pytest.approx((1.0 + 1 / 8) / 2)
    assert metrics["train/perplexity"] == pytest.approx((4.0 + 1.0) / 2)
    assert set(metrics) == {f"train/{m}{s}" for m in ("codebook_usage", "codes_used", "perplexity")
                            for s in ("_top", "_bottom")} | {"train/codebook_usage", "train/perplexity"}


def test_quantizer_inputs_capture_only_when_asked_and_remove_every_hook():
    quantizers = [make_codebook("vq", 8, 4), make_codebook("ema", 8, 4)]
    inputs = QuantizerInputs(quantizers)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    for q in quantizers:
        q(z)
    assert inputs.captured == [None, None]
    with inputs.capture(enabled=False):
        quantizers[0](z)
    assert inputs.captured == [None, None]
    with inputs.capture():
        for q in quantizers:
            q(z)
    assert all(torch.equal(c, z) and not c.requires_grad for c in inputs.captured)
    inputs.clear()
    assert inputs.captured == [None, None]
    inputs.remove()
    assert all(len(q._forward_pre_hooks) == 0 for q in quantizers)
    pickle.dumps(quantizers)


def test_same_generator_seed_gives_the_same_codebook():
    z = torch.randn(2, 4, 4, 4)
    results = []
    for _ in range(2):
        q = make_codebook("vq", 8, 4)
        init_codebook_from_data(q, z, generator=torch.Generator(device=z.device).manual_seed(3))
        restart_dead_codes(q, z, torch.tensor([0, 1] * 4), generator=torch.Generator(device=z.device).manual_seed(4))
        results.append(q.codebook.clone())
    assert torch.equal(*results)


def test_a_generator_on_another_device_is_rejected_with_the_fix():
    z = torch.empty(2, 4, 4, 4, device="meta")  # vectors on a device the CPU generator cannot draw for
    cpu = torch.Generator().manual_seed(0)
    fix = r"`generator` is on cpu but the vectors are on meta; pass torch.Generator\(device='meta'\)"
    with pytest.raises(ValueError, match=fix):
        kmeans_plus_plus(z.reshape(-1, 4), 3, cpu)
    with pytest.raises(ValueError, match=fix):
        kmeans(z.reshape(-1, 4), 3, generator=cpu)
    with pytest.raises(ValueError, match=fix):
        init_codebook_from_data(make_codebook("vq", 8, 4), z, generator=cpu)
    with pytest.raises(ValueError, match=fix):
        restart_dead_codes(make_codebook("vq", 8, 4), z, torch.zeros(8), generator=cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_use_a_cuda_generator_and_are_seed_exact():
    z = torch.randn(2, 4, 8, 8, device="cuda")
    torch.cuda.set_sync_debug_mode("error")  # CodebookUsage.update must not wait for the GPU
    try:
        usage = CodebookUsage(8, device="cuda")
        usage.update(torch.randint(0, 8, (100,), device="cuda"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert usage.counts.device.type == "cuda"
    results = []
    for _ in range(2):
        q = make_codebook("ema", 8, 4).cuda()
        init_codebook_from_data(q, z, generator=torch.Generator(device="cuda").manual_seed(3))
        restart_dead_codes(q, z, usage.counts * 0, generator=torch.Generator(device="cuda").manual_seed(4))
        results.append(q.codebook.clone())
    assert torch.equal(*results)


def test_usage_of_a_remapped_quantizer_spans_its_indices_not_its_rows(tmp_path):
    """With ``remap``, codes are compact indices: the histogram is ``num_indices`` long."""
    path = tmp_path / "used.npy"
    np.save(path, np.array([1, 4, 6]))
    q = VectorQuantizer(16, 4, remap=str(path), unknown_index="extra")
    assert (q.num_codes, q.num_indices) == (16, 4)
    usage = CodebookUsage(q.num_indices)
    usage.update(q(torch.randn(2, 4, 3, 3)).indices)
    assert usage.counts.shape == (4,) and usage.fraction_used == usage.codes_used / 4
