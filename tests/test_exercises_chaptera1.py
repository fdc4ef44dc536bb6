"""The checkerboard appendix's self-check (exercise A1.1, the overlap map counted by hand): passes the appendix's
solution, and says what differs for the usual mistakes (an output of size * stride, windows started one early)."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_overlap_map


def my_overlap_map(kernel_size, stride, size):  # the appendix's solution
    counts = torch.zeros((size - 1) * stride + kernel_size)
    for i in range(size):
        counts[i * stride : i * stride + kernel_size] += 1
    return counts


def test_solution_passes(capsys):
    comparisons = check_overlap_map(my_overlap_map)
    assert [c.status for c in comparisons] == ["exact"]
    out = capsys.readouterr().out
    assert "Exercise A1.1 (chapter \"Appendix: checkerboard artifacts\"): 10 random trials" in out
    assert "✓ my_overlap_map agrees with vqlearn.exercises.chaptera1.overlap_map_1d" in out


def test_list_of_ints_passes():
    def as_list(kernel_size, stride, size):
        counts = [0] * ((size - 1) * stride + kernel_size)
        for i in range(size):
            for tap in range(kernel_size):
                counts[i * stride + tap] += 1
        return counts

    check_overlap_map(as_list)


def test_size_times_stride_is_a_shape_error():
    def too_short(kernel_size, stride, size):
        counts = torch.zeros(size * stride)
        for i in range(size):
            counts[i * stride : i * stride + kernel_size] += 1  # slicing silently drops the overhang
        return counts

    with pytest.raises(ExerciseMismatch) as error:
        check_overlap_map(too_short)
    message = str(error.value)
    assert "output                 SHAPE      got shape" in message and "✗ too_short differs" in message


def test_window_centred_instead_of_starting_differs():
    def centred(kernel_size, stride, size):
        counts = torch.zeros((size - 1) * stride + kernel_size)
        for i in range(size):
            start = max(i * stride - kernel_size // 2, 0)
            counts[start : start + kernel_size] += 1
        return counts

    with pytest.raises(ExerciseMismatch) as error:
        check_overlap_map(centred)
    assert "output                 DIFFERS    max |diff|" in str(error.value)
