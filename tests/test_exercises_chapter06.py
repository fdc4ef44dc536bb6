"""Chapter 6's self-check (exercise 6.1, one EMA codebook step): passes the chapter's solution and agrees with
EMAVectorQuantizer's own update, and says what differs for the usual mistakes (no Laplace smoothing, the decay on
the wrong side, the codebook transposed to (K, dim))."""

import pytest
import torch
import torch.nn.functional as F

from vqlearn.exercises import ExerciseMismatch, check_ema_update
from vqlearn.exercises.chapter06 import ema_inputs, ema_step
from vqlearn.quantize import EMAVectorQuantizer


def my_ema_update(cluster_size, embed_avg, z_flat, indices, decay, eps):  # the chapter's solution
    num_codes = cluster_size.shape[0]
    onehot = F.one_hot(indices, num_codes).float()  # (N, K)
    cluster_size = decay * cluster_size + (1 - decay) * onehot.sum(0)
    embed_avg = decay * embed_avg + (1 - decay) * z_flat.t() @ onehot
    total = cluster_size.sum()
    smoothed = (cluster_size + eps) / (total + num_codes * eps) * total
    return cluster_size, embed_avg, embed_avg / smoothed


def test_reference_is_the_quantizers_update_and_leaves_inputs_and_rng_alone():
    inputs = ema_inputs(torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    cluster_size, embed_avg, embed = ema_step(**inputs)
    assert torch.equal(torch.rand(1), expected_next), "the reference must not consume the global RNG"
    assert all(torch.equal(inputs[k], v) for k, v in before.items())
    quantizer = EMAVectorQuantizer(8, 3, decay=inputs["decay"], eps=inputs["eps"])
    quantizer.cluster_size.copy_(inputs["cluster_size"])
    quantizer.embed_avg.copy_(inputs["embed_avg"])
    quantizer.ema_update(inputs["z_flat"], inputs["indices"])
    assert torch.equal(embed, quantizer.embed) and torch.equal(cluster_size, quantizer.cluster_size)


def test_solution_passes(capsys):
    comparisons = check_ema_update(my_ema_update)
    assert [c.name for c in comparisons] == ["output[0]", "output[1]", "output[2]"] and all(c.ok for c in comparisons)
    out = capsys.readouterr().out
    assert 'Exercise 6.1 (chapter "VQ-VAE-2: a hierarchy of codes")' in out
    assert "✓ my_ema_update agrees with vqlearn.exercises.chapter06.ema_step" in out


def test_no_laplace_smoothing_differs_in_the_codes_only():
    def unsmoothed(cluster_size, embed_avg, z_flat, indices, decay, eps):
        cluster_size, embed_avg, _ = my_ema_update(cluster_size, embed_avg, z_flat, indices, decay, eps)
        return cluster_size, embed_avg, embed_avg / cluster_size

    with pytest.raises(ExerciseMismatch) as error:
        check_ema_update(unsmoothed)
    message = str(error.value)
    assert "output[0]              exact" in message or "output[0]              close" in message
    assert "output[2]              DIFFERS    max |diff|" in message
    assert "✗ unsmoothed differs from vqlearn.exercises.chapter06.ema_step in 1 value(s)" in message


def test_decay_on_the_new_statistics_differs():
    def swapped(cluster_size, embed_avg, z_flat, indices, decay, eps):
        return my_ema_update(cluster_size, embed_avg, z_flat, indices, 1 - decay, eps)

    with pytest.raises(ExerciseMismatch) as error:
        check_ema_update(swapped)
    message = str(error.value)
    assert "output[0]              DIFFERS" in message and "output[1]              DIFFERS" in message


def test_codebook_as_k_by_dim_reports_both_shapes():
    def transposed(cluster_size, embed_avg, z_flat, indices, decay, eps):
        cluster_size, embed_avg, embed = my_ema_update(cluster_size, embed_avg, z_flat, indices, decay, eps)
        return cluster_size, embed_avg, embed.t()

    with pytest.raises(ExerciseMismatch) as error:
        check_ema_update(transposed)
    assert "output[2]              SHAPE      got shape (8, 3), expected (3, 8)" in str(error.value)
