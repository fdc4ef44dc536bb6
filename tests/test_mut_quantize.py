"""vqlearn.quantize: boundaries, bad values, options whose effect was unchecked, restarts then EMA steps
(mutation testing, issue 16). Values are computed here, independently of the module."""

import numpy as np
import pytest
import torch

from vqlearn.quantize import (
    CODEBOOK_KINDS,
    EMAVectorQuantizer,
    GumbelQuantizer,
    Quantized,
    VectorQuantizer,
    batch_perplexity,
    check_indices,
    make_codebook,
    nearest_code,
    vq_loss,
)


# --- check_indices: the boundaries of [0, num_codes) and the dtypes ---


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.uint8])
def test_check_indices_accepts_every_integer_dtype_and_both_ends(dtype):
    check_indices(torch.tensor([0, 4], dtype=dtype), 5)
    check_indices(torch.tensor([], dtype=dtype), 5)  # nothing to check


@pytest.mark.parametrize("values, low, high", [([-1, 0], -1, 0), ([0, 5], 0, 5), ([2, -3, 7], -3, 7)])
def test_check_indices_rejects_each_side_and_names_the_range(values, low, high):
    with pytest.raises(ValueError) as error:
        check_indices(torch.tensor(values), 5, name="my_codes")
    assert str(error.value) == (f"`my_codes` must lie in [0, 4] for a codebook of 5 codes, "
                                f"got values in [{low}, {high}]")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.int8])
def test_check_indices_rejects_other_dtypes(dtype):
    with pytest.raises(ValueError) as error:
        check_indices(torch.zeros(3, dtype=dtype), 5)
    assert str(error.value) == f"`codes` must be an integer tensor of code indices, got dtype {dtype}"


@pytest.mark.parametrize("make", [lambda: VectorQuantizer(5, 2), lambda: EMAVectorQuantizer(5, 2),
                                  lambda: GumbelQuantizer(5, 2)])
def test_lookup_of_a_negative_code_is_an_error_not_the_last_code(make):
    q = make()
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        q.lookup(torch.tensor([[[-1]]]))
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        q.lookup(torch.tensor([[[5]]]))
    assert q.lookup(torch.tensor([[[4]]])).shape == (1, 2, 1, 1)


# --- nearest code, perplexity, the loss ---


def test_nearest_code_picks_the_nearest_not_the_farthest_and_ignores_dtype():
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = torch.tensor([[9.0, 1.0], [1.0, 8.0], [0.4, -0.2], [6.0, 6.1]], dtype=torch.float64)
    assert nearest_code(z, codebook).tolist() == [1, 2, 0, 2]
    assert nearest_code(z.half(), codebook.double()).dtype == torch.int64


def test_batch_perplexity_by_hand():
    indices = torch.tensor([[0, 0], [0, 3]])  # p = (3/4, 0, 0, 1/4) over 6 codes
    p = torch.tensor([0.75, 0.25])
    assert batch_perplexity(indices, 6).item() == pytest.approx(torch.exp(-(p * p.log()).sum()).item(), rel=1e-6)
    assert batch_perplexity(torch.tensor([5]), 6).item() == pytest.approx(1.0)


@pytest.mark.parametrize("beta", [0.25, 0.6])
def test_vector_quantizer_forward_by_hand(beta):
    q = VectorQuantizer(3, 2, beta=beta)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    z = torch.tensor([[0.9, -1.8], [1.2, 0.1]]).reshape(1, 2, 1, 2)  # positions (0.9, 1.2) and (-1.8, 0.1)
    out = q(z)
    assert isinstance(out, Quantized)
    assert out.indices.tolist() == [[[1, 2]]]
    chosen = torch.tensor([[1.0, -2.0], [1.0, 0.0]]).reshape(1, 2, 1, 2)
    assert torch.allclose(out.z_q, chosen)
    assert out.loss.item() == pytest.approx((1 + beta) * ((z - chosen) ** 2).mean().item(), rel=1e-6)
    assert out.perplexity.item() == pytest.approx(2.0)


def test_vq_loss_defaults_to_the_papers_form():
    z = torch.tensor([[1.0, 2.0]], requires_grad=True)
    e = torch.tensor([[0.0, 1.0]])
    (grad,) = torch.autograd.grad(vq_loss(z, e, 0.25), z)
    assert torch.allclose(grad, 0.25 * 2 * (z - e).detach() / 2)  # beta on the commitment term


