"""Chapter 7's self-check (exercise 7.1, GroupNorm by hand): passes the chapter's solution, and says what differs
for the usual mistakes (unbiased variance, strided instead of consecutive channel groups, eps outside the root)."""

import pytest
import torch
import torch.nn.functional as F

from vqlearn.exercises import ExerciseMismatch, check_group_norm
from vqlearn.exercises.chapter07 import group_norm_inputs, group_norm_reference


def my_group_norm(x, num_groups, gamma, beta, eps=1e-5):  # the chapter's solution
    n, c, h, w = x.shape
    groups = x.reshape(n, num_groups, -1)
    normalised = (groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, unbiased=False, keepdim=True) + eps)
    return normalised.reshape(n, c, h, w) * gamma[None, :, None, None] + beta[None, :, None, None]


def test_reference_is_torch_group_norm():
    inputs = group_norm_inputs(torch.Generator().manual_seed(3))
    expected = F.group_norm(inputs["x"], inputs["num_groups"], inputs["gamma"], inputs["beta"], eps=1e-5)
    assert torch.allclose(group_norm_reference(**inputs), expected, atol=1e-5)


def test_solution_passes(capsys):
    comparisons = check_group_norm(my_group_norm)
    assert [c.name for c in comparisons] == ["output", "grad x", "grad gamma", "grad beta"]
    assert all(c.ok for c in comparisons)
    assert "✓ my_group_norm agrees with vqlearn.exercises.chapter07.group_norm_reference" in capsys.readouterr().out


def test_torch_layer_passes():
    check_group_norm(lambda x, num_groups, gamma, beta: F.group_norm(x, num_groups, gamma, beta, eps=1e-5))


def test_unbiased_variance_differs_in_values():
    def unbiased(x, num_groups, gamma, beta, eps=1e-5):
        n, c, h, w = x.shape
        groups = x.reshape(n, num_groups, -1)
        normalised = (groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, keepdim=True) + eps)
        return normalised.reshape(n, c, h, w) * gamma[None, :, None, None] + beta[None, :, None, None]

    with pytest.raises(ExerciseMismatch) as error:
        check_group_norm(unbiased)
    message = str(error.value)
    assert "Exercise 7.1 (chapter \"GroupNorm\")" in message
    assert "output                 DIFFERS    max |diff|" in message
    assert "✗ unbiased differs from vqlearn.exercises.chapter07.group_norm_reference" in message


def test_strided_groups_differ():
    def strided(x, num_groups, gamma, beta, eps=1e-5):  # channels c, c + G, c + 2G ... in one group
        n, c, h, w = x.shape
        groups = x.reshape(n, c // num_groups, num_groups, h * w).transpose(1, 2).reshape(n, num_groups, -1)
        normalised = (groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, unbiased=False, keepdim=True) + eps)
        normalised = normalised.reshape(n, num_groups, c // num_groups, h * w).transpose(1, 2).reshape(n, c, h, w)
        return normalised * gamma[None, :, None, None] + beta[None, :, None, None]

    with pytest.raises(ExerciseMismatch) as error:
        check_group_norm(strided)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "grad x                 DIFFERS" in message
    assert "grad gamma             DIFFERS" in message
    assert "grad beta              exact" in message  # the shift does not depend on the grouping


def test_affine_per_group_is_a_shape_error():
    def per_group_affine(x, num_groups, gamma, beta, eps=1e-5):
        n, c, h, w = x.shape
        groups = x.reshape(n, num_groups, -1)
        normalised = (groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, unbiased=False, keepdim=True) + eps)
        return normalised * gamma[None, :num_groups, None] + beta[None, :num_groups, None]  # forgot to reshape back

    with pytest.raises(ExerciseMismatch) as error:
        check_group_norm(per_group_affine)
    assert "output                 SHAPE      got shape (2, 1, 72), expected (2, 6, 3, 4) (trial 0)" in str(error.value)
