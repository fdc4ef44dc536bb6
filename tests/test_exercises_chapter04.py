"""Chapter 4's self-checks (exercise 4.1, the codebook and commitment loss; exercise 4.2, perplexity): they pass
the chapter's solutions and vqlearn's own functions, and say what differs for the usual mistakes (beta on the
codebook term, a missing .detach(), a sum instead of a mean; entropy without the exp, 0 log 0 = nan)."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_perplexity, check_vq_loss
from vqlearn.quantize import batch_perplexity, vq_loss


def my_vq_loss(z, z_q, beta):  # the chapter's solution
    codebook_term = torch.mean((z.detach() - z_q) ** 2)
    commitment_term = torch.mean((z - z_q.detach()) ** 2)
    return codebook_term + beta * commitment_term


def my_perplexity(indices, num_codes):  # the chapter's solution
    counts = torch.bincount(indices.flatten(), minlength=num_codes).double()
    p = counts[counts > 0] / counts.sum()
    return torch.exp(-(p * torch.log(p)).sum())


def test_solutions_and_vqlearn_pass(capsys):
    comparisons = check_vq_loss(my_vq_loss)
    assert [c.name for c in comparisons] == ["output", "grad z", "grad z_q"] and all(c.ok for c in comparisons)
    out = capsys.readouterr().out
    assert 'Exercise 4.1 (chapter "Codebook and commitment losses")' in out
    assert "✓ my_vq_loss agrees with vqlearn.quantize.vq_loss" in out
    check_vq_loss(vq_loss)
    assert all(c.ok for c in check_perplexity(my_perplexity))
    assert "✓ my_perplexity agrees with vqlearn.quantize.batch_perplexity" in capsys.readouterr().out
    check_perplexity(batch_perplexity)


def test_beta_on_the_codebook_term_has_the_right_value_and_wrong_gradients():
    def legacy(z, z_q, beta):  # taming's legacy placement
        return torch.mean((z - z_q.detach()) ** 2) + beta * torch.mean((z.detach() - z_q) ** 2)

    with pytest.raises(ExerciseMismatch) as error:
        check_vq_loss(legacy)
    message = str(error.value)
    assert "output                 close" in message or "output                 exact" in message
    assert "grad z                 DIFFERS    max |diff|" in message
    assert "grad z_q               DIFFERS    max |diff|" in message
    assert "✗ legacy differs from vqlearn.quantize.vq_loss in 2 value(s)" in message


def test_missing_detach_sends_both_terms_to_both_inputs():
    def no_detach(z, z_q, beta):
        return torch.mean((z - z_q) ** 2) + beta * torch.mean((z - z_q) ** 2)

    with pytest.raises(ExerciseMismatch) as error:
        check_vq_loss(no_detach)
    message = str(error.value)
    assert "grad z                 DIFFERS" in message and "grad z_q               DIFFERS" in message
    assert "output                 DIFFERS" not in message  # the value is right: only autograd can tell


def test_sum_instead_of_mean_differs_in_value():
    def summed(z, z_q, beta):
        return ((z.detach() - z_q) ** 2).sum() + beta * ((z - z_q.detach()) ** 2).sum()

    with pytest.raises(ExerciseMismatch) as error:
        check_vq_loss(summed)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff|" in message and "1 of 1 entries outside" in message


def test_entropy_without_exp_differs():
    def entropy(indices, num_codes):
        p = torch.bincount(indices.flatten(), minlength=num_codes).double() / indices.numel()
        p = p[p > 0]
        return -(p * torch.log(p)).sum()

    with pytest.raises(ExerciseMismatch) as error:
        check_perplexity(entropy)
    message = str(error.value)
    assert 'Exercise 4.2 (chapter "Codebook and commitment losses")' in message
    assert "output                 DIFFERS    max |diff|" in message
    assert "✗ entropy differs from vqlearn.quantize.batch_perplexity in 1 value(s)" in message


def test_unused_codes_give_nan():
    def nan_for_unused(indices, num_codes):  # 0 * log 0 is nan in floating point
        p = torch.bincount(indices.flatten(), minlength=num_codes).double() / indices.numel()
        return torch.exp(-(p * torch.log(p)).sum())

    with pytest.raises(ExerciseMismatch) as error:
        check_perplexity(nan_for_unused)
    assert "output                 DIFFERS    max |diff| nan" in str(error.value)
