"""The checkerboard appendix's self-check: the overlap map of a 1-D transposed convolution, counted by hand.

Book: chapter "Appendix: checkerboard artifacts".
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.spectral import overlap_map

CHAPTER = "Appendix: checkerboard artifacts"


def overlap_map_1d(kernel_size: int, stride: int, size: int) -> torch.Tensor:
    """:func:`vqlearn.spectral.overlap_map` in 1-D: ``(L_out,)`` float64 counts,
    ``L_out = (size - 1) * stride + kernel_size``."""
    return overlap_map(kernel_size, stride, size, dims=1)


def overlap_inputs(generator: torch.Generator) -> dict:
    """A kernel size in 1..7, a stride in 1..4 and 3..9 input positions."""
    draw = lambda low, high: int(torch.randint(low, high + 1, (1,), generator=generator))  # noqa: E731
    return {"kernel_size": draw(1, 7), "stride": draw(1, 4), "size": draw(3, 9)}


def check_overlap_map(my_overlap_map: Callable) -> list[Comparison]:
    """Exercise A1.1: compare ``my_overlap_map(kernel_size, stride, size)`` with :func:`overlap_map_1d`.

    Integers in, a 1-D tensor of ``(size - 1) * stride + kernel_size`` counts out (any numeric dtype, a list
    is accepted too: both are compared as float64), on ten random (kernel_size, stride, size). Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Appendix: checkerboard artifacts".
    """

    @functools.wraps(my_overlap_map)
    def as_float64(**inputs):
        return torch.as_tensor(my_overlap_map(**inputs), dtype=torch.float64)

    return check_function("A1.1", CHAPTER, as_float64, overlap_map_1d, overlap_inputs, trials=10)
