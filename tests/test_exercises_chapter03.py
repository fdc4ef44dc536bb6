"""Chapter 3's self-check (exercise 3.1, a straight-through estimator written as a torch.autograd.Function)
passes vqlearn's straight_through and the chapter's solution, and names what is wrong in the usual mistakes:
a gradient sent to z_q, a flipped gradient, the value of z instead of z_q, no gradient at all."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_straight_through
from vqlearn.quantize import straight_through


class StraightThrough(torch.autograd.Function):  # the chapter's solution
    @staticmethod
    def forward(ctx, z, z_q):
        return z_q.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


def solution(z, z_q):
    return StraightThrough.apply(z, z_q)


def function_with_backward(backward):
    """A straight-through Function whose backward is ``backward(grad_output) -> (grad z, grad z_q)``."""

    class Mine(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, z_q):
            return z_q.clone()

        @staticmethod
        def backward(ctx, grad_output):
            return backward(grad_output)

    return lambda z, z_q: Mine.apply(z, z_q)


@pytest.mark.parametrize("fn", [straight_through, solution])
def test_vqlearn_and_the_solution_pass(fn, capsys):
    assert all(c.ok for c in check_straight_through(fn))
    assert "Exercise 3.1 (chapter \"Vector quantization and the straight-through estimator\")" in capsys.readouterr().out


def failure(fn):
    with pytest.raises(ExerciseMismatch) as error:
        check_straight_through(fn)
    return str(error.value)


def test_a_gradient_sent_to_z_q_too():
    message = failure(function_with_backward(lambda g: (g, g)))
    assert "grad z                 exact" in message
    assert "grad z_q               UNEXPECTED got a Tensor, expected None (trial 0): vqlearn's function sends no" in message


def test_a_flipped_gradient():
    message = failure(function_with_backward(lambda g: (-g, None)))
    assert "output                 exact" in message or "output                 close" in message
    assert "grad z                 DIFFERS    max |diff|" in message and "in 1 value(s)" in message


def test_the_value_of_z_instead_of_z_q():
    message = failure(lambda z, z_q: z + (z - z_q).detach() * 0)
    assert "output                 DIFFERS" in message and "grad z                 exact" in message


def test_no_gradient_reaches_z():
    message = failure(lambda z, z_q: z_q.detach().clone())
    assert "grad z                 MISSING    got None (trial 0): no gradient reached this input" in message
