"""Chapter 13's self-check (exercise 13.1, eq. 7 over a list of parameters): it passes a correct function and
reports the usual mistakes with the right message."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_adaptive_weight_over
from vqlearn.losses import calculate_adaptive_weight


def norm_over(loss, params):
    return torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(loss, params, retain_graph=True)))


def adaptive_weight_over(nll_loss, g_loss, params, disc_weight=1.0):  # the chapter's solution
    lam = norm_over(nll_loss, params) / (norm_over(g_loss, params) + 1e-4)
    return torch.clamp(lam, 0.0, 1e4).detach() * disc_weight


def test_solution_passes(capsys):
    comparisons = check_adaptive_weight_over(adaptive_weight_over)
    assert [c.status for c in comparisons] in (["exact"], ["close"])
    out = capsys.readouterr().out
    assert 'Exercise 13.1 (chapter "The adaptive weight λ"): 4 random trials' in out
    assert "✓ adaptive_weight_over agrees with vqlearn.losses.calculate_adaptive_weight" in out


def test_vqlearn_function_on_one_tensor_passes_only_where_the_list_has_one_tensor():
    def last_layer_only(nll_loss, g_loss, params, disc_weight=1.0):  # ignores all but the last tensor
        return calculate_adaptive_weight(nll_loss, g_loss, params[-1], disc_weight)

    with pytest.raises(ExerciseMismatch) as error:
        check_adaptive_weight_over(last_layer_only)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff|" in message and "(trial 0)" in message
    assert "✗ last_layer_only differs from vqlearn.losses.calculate_adaptive_weight in 1 value(s)" in message


def test_sum_of_per_tensor_norms_differs():
    def sum_of_norms(nll_loss, g_loss, params, disc_weight=1.0):
        rec = sum(g.norm() for g in torch.autograd.grad(nll_loss, params, retain_graph=True))
        gan = sum(g.norm() for g in torch.autograd.grad(g_loss, params, retain_graph=True))
        return torch.clamp(rec / (gan + 1e-4), 0.0, 1e4).detach() * disc_weight

    with pytest.raises(ExerciseMismatch) as error:
        check_adaptive_weight_over(sum_of_norms)
    assert "output                 DIFFERS" in str(error.value)


def test_disc_weight_inside_the_clamp_is_caught_by_the_silent_gan_trial():
    def clamp_after_disc_weight(nll_loss, g_loss, params, disc_weight=1.0):
        lam = norm_over(nll_loss, params) / (norm_over(g_loss, params) + 1e-4)
        return torch.clamp(disc_weight * lam, 0.0, 1e4).detach()

    with pytest.raises(ExerciseMismatch) as error:
        check_adaptive_weight_over(clamp_after_disc_weight)
    message = str(error.value)
    assert "(got 10000, expected 8000)" in message and "(trial 2)" in message


def test_papers_delta_differs():
    def paper_delta(nll_loss, g_loss, params, disc_weight=1.0):
        lam = norm_over(nll_loss, params) / (norm_over(g_loss, params) + 1e-6)
        return torch.clamp(lam, 0.0, 1e4).detach() * disc_weight

    with pytest.raises(ExerciseMismatch) as error:
        check_adaptive_weight_over(paper_delta)
    assert "output                 DIFFERS" in str(error.value)


def test_missing_retain_graph_raises_autograds_error():
    def no_retain(nll_loss, g_loss, params, disc_weight=1.0):
        rec = torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(nll_loss, params)))
        gan = torch.sqrt(sum((g ** 2).sum() for g in torch.autograd.grad(g_loss, params)))
        return torch.clamp(rec / (gan + 1e-4), 0.0, 1e4).detach() * disc_weight

    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        check_adaptive_weight_over(no_retain)
