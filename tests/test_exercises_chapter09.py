"""Chapter 9's self-check (exercise 9.2, taming's Downsample): passes the chapter's solution, and says what differs
for the usual mistakes (symmetric padding, the pad at the top-left, a missing pad)."""

import pytest
import torch
import torch.nn.functional as F

from vqlearn.blocks import Downsample
from vqlearn.exercises import ExerciseMismatch, check_downsample
from vqlearn.exercises.chapter09 import downsample_reference


def my_downsample(x, weight, bias):  # the chapter's solution
    return F.conv2d(F.pad(x, (0, 1, 0, 1)), weight, bias, stride=2)


def test_reference_is_the_layer():
    torch.manual_seed(0)
    layer = Downsample(3)
    x = torch.randn(2, 3, 8, 6)
    assert torch.equal(downsample_reference(x, layer.conv.weight, layer.conv.bias), layer(x))


def test_solution_passes(capsys):
    comparisons = check_downsample(my_downsample)
    assert [c.name for c in comparisons] == ["output", "grad x", "grad weight", "grad bias"]
    assert all(c.ok for c in comparisons)
    assert "✓ my_downsample agrees with vqlearn.exercises.chapter09.downsample_reference" in capsys.readouterr().out


def test_symmetric_padding_differs_with_same_shape():
    def symmetric(x, weight, bias):
        return F.conv2d(x, weight, bias, stride=2, padding=1)

    with pytest.raises(ExerciseMismatch) as error:
        check_downsample(symmetric)
    message = str(error.value)
    assert "Exercise 9.2 (chapter \"The VQ-GAN encoder and decoder\")" in message
    assert "output                 DIFFERS    max |diff|" in message and "grad weight            DIFFERS" in message


def test_pad_at_top_left_differs():
    def top_left(x, weight, bias):
        return F.conv2d(F.pad(x, (1, 0, 1, 0)), weight, bias, stride=2)

    with pytest.raises(ExerciseMismatch) as error:
        check_downsample(top_left)
    assert "output                 DIFFERS" in str(error.value)


def test_missing_pad_is_a_shape_error():
    def no_pad(x, weight, bias):
        return F.conv2d(x, weight, bias, stride=2)

    with pytest.raises(ExerciseMismatch) as error:
        check_downsample(no_pad)
    assert "got shape (2, 3, 3, 2), expected (2, 3, 4, 3)" in str(error.value)
