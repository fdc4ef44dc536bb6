"""Chapter 15's self-check (exercise 15.1, causal self-attention with the mask written out): it passes a correct
function and reports the usual mistakes with the right message."""

import math

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_causal_self_attention


def attention(x, attn, mask="causal", scale="head", split_heads="right"):
    B, T, C = x.shape
    n_head = attn.n_head
    q, k, v = attn.qkv(x).split(C, dim=2)
    if split_heads == "right":
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    else:  # reinterprets the memory instead of moving the head axis: mixes positions and heads
        q, k, v = (t.reshape(B, n_head, T, C // n_head) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(C // n_head if scale == "head" else C)
    hidden = {"causal": torch.ones(T, T, dtype=torch.bool).triu(1),
              "none": torch.zeros(T, T, dtype=torch.bool),
              "transposed": torch.ones(T, T, dtype=torch.bool).tril(-1)}[mask]
    y = scores.masked_fill(hidden, float("-inf")).softmax(dim=-1) @ v
    y = y.transpose(1, 2).reshape(B, T, C) if split_heads == "right" else y.reshape(B, T, C)
    return attn.proj(y)


def causal_self_attention(x, attn):
    return attention(x, attn)


def test_solution_passes_and_leaves_the_global_generator_alone(capsys):
    state = torch.random.get_rng_state()
    comparisons = check_causal_self_attention(causal_self_attention)
    assert torch.equal(state, torch.random.get_rng_state())
    assert [c.name for c in comparisons] == ["output", "grad x"] and all(c.ok for c in comparisons)
    out = capsys.readouterr().out
    assert 'Exercise 15.1 (chapter "Generating images from tokens"): 4 random trials' in out
    assert "✓ causal_self_attention agrees with vqlearn.prior.CausalSelfAttention.forward" in out


@pytest.mark.parametrize("mistake", [dict(mask="none"), dict(mask="transposed"), dict(scale="model width"),
                                     dict(split_heads="wrong")])
def test_usual_mistakes_differ_in_output_and_gradient(mistake):
    def mine(x, attn):
        return attention(x, attn, **mistake)

    with pytest.raises(ExerciseMismatch) as error:
        check_causal_self_attention(mine)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "grad x                 DIFFERS" in message
    assert "✗ mine differs from vqlearn.prior.CausalSelfAttention.forward in 2 value(s)" in message


def test_detached_input_reports_the_missing_gradient():
    def detached(x, attn):
        return attention(x.detach(), attn)

    with pytest.raises(ExerciseMismatch) as error:
        check_causal_self_attention(detached)
    assert "grad x                 MISSING    got None (trial 0): no gradient reached this input" in str(error.value)
