"""Chapter 11's self-checks: exercise 11.1 (the vanilla discriminator loss, written stably) and exercise 11.2 (the
hinge loss with a margin m). Each passes the chapter's solution and says what differs for the usual mistakes (the
logarithm of a sigmoid, the seed's formula without the 1/2, real and fake swapped; a margin ignored, a sign)."""

import pytest
import torch
import torch.nn.functional as F

from vqlearn.exercises import ExerciseMismatch, check_hinge_d_loss_margin, check_vanilla_d_loss
from vqlearn.exercises.chapter11 import confident_logits, hinge_d_loss_margin_reference
from vqlearn.losses import hinge_d_loss


def my_vanilla_d_loss(logits_real, logits_fake):  # the chapter's solution
    return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())


def hinge_d_loss_margin(logits_real, logits_fake, m):  # the chapter's solution
    return 0.5 * (F.relu(m - logits_real).mean() + F.relu(m + logits_fake).mean())


def test_vanilla_solution_passes(capsys):
    comparisons = check_vanilla_d_loss(my_vanilla_d_loss)
    assert [c.name for c in comparisons] == ["output", "grad logits_real", "grad logits_fake"]
    assert all(c.ok for c in comparisons)
    out = capsys.readouterr().out
    assert "Exercise 11.1 (chapter \"Hinge and vanilla GAN losses\"): 3 random trials" in out
    assert "✓ my_vanilla_d_loss agrees with vqlearn.losses.vanilla_d_loss" in out


def test_the_inputs_are_confident_enough_to_break_the_naive_formula():
    logits = confident_logits(torch.Generator().manual_seed(0))
    assert (torch.sigmoid(logits["logits_fake"]) == 1).any()  # 1 - sigmoid rounds to 0: log gives -inf


def test_log_of_sigmoid_overflows():
    def naive(logits_real, logits_fake):
        return 0.5 * (-torch.log(torch.sigmoid(logits_real)).mean() - torch.log(1 - torch.sigmoid(logits_fake)).mean())

    with pytest.raises(ExerciseMismatch) as error:
        check_vanilla_d_loss(naive)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff| inf at () (got inf" in message
    assert "grad logits_fake       DIFFERS    max |diff| nan" in message


def test_seed_formula_without_the_half_differs():
    def seed_formula(logits_real, logits_fake):
        return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()

    with pytest.raises(ExerciseMismatch) as error:
        check_vanilla_d_loss(seed_formula)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "grad logits_real       DIFFERS" in message
    assert "✗ seed_formula differs from vqlearn.losses.vanilla_d_loss in 3 value(s)" in message


def test_real_and_fake_swapped_differs():
    def swapped(logits_real, logits_fake):
        return 0.5 * (F.softplus(logits_real).mean() + F.softplus(-logits_fake).mean())

    with pytest.raises(ExerciseMismatch) as error:
        check_vanilla_d_loss(swapped)
    assert "grad logits_real       DIFFERS" in str(error.value)


def test_margin_solution_passes_and_the_reference_is_the_hinge_loss_at_m_1(capsys):
    check_hinge_d_loss_margin(hinge_d_loss_margin)
    assert "✓ hinge_d_loss_margin agrees with vqlearn.exercises.chapter11.hinge_d_loss_margin_reference" in \
        capsys.readouterr().out
    real, fake = 3 * torch.randn(4, 1, 3, 3), 3 * torch.randn(4, 1, 3, 3)
    assert torch.allclose(hinge_d_loss_margin_reference(real, fake, 1.0), hinge_d_loss(real, fake))
    assert torch.allclose(hinge_d_loss_margin_reference(real, fake, 0.3), hinge_d_loss_margin(real, fake, 0.3))


def test_margin_ignored_differs():
    def margin_one(logits_real, logits_fake, m):
        return hinge_d_loss(logits_real, logits_fake)

    with pytest.raises(ExerciseMismatch) as error:
        check_hinge_d_loss_margin(margin_one)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff|" in message and "(trial 0)" in message


def test_wrong_sign_on_the_fake_logits_differs():
    def wrong_sign(logits_real, logits_fake, m):
        return 0.5 * (F.relu(m - logits_real).mean() + F.relu(m - logits_fake).mean())

    with pytest.raises(ExerciseMismatch) as error:
        check_hinge_d_loss_margin(wrong_sign)
    message = str(error.value)
    assert "grad logits_real       exact" in message and "grad logits_fake       DIFFERS" in message
