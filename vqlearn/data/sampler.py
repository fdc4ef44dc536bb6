"""The order a training run visits its data in: :class:`EpochSampler`, and :class:`EpochLoader`'s batches.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vqlearn.images import image_of


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


class EpochLoader:
    """Training batches in :class:`EpochSampler` order, one after the other across epochs, resumable.

    ``next_batch()`` gives the next ``(B, C, H, W)`` batch (labels dropped); the
    position is ``(epoch, batch)``, the batch index within the epoch. ``state()``
    and ``load_state()`` carry the position and the DataLoader's generator
    through a checkpoint. Datasets with a ``set_epoch`` method (the seeded
    ones) are told each new epoch, so their random augmentations follow
    ``(seed, epoch, index)``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, pin_memory: bool = False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.world_size = world_size
        self.sampler = EpochSampler(len(dataset), seed, rank, world_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=num_workers, pin_memory=pin_memory, generator=self.generator)
        self.epoch = 0
        self.batch = 0
        self._iterator = None

    def next_batch(self) -> torch.Tensor:
        """The next batch ``(B, C, H, W)``; advances ``(epoch, batch)``."""
        if self._iterator is None:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(self.epoch)
            self.sampler.set_position(self.epoch, self.batch * self.batch_size)
            self._iterator = iter(self.loader)
        try:
            x = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch, self._iterator = self.epoch + 1, 0, None
            return self.next_batch()
        self.batch += 1
        return image_of(x)

    def state(self) -> tuple[dict, torch.Tensor]:
        """``(position, generator state)``: what a checkpoint stores as ``data`` and ``loader_rng``."""
        return {"epoch": self.epoch, "batch": self.batch, "world_size": self.world_size}, self.generator.get_state()

    def load_state(self, position: dict, generator_state: torch.Tensor) -> None:
        """Continue from :meth:`state`. With another number of processes the run continues after the
        same number of images overall, not in the same order per rank."""
        self.epoch, self.batch = position["epoch"], position["batch"]
        if position["world_size"] != self.world_size:
            self.batch = position["batch"] * position["world_size"] // self.world_size
        self.generator.set_state(generator_state)
        self._iterator = None