def test_l2_normalize_measures_the_loss_between_unit_vectors():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 3, beta=0.5, l2_normalize=True)
    z = 3.0 * torch.randn(2, 3, 2, 2)
    out = q(z)
    unit = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, 3), dim=1)
    codes = torch.nn.functional.normalize(q.embedding.weight, dim=1)[out.indices.flatten()]
    assert out.loss.item() == pytest.approx(1.5 * ((unit - codes) ** 2).mean().item(), rel=1e-5)
    assert torch.allclose(q.to_lookup_space(z), unit, atol=1e-6)


def test_vector_quantizer_starts_uniform_in_plus_minus_one_over_k():
    torch.manual_seed(0)
    weight = VectorQuantizer(50, 40).embedding.weight
    assert weight.abs().max() <= 1 / 50 and weight.abs().max() > 0.9 / 50 and weight.min() < -0.9 / 50


def test_l2_normalize_compares_directions():
    q = VectorQuantizer(2, 2, l2_normalize=True)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 0.1]]))
    z = torch.tensor([0.1, 0.3]).reshape(1, 2, 1, 1)  # nearer (10, 0) in distance, pointing at (0, 0.1)
    out = q(z)
    assert out.indices.item() == 1
    assert torch.allclose(out.z_q.flatten(), torch.tensor([0.0, 1.0]))  # the normalised code
    unnormalised = VectorQuantizer(2, 2)
    with torch.no_grad():
        unnormalised.embedding.weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 0.1]]))
    assert unnormalised(z).indices.item() == 1 and unnormalised.codebook[0, 0] == 10.0
    far = torch.tensor([8.0, 0.1]).reshape(1, 2, 1, 1)
    assert q(far).indices.item() == 0


def test_lookup_dim_projects_in_and_out():
    torch.manual_seed(0)
    q = VectorQuantizer(4, 6, lookup_dim=2)
    assert q.lookup_dim == 2 and q.project_in.weight.shape == (2, 6, 1, 1) and q.project_out.weight.shape == (6, 2, 1, 1)
    z = torch.randn(1, 6, 2, 2)
    out = q(z)
    low = q.project_in(z).permute(0, 2, 3, 1).reshape(-1, 2)
    assert out.indices.flatten().tolist() == nearest_code(low, q.embedding.weight).tolist()
    codes = q.embedding.weight[out.indices.flatten()].reshape(1, 2, 2, 2).permute(0, 3, 1, 2)
    assert torch.allclose(out.z_q, q.project_out(codes), atol=1e-6)
    assert not hasattr(VectorQuantizer(4, 6), "project_in")


def test_flat_indices_and_get_codebook_entry_without_shape(tmp_path):
    torch.manual_seed(0)
    q = VectorQuantizer(8, 3, sane_index_shape=False)
    out = q(torch.randn(2, 3, 2, 2))
    assert out.indices.shape == (8,)
    assert torch.equal(q.get_codebook_entry(out.indices, None), q.codebook[out.indices])
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        q.get_codebook_entry(torch.tensor([8]), None)
    path = tmp_path / "used.npy"
    np.save(path, np.array([2, 5]))
    remapped = VectorQuantizer(8, 3, remap=str(path), unknown_index="extra")
    assert torch.equal(remapped.get_codebook_entry(torch.tensor([1, 0, 2]), None),
                       remapped.codebook[torch.tensor([5, 2, 2])])  # the extra index reads used[0]
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        remapped.get_codebook_entry(torch.tensor([3]), None)


# --- remap: the compact indices ---


@pytest.fixture
def used_file(tmp_path):
    path = tmp_path / "used.npy"
    np.save(path, np.array([6, 1, 4]))
    return str(path)


def test_remap_reports_compact_indices_in_forward(used_file):
    q = VectorQuantizer(8, 2, remap=used_file, unknown_index="extra")
    with torch.no_grad():
        q.embedding.weight.copy_(torch.arange(16.0).reshape(8, 2))
    z = q.embedding.weight[torch.tensor([4, 6, 3, 1])].t().reshape(1, 2, 2, 2)  # codes 4, 6, 3 (unused), 1
    out = q(z)
    assert out.indices.tolist() == [[[2, 0], [3, 1]]]  # used = [6, 1, 4]; 3 -> the extra index 3
    assert out.perplexity.item() == pytest.approx(4.0)  # perplexity of the full codebook's histogram
    assert torch.allclose(q.lookup(out.indices[:, :1]), z[:, :, :1])
    assert q.num_indices == 4 and q.unknown_index == 3 and q.used.tolist() == [6, 1, 4]


