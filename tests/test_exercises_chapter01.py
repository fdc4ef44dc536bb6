"""Chapter 1's self-check (exercise 1.2, bytes -> a model's input) passes vqlearn's function and the chapter's
solution, and names what is wrong in the usual mistakes: reshape for permute, a lost grey channel, dividing
by 256, stopping at [0, 1], integer output."""

import ast

import numpy as np
import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_uint8_to_tensor
from vqlearn.images import uint8_to_tensor


def solution(array):  # the chapter's solution
    pixels = torch.from_numpy(np.array(array, dtype=np.uint8))
    if pixels.ndim == 2:
        pixels = pixels[None]
    else:
        pixels = pixels.permute(2, 0, 1)
    return pixels.float() / 127.5 - 1


@pytest.mark.parametrize("fn", [uint8_to_tensor, solution])
def test_vqlearn_and_the_solution_pass(fn, capsys):
    comparisons = check_uint8_to_tensor(fn)
    assert all(c.ok for c in comparisons)
    assert "Exercise 1.2 (chapter \"Images as tensors\"): 4 random trials" in capsys.readouterr().out


def failure(fn):
    with pytest.raises(ExerciseMismatch) as error:
        check_uint8_to_tensor(fn)
    return str(error.value)


def test_reshape_instead_of_permute_keeps_the_shape_but_scrambles_the_pixels():
    def mine(array):
        pixels = torch.from_numpy(array)
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        return pixels.reshape(channels, array.shape[0], array.shape[1]).float() / 127.5 - 1

    message = failure(mine)
    assert "output                 DIFFERS    max |diff|" in message and "(trial 0)" in message
    assert "got shape" not in message


def test_grey_images_without_a_channel_axis_report_both_shapes():
    def mine(array):
        pixels = torch.from_numpy(array)
        if pixels.ndim == 3:
            pixels = pixels.permute(2, 0, 1)
        return pixels.float() / 127.5 - 1

    message = failure(mine)
    assert "output                 SHAPE      got shape (" in message and "(trial 1)" in message
    shapes = message.split("got shape ")[1].split(" (trial")[0]
    got, expected = shapes.split(", expected ")
    got, expected = ast.literal_eval(got), ast.literal_eval(expected)
    assert len(got) == 2 and len(expected) == 3 and expected[0] == 1 and expected[1:] == got


def test_dividing_by_256_is_off_by_at_most_one_byte_level():
    def mine(array):
        return solution(array) * 127.5 / 128 - 1 / 256  # p / 128 - 1

    message = failure(mine)
    assert "output                 DIFFERS    max |diff| 0.0078" in message


def test_stopping_at_zero_one_and_integer_output():
    assert "DIFFERS" in failure(lambda array: (solution(array) + 1) / 2)
    message = failure(lambda array: torch.from_numpy(np.moveaxis(np.atleast_3d(array), 2, 0).copy()))
    assert "output                 DTYPE      got torch.uint8, expected torch.float32" in message
