"""vqlearn.codebook: statistics and their reset, k-means by hand, restarts followed by EMA steps, and the
distributed code paths in a one-process gloo group (mutation testing, issue 16)."""

import pytest
import torch
import torch.distributed as dist

import vqlearn.codebook as codebook
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
from vqlearn.quantize import EMAVectorQuantizer, make_codebook, nearest_code


# --- statistics ---


def test_usage_counts_perplexity_and_reset_by_hand():
    usage = CodebookUsage(6)
    assert usage.num_codes == 6 and usage.counts.dtype == torch.int64 and usage.counts.tolist() == [0] * 6
    assert usage.perplexity == pytest.approx(1.0) and usage.codes_used == 0  # an empty histogram
    usage.update(torch.tensor([[0, 0, 0], [3, 3, 5]], dtype=torch.int32))
    p = torch.tensor([0.5, 1 / 3, 1 / 6], dtype=torch.double)
    assert usage.counts.tolist() == [3, 0, 0, 2, 0, 1]
    assert usage.perplexity == pytest.approx(torch.exp(-(p * p.log()).sum()).item(), rel=1e-9)
    assert (usage.codes_used, usage.fraction_used) == (3, 0.5)
    usage.reset()
    assert usage.counts.tolist() == [0] * 6 and usage.fraction_used == 0.0
    usage.update(torch.tensor([1]))
    assert usage.counts.tolist() == [0, 1, 0, 0, 0, 0]  # counting starts again after a reset


def test_usage_moves_to_the_codes_device():
    usage = CodebookUsage(4)
    assert usage.counts.device.type == "cpu"
    usage.update(torch.tensor([2, 2], device="meta"))
    assert usage.counts.device.type == "meta" and usage.counts.shape == (4,)
    assert CodebookUsage(4, device="meta").counts.device.type == "meta"


def test_metrics_with_a_prefix_and_three_levels():
    levels = [CodebookUsage(4) for _ in range(3)]
    levels[0].update(torch.arange(4))
    levels[1].update(torch.tensor([1, 1]))
    levels[2].update(torch.tensor([0, 1]))
    metrics = codebook_metrics(levels, level_names(3), prefix="val/")
    assert metrics == pytest.approx({
        "val/codebook_usage_0": 1.0, "val/codes_used_0": 4, "val/perplexity_0": 4.0,
        "val/codebook_usage_1": 0.25, "val/codes_used_1": 1, "val/perplexity_1": 1.0,
        "val/codebook_usage_2": 0.5, "val/codes_used_2": 2, "val/perplexity_2": 2.0,
        "val/codebook_usage": (1.0 + 0.25 + 0.5) / 3, "val/perplexity": (4.0 + 1.0 + 2.0) / 3})
    assert codebook_metrics([levels[1]], [""], prefix="x/") == pytest.approx(
        {"x/codebook_usage": 0.25, "x/codes_used": 1, "x/perplexity": 1.0})


def test_quantizer_inputs_capture_each_quantizer_in_its_slot():
    a, b = make_codebook("vq", 4, 2), make_codebook("vq", 4, 2)
    inputs = QuantizerInputs([a, b])
    assert inputs.capturing is False and len(inputs.handles) == 2
    za, zb = torch.randn(1, 2, 2, 2), torch.randn(1, 2, 2, 2)
    with inputs.capture() as captured:
        assert inputs.capturing and captured is inputs.captured
        b(zb)
        a(za)
    assert not inputs.capturing
    assert torch.equal(inputs.captured[0], za) and torch.equal(inputs.captured[1], zb)
    with pytest.raises(RuntimeError):
        with inputs.capture():
            raise RuntimeError("boom")
    assert not inputs.capturing  # switched off even when the block fails
    inputs.remove()
    assert inputs.handles == [] and inputs.captured == [None, None]


# --- k-means ---


def test_kmeans_plus_plus_never_draws_a_point_twice():
    """Chosen points are at distance 0 from a center: with k = N distinct points, each is drawn once."""
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.0, 5.0], [-2.0, 1.0]])
    for seed in range(5):
        centers = kmeans_plus_plus(points, 5, torch.Generator().manual_seed(seed))
        assert sorted(map(tuple, centers.tolist())) == sorted(map(tuple, points.tolist()))


def test_kmeans_plus_plus_can_start_from_any_point():
    points = torch.tensor([[0.0], [1.0], [2.0]])
    firsts = {kmeans_plus_plus(points, 1, torch.Generator().manual_seed(s)).item() for s in range(30)}
    assert firsts == {0.0, 1.0, 2.0}


