"""Quantizers: nearest-code search, the straight-through estimator, the two loss
placements, EMA updates and remapping (codebook tools: test_codebook.py)."""

import copy

import numpy as np
import pytest
import torch

from vqlearn.quantize import (
    EMAVectorQuantizer,
    GumbelQuantizer,
    VectorQuantizer,
    batch_perplexity,
    make_codebook,
    nearest_code,
    straight_through,
    vq_loss,
)


def test_nearest_code_matches_cdist_and_brute_force():
    torch.manual_seed(0)
    z, codebook = torch.randn(300, 8), torch.randn(50, 8)
    brute = ((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1).argmin(1)
    assert torch.equal(nearest_code(z, codebook), brute)
    assert torch.equal(torch.cdist(z, codebook).argmin(1), brute)


def test_nearest_code_runs_in_float32_under_autocast():
    torch.manual_seed(0)
    z, codebook = torch.randn(500, 16), torch.randn(64, 16)
    expected = nearest_code(z, codebook)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = nearest_code(z, codebook)
    assert torch.equal(got, expected)


def test_straight_through_forward_is_zq_and_backward_is_identity():
    z = torch.randn(4, 3, requires_grad=True)
    z_q = torch.randn(4, 3)
    out = straight_through(z, z_q)
    assert torch.allclose(out, z_q)
    upstream = torch.randn(4, 3)
    out.backward(upstream)
    assert torch.equal(z.grad, upstream)


def test_quantizer_passes_upstream_gradient_unchanged_to_encoder_output():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, beta=0.25)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q = vq(z).z_q
    upstream = torch.randn_like(z_q)
    (grad,) = torch.autograd.grad(z_q, z, upstream)
    assert torch.allclose(grad, upstream)


