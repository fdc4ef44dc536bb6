"""What every dataset shares: the checked arguments of a build, and per-item seeded randomness.

Book: chapter "Images as tensors".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

from vqlearn.errors import DataError

SPLITS = ("train", "test")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split={split!r}; choose one of: {', '.join(SPLITS)}")
    return split


def check_positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DataError(f"`{arg}` must be a positive integer, got {value!r}")
    return int(value)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"`seed` must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class Request:
    """The checked arguments of :func:`vqlearn.data.build_dataset`, as every builder receives them.

    ``image_size`` is the side to produce (the dataset's native side if none
    was asked for); ``flip`` is whether items are mirrored left-right at random
    (the ``augment`` switch, already resolved for this dataset and split);
    ``length`` is ``photos``' crops per epoch (None: its default).
    """

    name: str
    channels: int
    split: str
    image_size: int | None
    root: str | None
    download: bool
    flip: bool
    seed: int
    length: int | None = None

    @property
    def fixed(self) -> bool:
        """The ``test`` split never changes: it ignores ``seed`` and the epoch."""
        return self.split == "test"


class SeededDataset(Dataset):
    """Base class: item ``i`` draws its randomness from its own generator.

    Train items use ``numpy.random.default_rng([seed, epoch, i, 0])``; a
    ``fixed`` dataset (every ``test`` split) uses ``[0, 0, i, 1]`` whatever the
    seed and epoch, so its items never change. The global RNGs are never used.
    """

    def __init__(self, seed: int = 0, fixed: bool = False):
        self.seed = check_seed(seed)
        self.fixed = fixed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the randomness of epoch ``epoch`` (no effect on a fixed dataset).

        Call it before each epoch's DataLoader iterator is created; workers
        started with ``persistent_workers=True`` keep the epoch they copied.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise DataError(f"`epoch` must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        key = [0, 0, index, 1] if self.fixed else [self.seed, self.epoch, index, 0]
        return np.random.default_rng(key)