def test_remap_random_unknowns_stay_in_range(used_file):
    q = VectorQuantizer(8, 2, remap=used_file)  # taming's default: unknown codes become a random used index
    assert q.num_indices == 3 and q.unknown_index == "random" and q.remap == used_file
    torch.manual_seed(0)
    compact = q.remap_to_used(torch.tensor([0, 2, 3, 5, 7] * 20))
    assert compact.min() >= 0 and compact.max() <= 2 and len(compact.unique()) == 3
    assert q.remap_to_used(torch.tensor([6, 1, 4])).tolist() == [0, 1, 2]
    fixed = VectorQuantizer(8, 2, remap=used_file, unknown_index=2)
    assert fixed.remap_to_used(torch.tensor([0, 4, 7])).tolist() == [2, 2, 2]
    assert fixed.unmap_to_all(torch.tensor([0, 1, 2, 3])).tolist() == [6, 1, 4, 6]


def test_remap_rejects_bad_unknown_index_and_bad_files(used_file, tmp_path):
    with pytest.raises(ValueError) as error:
        VectorQuantizer(8, 2, remap=used_file, unknown_index="nearest")
    assert str(error.value) == "unknown_index must be 'random', 'extra' or an int, got 'nearest'"
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([1, 9]))
    with pytest.raises(ValueError, match=r"`remap file .*bad\.npy` must lie in \[0, 7\]"):
        VectorQuantizer(8, 2, remap=str(bad))


# --- EMA codebook ---


def test_ema_quantizer_stores_its_options_and_starts_as_chosen_once():
    torch.manual_seed(0)
    q = EMAVectorQuantizer(5, 3, decay=0.8, eps=1e-3, beta=0.4)
    assert (q.num_codes, q.dim, q.decay, q.eps, q.beta, q.num_indices) == (5, 3, 0.8, 1e-3, 0.4, 5)
    assert torch.equal(q.cluster_size, torch.ones(5)) and torch.equal(q.embed_avg, q.embed)
    assert q.embed.std() > 0.5  # standard normal codes
    assert torch.equal(q.codebook, q.embed.t())


def test_ema_forward_by_hand_in_eval():
    q = EMAVectorQuantizer(3, 2, beta=0.5).eval()
    with torch.no_grad():
        q.embed.copy_(torch.tensor([[0.0, 1.0, -2.0], [0.0, 1.0, 0.0]]))
    z = torch.tensor([[0.9, -1.8], [1.2, 0.1]]).reshape(1, 2, 1, 2)
    out = q(z)
    chosen = torch.tensor([[1.0, -2.0], [1.0, 0.0]]).reshape(1, 2, 1, 2)
    assert out.indices.tolist() == [[[1, 2]]] and torch.allclose(out.z_q, chosen)
    assert out.loss.item() == pytest.approx(0.5 * ((z - chosen) ** 2).mean().item(), rel=1e-6)
    assert out.perplexity.item() == pytest.approx(2.0)
    z = z.clone().requires_grad_(True)
    upstream = torch.randn(1, 2, 1, 2)
    (grad,) = torch.autograd.grad(q(z).z_q, z, upstream)
    assert torch.equal(grad, upstream)


def _ema_step_by_hand(size, avg, flat, assign, decay, eps, k):
    counts = torch.stack([(assign == j).sum() for j in range(k)]).float()
    sums = torch.stack([flat[assign == j].sum(0) for j in range(k)], dim=1)
    size = decay * size + (1 - decay) * counts
    avg = decay * avg + (1 - decay) * sums
    n = size.sum()
    return size, avg, avg / ((size + eps) / (n + k * eps) * n)


