"""Self-checks for the coding exercises of chapter 1: from a decoded image file to a model's input.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

from typing import Callable

import torch

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.images import uint8_to_tensor

CHAPTER = "Images as tensors"


def check_uint8_to_tensor(fn: Callable) -> list[Comparison]:
    """Exercise 1.2: ``fn(array)`` must equal :func:`vqlearn.images.uint8_to_tensor`.

    ``array``: a decoded image as NumPy uint8, grey ``(H, W)`` or colour ``(H, W, 3)``, with ``H != W`` and
    both 0 and 255 among its pixels -> float32 ``(C, H, W)`` in ``[-1, 1]`` (``C`` = 1 or 3). Four trials,
    colour and grey in turn. Prints the comparison; raises ``ExerciseMismatch`` on a difference.

    Book: chapter "Images as tensors".
    """
    kinds = iter(["colour", "grey", "colour", "grey"])

    def make_inputs(generator: torch.Generator) -> dict:
        height = int(torch.randint(3, 9, (1,), generator=generator))
        width = height + int(torch.randint(1, 4, (1,), generator=generator))  # never square: H and W can't swap unseen
        shape = (height, width, 3) if next(kinds) == "colour" else (height, width)
        pixels = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        pixels.view(-1)[:2] = torch.tensor([0, 255], dtype=torch.uint8)  # both ends of the byte range
        return {"array": pixels.numpy()}

    return check_function("1.2", CHAPTER, fn, uint8_to_tensor, make_inputs, trials=4)
