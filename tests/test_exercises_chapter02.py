"""Chapter 2's self-check (exercise 2.2, the KL of a soft posterior to the uniform prior) passes vqlearn's KL and
the chapter's solution, and names what is wrong in the usual mistakes: softmax over the wrong axis, the KL the
other way round, a forgotten log K, a sum over latents instead of a mean."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, kl_divergence

from vqlearn.exercises import ExerciseMismatch, check_kl_to_uniform
from vqlearn.exercises.chapter02 import kl_to_uniform


def solution(logits):  # the chapter's solution
    log_q = F.log_softmax(logits, dim=1)
    return (log_q.exp() * (log_q + math.log(logits.shape[1]))).sum(dim=1).mean()


def with_distributions(logits):  # the same with torch.distributions, as the chapter computes the one-hot KL
    K = logits.shape[1]
    posterior = Categorical(logits=logits.movedim(1, -1))
    return kl_divergence(posterior, Categorical(probs=torch.full((K,), 1.0 / K))).mean()


@pytest.mark.parametrize("fn", [kl_to_uniform, solution, with_distributions])
def test_vqlearn_and_the_solutions_pass(fn, capsys):
    assert all(c.ok for c in check_kl_to_uniform(fn))
    out = capsys.readouterr().out
    assert "Exercise 2.2 (chapter \"The VQ-VAE\"): 3 random trials" in out
    assert "agrees with vqlearn.quantize.GumbelQuantizer.kl_to_uniform" in out


def failure(fn):
    with pytest.raises(ExerciseMismatch) as error:
        check_kl_to_uniform(fn)
    return str(error.value)


def test_softmax_over_the_last_axis_differs_in_value_and_gradient():
    def mine(logits):
        log_q = F.log_softmax(logits, dim=-1)  # over w, not over the K codes
        return (log_q.exp() * (log_q + math.log(logits.shape[1]))).sum(dim=1).mean()

    message = failure(mine)
    assert "output                 DIFFERS    max |diff|" in message
    assert "grad logits            DIFFERS    max |diff|" in message


def test_the_kl_the_other_way_round():
    def mine(logits):
        K = logits.shape[1]
        log_q = F.log_softmax(logits, dim=1)
        return ((1 / K) * (-math.log(K) - log_q)).sum(dim=1).mean()  # KL(uniform || q)

    assert "output                 DIFFERS" in failure(mine)


def test_a_forgotten_log_k_shifts_the_value_but_not_the_gradient():
    def mine(logits):
        log_q = F.log_softmax(logits, dim=1)
        return (log_q.exp() * log_q).sum(dim=1).mean()  # negative entropy: KL - log K

    message = failure(mine)
    assert "output                 DIFFERS    max |diff|" in message
    assert "grad logits            close" in message or "grad logits            exact" in message
    assert "in 1 value(s)" in message


def test_a_sum_over_latents_instead_of_a_mean():
    def mine(logits):
        log_q = F.log_softmax(logits, dim=1)
        return (log_q.exp() * (log_q + math.log(logits.shape[1]))).sum()

    message = failure(mine)
    assert "output                 DIFFERS" in message and "grad logits            DIFFERS" in message