@pytest.mark.parametrize("legacy", [False, True])
def test_vq_loss_value_and_gradients_match_hand_computation(legacy):
    beta = 0.25
    z = torch.tensor([[1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    e = torch.tensor([[0.5, 1.0], [1.0, -1.0]], requires_grad=True)  # the chosen codes
    loss = vq_loss(z, e, beta=beta, legacy=legacy)
    # (z - e)^2 = [[0.25, 1], [1, 0]] -> mean 2.25 / 4; both placements give (1 + beta) * that
    assert loss.item() == pytest.approx((1 + beta) * 2.25 / 4)
    loss.backward()
    diff = (z - e).detach()  # d/dz mean((z-e)^2) = 2 (z - e) / 4
    encoder_weight, codebook_weight = (1.0, beta) if legacy else (beta, 1.0)
    assert torch.allclose(z.grad, encoder_weight * 2 * diff / 4)
    assert torch.allclose(e.grad, -codebook_weight * 2 * diff / 4)


def test_quantizer_legacy_flag_changes_gradients_not_value():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3)
    results = {}
    for legacy in (False, True):
        torch.manual_seed(1)
        vq = VectorQuantizer(8, 4, beta=0.25, legacy=legacy)
        zz = z.clone().requires_grad_(True)
        out = vq(zz)
        out.loss.backward()
        results[legacy] = (out.loss.item(), zz.grad.clone(), vq.embedding.weight.grad.clone())
    assert results[False][0] == pytest.approx(results[True][0])
    assert torch.allclose(results[True][1], 4 * results[False][1])  # encoder: 1 vs beta
    assert torch.allclose(results[False][2], 4 * results[True][2])  # codebook: 1 vs beta


def test_vector_quantizer_shapes_and_index_layouts():
    vq = VectorQuantizer(32, 8)
    out = vq(torch.randn(2, 8, 5, 6))
    assert out.z_q.shape == (2, 8, 5, 6)
    assert out.indices.shape == (2, 5, 6) and out.indices.dtype == torch.long
    flat = VectorQuantizer(32, 8, sane_index_shape=False)(torch.randn(2, 8, 5, 6))
    assert flat.indices.shape == (60,)
    assert 1.0 <= out.perplexity.item() <= 32


def test_lookup_and_get_codebook_entry_reproduce_forward():
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 8).eval()
    z = torch.randn(2, 8, 4, 4)
    out = vq(z)
    assert torch.allclose(vq.lookup(out.indices), out.z_q, atol=1e-6)
    entry = vq.get_codebook_entry(out.indices.reshape(-1), shape=(2, 4, 4, 8))
    assert torch.allclose(entry, out.z_q, atol=1e-6)


def test_lookup_rejects_out_of_range_codes():
    vq = VectorQuantizer(16, 4)
    with pytest.raises(ValueError, match=r"codes.*\[0, 15\]"):
        vq.lookup(torch.full((1, 2, 2), 16))
    with pytest.raises(ValueError, match="integer"):
        vq.lookup(torch.zeros(1, 2, 2))


def test_remap_round_trip_and_unknown_index_modes(tmp_path):
    torch.manual_seed(0)
    used = np.array([3, 7, 11, 12])
    path = tmp_path / "used.npy"
    np.save(path, used)
    for unknown, expected_codes in (("extra", 5), (0, 4), ("random", 4)):
        vq = VectorQuantizer(16, 4, remap=str(path), unknown_index=unknown)
        assert vq.num_indices == expected_codes and vq.num_codes == 16
        full = torch.tensor([3, 7, 11, 12, 5])
        compact = vq.remap_to_used(full)
        assert compact[:4].tolist() == [0, 1, 2, 3]
        if unknown == "extra":
            assert compact[4] == 4
        elif unknown == 0:
            assert compact[4] == 0
        else:
            assert 0 <= compact[4] < 4
        assert vq.unmap_to_all(compact[:4]).tolist() == used.tolist()
    vq = VectorQuantizer(16, 4, remap=str(path), unknown_index="extra")
    assert vq.unmap_to_all(torch.tensor([4])).tolist() == [3]  # extra -> used[0]
    out = vq(torch.randn(1, 4, 3, 3))
    assert out.indices.max() < 5
    assert vq.lookup(out.indices).shape == (1, 4, 3, 3)


def test_l2_normalized_codes_and_low_dimensional_lookup():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 32, l2_normalize=True, lookup_dim=4)
    z = torch.randn(2, 32, 3, 3)
    out = vq(z)
    assert out.z_q.shape == (2, 32, 3, 3)
    assert torch.allclose(vq.codebook.norm(dim=1), torch.ones(16))
    assert vq.embedding.weight.shape == (16, 4)
    assert torch.allclose(vq.lookup(out.indices), out.z_q, atol=1e-5)
    out.loss.backward()
    assert vq.project_in.weight.grad is not None and vq.embedding.weight.grad is not None


def test_ema_update_equals_closed_form():
    torch.manual_seed(0)
    dim, k, decay, eps = 3, 4, 0.9, 1e-5
    q = EMAVectorQuantizer(k, dim, decay=decay, eps=eps)
    before_size, before_avg = q.cluster_size.clone(), q.embed_avg.clone()
    z = torch.randn(1, dim, 2, 5)
    flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
    assign = nearest_code(flat, q.embed.t().clone())
    out = q(z)
    assert torch.equal(out.indices.reshape(-1), assign)
    counts = torch.stack([(assign == j).sum() for j in range(k)]).float()
    sums = torch.stack([flat[assign == j].sum(0) for j in range(k)], dim=1)  # (dim, k)
    size = decay * before_size + (1 - decay) * counts
    avg = decay * before_avg + (1 - decay) * sums
    n = size.sum()
    smoothed = (size + eps) / (n + k * eps) * n
    assert torch.allclose(q.cluster_size, size)
    assert torch.allclose(q.embed_avg, avg)
    assert torch.allclose(q.embed, avg / smoothed, atol=1e-6)