def test_kmeans_plus_plus_prefers_far_points():
    points = torch.cat([torch.zeros(50, 1), torch.full((1, 1), 100.0)])
    picks = [kmeans_plus_plus(points, 2, torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(sorted(c.flatten().tolist()) == [0.0, 100.0] for c in picks)  # the far point is always drawn


def test_kmeans_plus_plus_on_identical_points_draws_uniformly():
    centers = kmeans_plus_plus(torch.ones(6, 3), 4, torch.Generator().manual_seed(0))
    assert torch.equal(centers, torch.ones(4, 3))


def test_kmeans_is_lloyd_from_the_seeds_and_keeps_empty_clusters():
    torch.manual_seed(0)
    points = torch.randn(40, 2) + torch.tensor([[4.0, 0.0]]) * (torch.arange(40) % 2)[:, None]
    seeds = kmeans_plus_plus(points, 3, torch.Generator().manual_seed(7))
    centers = seeds.clone()
    for _ in range(4):
        assign = torch.stack([((points - c) ** 2).sum(1) for c in centers], 1).argmin(1)
        for j in range(3):
            if (assign == j).any():
                centers[j] = points[assign == j].mean(0)
    found = kmeans(points.double(), 3, iters=4, generator=torch.Generator().manual_seed(7))
    assert found.dtype == torch.float32 and torch.allclose(found, centers, atol=1e-5)
    assert torch.equal(kmeans(points, 3, iters=0, generator=torch.Generator().manual_seed(7)), seeds)
    # two distinct values, three centers: a duplicated center gets no points (ties go to the first) and stays
    lonely = torch.tensor([[0.0], [0.0], [1.0], [1.0]])
    seeds = kmeans_plus_plus(lonely, 3, torch.Generator().manual_seed(0))
    assert len(seeds.unique()) == 2
    assert torch.equal(kmeans(lonely, 3, iters=3, generator=torch.Generator().manual_seed(0)), seeds)
    with pytest.raises(ValueError) as error:
        kmeans(points[:2], 3)
    assert str(error.value) == "k-means needs at least k=3 vectors to start from, got 2; pass more data"


def test_kmeans_takes_exactly_k_vectors_and_runs_ten_iterations_by_default(monkeypatch):
    points = torch.tensor([[0.0], [1.0], [5.0]])
    assert sorted(kmeans(points, 3, generator=torch.Generator().manual_seed(0)).flatten().tolist()) == [0, 1, 5]
    calls = []
    real = codebook.nearest_code
    monkeypatch.setattr(codebook, "nearest_code", lambda z, c: calls.append(1) or real(z, c))
    kmeans(torch.randn(20, 2), 4)
    assert len(calls) == 10


def test_kmeans_moves_single_point_clusters_like_lloyd():
    """Many clusters for few points: some clusters hold one point, and their center moves onto it."""
    for seed in range(3):
        torch.manual_seed(seed)
        points = torch.randn(12, 2)
        seeds = kmeans_plus_plus(points, 6, torch.Generator().manual_seed(seed))
        centers = seeds.clone()
        for _ in range(3):
            assign = torch.stack([((points - c) ** 2).sum(1) for c in centers], 1).argmin(1)
            for j in range(6):
                if (assign == j).any():
                    centers[j] = points[assign == j].mean(0)
        found = kmeans(points, 6, iters=3, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(found, centers, atol=1e-6)


def test_kmeans_runs_the_requested_iterations():
    points = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]])
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert not torch.equal(kmeans(points, 2, iters=1, generator=gen()), kmeans(points, 2, iters=0, generator=gen()))
    assert torch.equal(kmeans(points, 2, iters=10, generator=gen()), kmeans(points, 2, generator=gen()))


# --- initialisation and restarts, then EMA steps ---


def test_samples_init_copies_distinct_encoder_vectors():
    q = make_codebook("vq", 6, 2)
    z = torch.arange(24.0).reshape(1, 2, 3, 4)
    init_codebook_from_data(q, z, method="samples", generator=torch.Generator().manual_seed(0))
    vectors = q.to_lookup_space(z)
    rows = {tuple(r) for r in q.codebook.tolist()}
    assert len(rows) == 6 and rows <= {tuple(v) for v in vectors.tolist()}
    with pytest.raises(ValueError) as error:
        init_codebook_from_data(q, z, method="random")
    assert str(error.value) == "method must be one of ('kmeans', 'samples'), got 'random'"