def test_restart_then_ema_steps_follow_the_closed_form():
    """A restarted code counts as chosen once by its new vector; the next EMA steps start from there."""
    torch.manual_seed(0)
    k, dim, decay, eps = 4, 3, 0.7, 1e-2
    q = EMAVectorQuantizer(k, dim, decay=decay, eps=eps)
    for _ in range(2):
        q(torch.randn(1, dim, 2, 3))
    vectors = torch.tensor([[5.0, 5.0, 5.0], [-5.0, 0.0, 5.0]])
    q.replace_codes(torch.tensor([1, 3]), vectors)
    assert torch.equal(q.codebook[1], vectors[0]) and torch.equal(q.codebook[3], vectors[1])
    assert q.cluster_size[1] == 1.0 and q.cluster_size[3] == 1.0
    assert torch.equal(q.embed_avg[:, 1], vectors[0]) and torch.equal(q.embed_avg[:, 3], vectors[1])
    size, avg = q.cluster_size.clone(), q.embed_avg.clone()
    for step in range(3):
        z = torch.randn(1, dim, 2, 3) + (4.0 if step == 0 else 0.0)
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
        assign = nearest_code(flat, q.embed.t().clone())
        q(z)
        size, avg, embed = _ema_step_by_hand(size, avg, flat, assign, decay, eps, k)
        assert torch.allclose(q.cluster_size, size) and torch.allclose(q.embed_avg, avg)
        assert torch.allclose(q.embed, embed, atol=1e-6)


def test_ema_update_uses_its_decay_and_eps():
    """An unused code's count decays by `decay` each step and its row divides by the smoothed count."""
    q = EMAVectorQuantizer(2, 1, decay=0.5, eps=0.1)
    with torch.no_grad():
        q.embed.copy_(torch.tensor([[0.0, 10.0]]))
        q.embed_avg.copy_(q.embed)
    q(torch.zeros(1, 1, 1, 4))  # four vectors at 0: all code 0
    assert q.cluster_size.tolist() == pytest.approx([0.5 + 0.5 * 4, 0.5])
    n = 3.0
    assert q.embed[0, 1].item() == pytest.approx(0.5 * 10.0 / ((0.5 + 0.1) / (n + 2 * 0.1) * n), rel=1e-6)


# --- Gumbel ---


def test_gumbel_quantizer_options_and_defaults():
    gq = GumbelQuantizer(6, 3)
    assert (gq.num_codes, gq.dim, gq.num_indices, gq.temperature, gq.kl_weight) == (6, 3, 6, 1.0, 5e-4)
    assert gq.straight_through and not gq.sample_in_eval
    assert gq.proj.in_channels == 3 and gq.proj.out_channels == 6 and gq.proj.kernel_size == (1, 1)
    assert GumbelQuantizer(6, 3, in_channels=5).proj.in_channels == 5
    assert gq.codebook is gq.embed.weight and gq.codebook.shape == (6, 3)


def test_gumbel_temperature_attribute_is_used_when_none_is_passed():
    torch.manual_seed(0)
    gq = GumbelQuantizer(6, 3, temperature=0.3, straight_through=False).train()
    z = torch.randn(1, 3, 2, 2)
    torch.manual_seed(5)
    default = gq(z).z_q
    torch.manual_seed(5)
    assert torch.allclose(default, gq(z, temperature=0.3).z_q)
    torch.manual_seed(5)
    assert not torch.allclose(default, gq(z, temperature=3.0).z_q)


def test_gumbel_eval_is_hard_even_in_soft_mode_when_sampling():
    gq = GumbelQuantizer(6, 3, straight_through=False, sample_in_eval=True).eval()
    z = torch.randn(1, 3, 2, 2)
    out = gq(z)
    assert torch.equal(out.z_q, gq.embed.weight[out.indices].permute(0, 3, 1, 2))
    assert out.perplexity.item() >= 1.0


# --- make_codebook ---


def test_make_codebook_passes_beta_and_options():
    vq = make_codebook("vq", 8, 4, beta=0.6, legacy=True, l2_normalize=True)
    assert isinstance(vq, VectorQuantizer) and (vq.beta, vq.legacy, vq.l2_normalize) == (0.6, True, True)
    ema = make_codebook("ema", 8, 4, beta=0.6, decay=0.9)
    assert isinstance(ema, EMAVectorQuantizer) and (ema.beta, ema.decay) == (0.6, 0.9)
    assert make_codebook("vq", 8, 4).beta == make_codebook("ema", 8, 4).beta == 0.25
    with pytest.raises(ValueError) as error:
        make_codebook("gumbel", 8, 4)
    assert str(error.value) == f"quantizer must be one of {CODEBOOK_KINDS}, got 'gumbel'"