def test_ema_codebook_does_not_move_in_eval_or_under_no_grad():
    q = EMAVectorQuantizer(8, 4)
    embed = q.embed.clone()
    with torch.no_grad():
        q(torch.randn(2, 4, 3, 3))
    q.eval()
    q(torch.randn(2, 4, 3, 3))
    assert torch.equal(q.embed, embed)


def test_ema_state_stays_float32_under_autocast():
    q = EMAVectorQuantizer(8, 4)
    z = torch.randn(2, 4, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z.bfloat16())
    assert q.embed.dtype == q.embed_avg.dtype == q.cluster_size.dtype == torch.float32
    assert out.z_q.dtype == torch.float32


def test_ema_loss_is_commitment_only():
    torch.manual_seed(0)
    q = EMAVectorQuantizer(8, 4, beta=0.25).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(z)
    expected = 0.25 * ((z - q.lookup(out.indices)) ** 2).mean()
    assert torch.allclose(out.loss, expected)


def test_compiled_ema_quantizer_trains_like_eager():
    """torch.compile must not change the EMA update (torch 2.14 miscompiled its mul_/add_ form)."""
    torch.manual_seed(0)
    eager = EMAVectorQuantizer(16, 4).train()
    compiled_copy = copy.deepcopy(eager)
    compiled = torch.compile(compiled_copy)
    for _ in range(3):
        z = torch.randn(2, 4, 3, 3)
        a, b = eager(z), compiled(z)
        assert torch.equal(a.indices, b.indices)
        assert torch.allclose(a.z_q, b.z_q, atol=1e-6) and torch.allclose(a.loss, b.loss, atol=1e-6)
    for name in ("cluster_size", "embed_avg", "embed"):
        assert torch.allclose(getattr(eager, name), getattr(compiled_copy, name), atol=1e-5), name


def test_batch_perplexity_is_one_for_one_code_and_k_for_all_codes_equally():
    assert batch_perplexity(torch.zeros(10, dtype=torch.long), 4).item() == pytest.approx(1.0)
    assert batch_perplexity(torch.arange(4).repeat(10), 4).item() == pytest.approx(4.0)


def test_make_codebook_rejects_unknown_kind():
    with pytest.raises(ValueError, match="quantizer must be one of"):
        make_codebook("gumbel", 8, 4)


def test_ema_codes_stay_bounded_after_the_first_update():
    """Unused codes must not blow up on the first step (their count starts at 1, not 0)."""
    torch.manual_seed(0)
    q = EMAVectorQuantizer(64, 8)
    q(torch.randn(1, 8, 2, 2))  # 4 vectors: at most 4 of 64 codes are chosen
    assert q.codebook.norm(dim=1).max() < 10


def test_both_quantizers_take_the_codebook_size_first():
    for q in (VectorQuantizer(16, 4), EMAVectorQuantizer(16, 4), make_codebook("vq", 16, 4),
              make_codebook("ema", 16, 4)):
        assert (q.num_codes, q.num_indices, q.dim, tuple(q.codebook.shape)) == (16, 16, 4, (16, 4)), type(q)
    assert EMAVectorQuantizer(16, 4).embed.shape == (4, 16)  # rosinality's (dim, num_codes) buffer layout


# --- GumbelQuantizer: compared with formulas computed here, independently of the module ---


def _gumbel_quantizer(seed=0, **options):
    torch.manual_seed(seed)
    return GumbelQuantizer(num_codes=6, dim=3, in_channels=4, **options)


def test_gumbel_hard_forward_gives_exact_codebook_rows_and_shapes():
    gq = _gumbel_quantizer().train()
    z = torch.randn(2, 4, 3, 5)
    z_q, loss, indices, perplexity = gq(z, temperature=0.7)
    assert z_q.shape == (2, 3, 3, 5) and indices.shape == (2, 3, 5) and indices.dtype == torch.int64
    expected = gq.embed.weight[indices].permute(0, 3, 1, 2)  # row e_k at every position, bit for bit
    assert torch.equal(z_q, expected)
    assert loss.shape == () and perplexity.shape == ()


