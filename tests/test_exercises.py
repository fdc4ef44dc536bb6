"""The generic exercise checker (vqlearn.exercises.core) says exactly what differs: tested with a correct
straight-through estimator and with the usual mistakes (a wrong sign, a missing .detach(), a cut gradient,
transposed output, a wrong constant)."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_function, compare
from vqlearn.quantize import straight_through


def ste_inputs(generator):
    return {"z": torch.randn(2, 3, 4, 4, generator=generator), "z_q": torch.randn(2, 3, 4, 4, generator=generator)}


def run_check(mine, **options):
    return check_function("3.2", "Vector quantization and the straight-through estimator", mine, straight_through,
                          ste_inputs, grad_wrt=("z", "z_q"), **options)


def test_correct_function_passes_and_reports_exact(capsys):
    def my_ste(z, z_q):
        return z + (z_q - z).detach()

    comparisons = run_check(my_ste)
    assert [c.status for c in comparisons] == ["exact", "exact", "exact"]
    out = capsys.readouterr().out
    assert "Exercise 3.2" in out and "✓ my_ste agrees with vqlearn.quantize.straight_through" in out


def test_rounding_differences_are_close_with_the_tolerance(capsys):
    def my_ste(z, z_q):
        return z_q + 1e-7 * z.detach() + 0 * z  # value off by 1e-7, gradient to z now 0

    with pytest.raises(ExerciseMismatch) as error:
        run_check(my_ste)
    message = str(error.value)
    assert "output                 close      max |diff|" in message and "atol 1e-05, rtol 0.0001" in message
    assert "grad z                 DIFFERS" in message


def test_missing_detach_names_both_gradients():
    def my_ste(z, z_q):
        return z + (z_q - z)

    with pytest.raises(ExerciseMismatch) as error:
        run_check(my_ste)
    message = str(error.value)
    assert "output                 close" in message or "output                 exact" in message
    assert "grad z                 DIFFERS    max |diff|" in message and "(got 0, expected" in message
    assert "grad z_q               UNEXPECTED got a Tensor, expected None (trial 0): vqlearn's function sends no" in message
    assert "differs from vqlearn.quantize.straight_through in 2 value(s)" in message


def test_wrong_sign_reports_largest_difference_and_position():
    def my_ste(z, z_q):
        return -(z + (z_q - z).detach())

    with pytest.raises(ExerciseMismatch) as error:
        run_check(my_ste, trials=1)
    message = str(error.value)
    assert "output                 DIFFERS" in message
    assert "entries outside atol 1e-05, rtol 0.0001, the first at (0, 0, 0, 0)" in message
    assert "(trial 0)" in message


def test_cut_gradient_is_missing_with_a_hint():
    def my_ste(z, z_q):
        return z_q * 1.0

    with pytest.raises(ExerciseMismatch) as error:
        run_check(my_ste)
    assert "grad z                 MISSING    got None (trial 0): no gradient reached this input" in str(error.value)


def test_transposed_output_reports_both_shapes():
    def my_ste(z, z_q):
        return (z + (z_q - z).detach()).transpose(1, 3)

    with pytest.raises(ExerciseMismatch) as error:
        run_check(my_ste)
    assert "got shape (2, 4, 4, 3), expected (2, 3, 4, 4)" in str(error.value)


def test_not_implemented_propagates_unchanged():
    def my_ste(z, z_q):
        raise NotImplementedError("Exercise 3.2: use a torch.autograd.Function")

    with pytest.raises(NotImplementedError, match="Exercise 3.2"):
        run_check(my_ste)


def test_compare_structures_integers_and_numbers():
    assert [c.status for c in compare((torch.ones(2), 3), (torch.ones(2), 3))] == ["exact", "exact"]
    wrong = compare(torch.tensor([1, 2, 3]), torch.tensor([1, 5, 3]), "codes")[0]
    assert wrong.status == "differs" and "1 of 3 entries differ; first at (1,): got 2, expected 5" in wrong.detail
    assert compare({"loss": 1.0}, {"loss": 1.5})[0].name == "output['loss']"
    assert compare([1.0], [1.0, 2.0])[0].status == "type"
    assert compare(torch.zeros(1), None)[0].status == "unexpected"
    assert compare(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long))[0].status == "dtype"
    close = compare(torch.tensor(1.0 + 1e-7), torch.tensor(1.0))[0]
    assert close.status == "close" and close.ok
