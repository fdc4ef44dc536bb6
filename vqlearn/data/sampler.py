"""The order a training run visits its data in: :class:`EpochSampler`.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """A seeded permutation per epoch, sharded over ranks, resumable mid-epoch.

    Epoch ``e`` visits ``randperm(n, seed + e)``, padded by wrapping around to a
    multiple of ``world_size`` and dealt out rank by rank (like
    ``DistributedSampler``). :meth:`set_position` picks the epoch and the first
    index of this rank's shard to yield, so a resumed run continues where the
    checkpoint left off.
    """

    def __init__(self, length: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.length = length
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    @property
    def shard_size(self) -> int:
        return math.ceil(self.length / self.world_size)

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def shard(self, epoch: int) -> list[int]:
        order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed + epoch)).tolist()
        padded = order + order[: self.shard_size * self.world_size - self.length]
        return padded[self.rank :: self.world_size]

    def __iter__(self):
        return iter(self.shard(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.shard_size - self.start