def test_gumbel_sampled_index_is_argmax_of_logits_plus_the_same_gumbel_noise():
    gq = _gumbel_quantizer().train()
    z = torch.randn(2, 4, 3, 3)
    torch.manual_seed(123)
    indices = gq(z).indices
    logits = torch.einsum("kc,bchw->bkhw", gq.proj.weight[:, :, 0, 0], z) + gq.proj.bias[None, :, None, None]
    torch.manual_seed(123)  # F.gumbel_softmax draws -log(Exponential(1)) noise from the global generator
    gumbels = -torch.empty(logits.shape).exponential_().log()  # (B, K, h, w), contiguous like the conv's output
    assert torch.equal(indices, (logits + gumbels).argmax(1))


def test_gumbel_kl_term_equals_sum_q_log_qk():
    gq = _gumbel_quantizer(kl_weight=0.3).train()
    z = torch.randn(2, 4, 3, 3)
    logits = torch.einsum("kc,bchw->bkhw", gq.proj.weight[:, :, 0, 0], z) + gq.proj.bias[None, :, None, None]
    q = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    kl = (q * torch.log(q * 6)).sum(1).mean()  # KL(q || uniform over 6 codes), averaged over positions
    assert gq(z).loss.item() == pytest.approx(0.3 * kl.item(), rel=1e-5)
    assert kl.item() > 0
    # the KL is zero for uniform logits
    assert gq.kl_to_uniform(torch.zeros(1, 6, 2, 2)).abs().item() < 1e-6


def test_gumbel_gradients_flow_to_logits_and_codebook_and_match_taming_hard_sample():
    gq = _gumbel_quantizer(kl_weight=0.0).train()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    upstream = torch.randn(2, 3, 3, 3)
    torch.manual_seed(7)
    z_q = gq(z, temperature=0.5).z_q
    grads = torch.autograd.grad(z_q, [z, gq.proj.weight, gq.embed.weight], upstream)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # encoder side and codebook both learn
    # taming's spelling: einsum of F.gumbel_softmax(hard=True), same noise
    z2 = z.detach().clone().requires_grad_(True)
    logits = gq.proj(z2)
    torch.manual_seed(7)
    one_hot = torch.nn.functional.gumbel_softmax(logits, tau=0.5, hard=True, dim=1)
    reference = torch.einsum("bkhw,kd->bdhw", one_hot, gq.embed.weight)
    assert torch.allclose(z_q, reference, atol=1e-6)
    ref_grads = torch.autograd.grad(reference, [z2, gq.proj.weight, gq.embed.weight], upstream)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-5)


def test_gumbel_soft_mode_mixes_codes_with_softmax_weights():
    gq = _gumbel_quantizer(straight_through=False).train()
    z = torch.randn(1, 4, 2, 2)
    torch.manual_seed(3)
    z_q = gq(z, temperature=2.0).z_q
    logits = gq.proj(z)
    torch.manual_seed(3)
    gumbels = -torch.empty(logits.shape).exponential_().log()
    y = torch.softmax((logits + gumbels) / 2.0, dim=1)
    assert torch.allclose(z_q, torch.einsum("bkhw,kd->bdhw", y, gq.embed.weight), atol=1e-6)


def test_gumbel_eval_is_deterministic_argmax_unless_sample_in_eval():
    gq = _gumbel_quantizer().eval()
    z = torch.randn(2, 4, 3, 3)
    first, second = gq(z), gq(z)
    assert torch.equal(first.indices, second.indices)
    assert torch.equal(first.indices, gq.proj(z).argmax(1))
    assert torch.equal(gq.lookup(first.indices), first.z_q)
    sampling = _gumbel_quantizer(sample_in_eval=True).eval()
    torch.manual_seed(0)
    draws = torch.stack([sampling(z, temperature=5.0).indices for _ in range(5)])
    assert not all(torch.equal(draws[0], d) for d in draws[1:])  # noise kept, as taming does
