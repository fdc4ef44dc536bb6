"""Chapter 10's self-check: the input window of one PatchGAN logit, derived from the strides.

Book: chapter "The PatchGAN discriminator".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.discriminator import patch_window
from vqlearn.exercises.core import Comparison, check_function

CHAPTER = "The PatchGAN discriminator"


def patch_window_inputs(generator: torch.Generator) -> dict:
    """A random depth ``n_layers`` in 1..4 and a random logit row ``index`` in 0..39 (ints, not tensors)."""
    n_layers = int(torch.randint(1, 5, (1,), generator=generator))
    index = int(torch.randint(0, 40, (1,), generator=generator))
    return {"index": index, "n_layers": n_layers}


def check_patch_window(my_patch_window: Callable) -> list[Comparison]:
    """Exercise 10.2: compare ``my_patch_window(index, n_layers)`` with :func:`vqlearn.discriminator.patch_window`.

    ``index`` (int): a row (or column) of the logit grid; ``n_layers`` (int, 1..4): the discriminator's depth,
    4x4 kernels with padding 1 (``conv_strides(n_layers)``). Returns ``(start, stop)``: the input rows
    ``[start, stop)`` that logit row ``index`` sees, ``start`` negative where the window reaches into the zero
    padding (e.g. ``(-23, 47)`` for ``index=0, n_layers=3``). Both ints are compared exactly, on eight random
    ``(index, n_layers)``. Raises :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "The PatchGAN discriminator".
    """
    return check_function("10.2", CHAPTER, my_patch_window, patch_window, patch_window_inputs, trials=8)
