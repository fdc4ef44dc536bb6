"""Chapter 5's self-check (exercise 5.1, PSNR per image): passes the chapter's solution and vqlearn's metric, and
says what differs for the usual mistakes (no rescaling from [-1, 1], one PSNR for the whole batch, no clamping,
the natural log)."""

import math

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_psnr
from vqlearn.exercises.chapter05 import image_psnr, psnr_inputs
from vqlearn.metrics import psnr


def my_psnr(images, reconstructions):  # the chapter's solution
    a = ((images + 1) / 2).clamp(0, 1)
    b = ((reconstructions + 1) / 2).clamp(0, 1)
    mse = ((a - b) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def test_reference_is_the_evaluation_psnr():
    inputs = psnr_inputs(torch.Generator().manual_seed(0))
    a = (inputs["images"] * 0.5 + 0.5).clamp(0, 1)
    b = (inputs["reconstructions"] * 0.5 + 0.5).clamp(0, 1)
    assert torch.allclose(image_psnr(**inputs), psnr(a, b))
    assert (inputs["reconstructions"].abs() > 1).any(), "the inputs overshoot, so clamping is tested"


def test_solution_passes(capsys):
    comparisons = check_psnr(my_psnr)
    assert [c.name for c in comparisons] == ["output"] and comparisons[0].ok
    out = capsys.readouterr().out
    assert 'Exercise 5.1 (chapter "Training a VQ-VAE")' in out
    assert "✓ my_psnr agrees with vqlearn.exercises.chapter05.image_psnr" in out


def test_no_rescaling_is_six_db_low():
    def in_minus_one_to_one(images, reconstructions):
        mse = ((images - reconstructions.clamp(-1, 1)) ** 2).flatten(1).mean(1)
        return 10 * torch.log10(1 / mse)

    with pytest.raises(ExerciseMismatch) as error:
        check_psnr(in_minus_one_to_one)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff| 6.02" in message  # 20 log10(2) dB
    assert "4 of 4 entries outside" in message
    assert abs(20 * math.log10(2) - 6.0206) < 1e-4


def test_one_psnr_for_the_batch_reports_both_shapes():
    def whole_batch(images, reconstructions):
        mse = ((images - reconstructions).clamp(-2, 2) ** 2).mean() / 4
        return 10 * torch.log10(1 / mse)

    with pytest.raises(ExerciseMismatch) as error:
        check_psnr(whole_batch)
    assert "output                 SHAPE      got shape (), expected (4,)" in str(error.value)


def test_no_clamp_differs_only_where_the_reconstruction_overshoots():
    def no_clamp(images, reconstructions):
        mse = (((images - reconstructions) / 2) ** 2).flatten(1).mean(1)
        return 10 * torch.log10(1 / mse)

    with pytest.raises(ExerciseMismatch) as error:
        check_psnr(no_clamp)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "✗ no_clamp differs from" in message


def test_natural_log_differs():
    def natural_log(images, reconstructions):
        a, b = ((images + 1) / 2).clamp(0, 1), ((reconstructions + 1) / 2).clamp(0, 1)
        return 10 * torch.log(1 / ((a - b) ** 2).flatten(1).mean(1))

    with pytest.raises(ExerciseMismatch) as error:
        check_psnr(natural_log)
    assert "output                 DIFFERS" in str(error.value)