def test_ema_restart_then_steps_keep_the_restarted_codes_in_use():
    """A dead code restarted onto the data is chosen by the next batches, and the EMA then moves it there."""
    torch.manual_seed(0)
    q = EMAVectorQuantizer(8, 2, decay=0.5)
    z = torch.randn(4, 2, 4, 4) + 20.0  # far from every initial code: one code takes all
    usage = CodebookUsage(8)
    usage.update(q(z).indices)
    assert usage.codes_used == 1
    restarted = restart_dead_codes(q, z, usage.counts, generator=torch.Generator().manual_seed(1))
    assert restarted == 7
    usage.reset()
    for _ in range(3):
        usage.update(q(z).indices)
    assert usage.codes_used >= 6
    assert (q.codebook.mean(0) - 20.0).abs().max() < 1.0
    assert restart_dead_codes(q, z, torch.ones(8, dtype=torch.long), min_count=1) == 0
    assert restart_dead_codes(q, z, torch.tensor([3, 1, 2, 0, 5, 1, 1, 9]), min_count=2) == 4


# --- the distributed paths, in a real one-process gloo group ---


@pytest.fixture
def gloo_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_usage_all_reduce_sums_over_ranks(gloo_group, monkeypatch):
    """The other rank is simulated by adding its histogram in the reduction."""
    other_rank = torch.tensor([0, 5, 0, 1])
    real_all_reduce = dist.all_reduce

    def all_reduce(tensor, *args, **kwargs):
        assert tensor.device.type == "cpu"  # gloo reduces on the CPU
        real_all_reduce(tensor, *args, **kwargs)
        tensor += other_rank

    monkeypatch.setattr(codebook.dist, "all_reduce", all_reduce)
    usage = CodebookUsage(4)
    usage.update(torch.tensor([0, 1, 1]))
    usage.all_reduce()
    assert usage.counts.tolist() == [1, 7, 0, 1] and usage.counts.dtype == torch.int64
    monkeypatch.undo()
    usage.all_reduce()  # world size 1: unchanged
    assert usage.counts.tolist() == [1, 7, 0, 1]


def test_rank0_draws_are_broadcast(gloo_group, monkeypatch):
    broadcasts = []
    real_broadcast = dist.broadcast

    def broadcast(tensor, src, *args, **kwargs):
        broadcasts.append((tuple(tensor.shape), src))
        real_broadcast(tensor, src, *args, **kwargs)
        tensor.fill_(7.0)  # what rank 0 sent

    monkeypatch.setattr(codebook.dist, "broadcast", broadcast)
    q = make_codebook("vq", 4, 2)
    init_codebook_from_data(q, torch.randn(1, 2, 3, 3), method="samples", generator=torch.Generator().manual_seed(0))
    assert broadcasts == [((4, 2), 0)] and torch.equal(q.codebook, torch.full((4, 2), 7.0))
    assert restart_dead_codes(q, torch.randn(1, 2, 3, 3), torch.tensor([1, 0, 1, 0])) == 2
    assert broadcasts[-1] == ((2, 2), 0)


def test_outside_a_group_nothing_is_reduced(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a collective ran outside a process group")

    monkeypatch.setattr(codebook.dist, "all_reduce", fail)
    monkeypatch.setattr(codebook.dist, "broadcast", fail)
    usage = CodebookUsage(2)
    usage.all_reduce()
    q = make_codebook("vq", 2, 2)
    init_codebook_from_data(q, torch.randn(1, 2, 2, 2), method="samples")
    assert nearest_code(q.codebook, q.codebook).tolist() == [0, 1]


class _MovedCounts:
    """Stands for the histogram tensor: records where all_reduce moves it."""

    device = torch.device("cpu")

    def __init__(self):
        self.moves = []

    def to(self, device):
        self.moves.append(device)
        return self


@pytest.mark.parametrize("backend, device", [("nccl", "cuda"), ("gloo", "cpu")])
def test_usage_all_reduce_reduces_on_the_backends_device(backend, device, monkeypatch):
    """nccl reduces on the GPU, gloo on the CPU; the histogram then returns to its own device."""
    reduced = []
    monkeypatch.setattr(codebook, "is_distributed", lambda: True)
    monkeypatch.setattr(codebook.dist, "get_backend", lambda: backend)
    monkeypatch.setattr(codebook.dist, "all_reduce", reduced.append)
    usage = CodebookUsage(2)
    usage.counts = counts = _MovedCounts()
    usage.all_reduce()
    assert counts.moves == [device, torch.device("cpu")] and reduced == [counts] and usage.counts is counts


def test_metrics_names_must_match_the_levels():
    """One name per quantizer: a missing or extra name is an error, not a silently dropped level; one named
    level gets no separate mean."""
    levels = [CodebookUsage(4), CodebookUsage(4)]
    for names in (["_0"], ["_0", "_1", "_2"]):
        with pytest.raises(ValueError):
            codebook_metrics(levels, names)
    one = CodebookUsage(4)
    one.update(torch.tensor([0, 1]))
    assert codebook_metrics([one], ["_top"]) == pytest.approx(
        {"codebook_usage_top": 0.5, "codes_used_top": 2, "perplexity_top": 2.0})
