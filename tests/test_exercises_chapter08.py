"""Chapter 8's self-check (exercise 8.1, multi-head spatial attention): passes the chapter's solution, and says what
differs for the usual mistakes (the full-width scale, interleaved heads, softmax over the queries)."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from vqlearn.blocks import attention_sdpa
from vqlearn.exercises import ExerciseMismatch, check_multihead_attention
from vqlearn.exercises.chapter08 import multihead_attention_reference


def my_multihead_attention(q, k, v, heads):  # the chapter's solution
    b, c, h, w = q.shape
    q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=heads) for t in (q, k, v))
    weights = (q @ k.transpose(-1, -2) * (c // heads) ** -0.5).softmax(dim=-1)  # (B, heads, HW, HW)
    return rearrange(weights @ v, "b n (h w) d -> b (n d) h w", h=h, w=w)


def test_one_head_is_vqlearns_attention():
    q, k, v = (torch.randn(2, 8, 3, 4) for _ in range(3))
    assert torch.allclose(multihead_attention_reference(q, k, v, 1), attention_sdpa(q, k, v), atol=1e-6)


def test_solution_passes(capsys):
    comparisons = check_multihead_attention(my_multihead_attention)
    assert all(c.ok for c in comparisons) and len(comparisons) == 4
    assert "✓ my_multihead_attention agrees with" in capsys.readouterr().out


def test_sdpa_with_heads_passes():
    def with_sdpa(q, k, v, heads):
        b, c, h, w = q.shape
        q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=heads) for t in (q, k, v))
        return rearrange(F.scaled_dot_product_attention(q, k, v), "b n (h w) d -> b (n d) h w", h=h)

    check_multihead_attention(with_sdpa)


def test_full_width_scale_differs():
    def full_scale(q, k, v, heads):
        b, c, h, w = q.shape
        q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=heads) for t in (q, k, v))
        weights = (q @ k.transpose(-1, -2) * c**-0.5).softmax(dim=-1)  # 1/sqrt(C) instead of 1/sqrt(C/heads)
        return rearrange(weights @ v, "b n (h w) d -> b (n d) h w", h=h, w=w)

    with pytest.raises(ExerciseMismatch) as error:
        check_multihead_attention(full_scale)
    message = str(error.value)
    assert "Exercise 8.1 (chapter \"Attention in the bottleneck\")" in message
    assert "output                 DIFFERS    max |diff|" in message and "grad q                 DIFFERS" in message


def test_interleaved_heads_differ():
    def interleaved(q, k, v, heads):
        b, c, h, w = q.shape
        q, k, v = (rearrange(t, "b (d n) h w -> b n (h w) d", n=heads) for t in (q, k, v))
        weights = (q @ k.transpose(-1, -2) * (c // heads) ** -0.5).softmax(dim=-1)
        return rearrange(weights @ v, "b n (h w) d -> b (d n) h w", h=h, w=w)

    with pytest.raises(ExerciseMismatch) as error:
        check_multihead_attention(interleaved)
    assert "output                 DIFFERS" in str(error.value)


def test_softmax_over_queries_differs():
    def over_queries(q, k, v, heads):
        b, c, h, w = q.shape
        q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=heads) for t in (q, k, v))
        weights = (q @ k.transpose(-1, -2) * (c // heads) ** -0.5).softmax(dim=-2)
        return rearrange(weights @ v, "b n (h w) d -> b (n d) h w", h=h, w=w)

    with pytest.raises(ExerciseMismatch) as error:
        check_multihead_attention(over_queries)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "grad v                 DIFFERS" in message


def test_heads_left_in_the_shape():
    def no_merge(q, k, v, heads):
        b, c, h, w = q.shape
        q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=heads) for t in (q, k, v))
        return (q @ k.transpose(-1, -2) * (c // heads) ** -0.5).softmax(dim=-1) @ v

    with pytest.raises(ExerciseMismatch) as error:
        check_multihead_attention(no_merge)
    assert "expected (2, 8, 3, 4)" in str(error.value) and "output                 SHAPE" in str(error.value)
