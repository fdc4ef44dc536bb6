"""One training loop for VQ-VAE, VQ-VAE-2 and VQ-GAN.

From Python (what the book does)::

    from vqlearn.train import load_config, train
    config = load_config("configs/vqvae_mnist.yaml", ["train.max_steps=200"])
    result = train(config)                 # nothing written to disk
    result.history[-1]["train/psnr"], result.model

From the shell::

    python -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist [--set train.lr=1e-3]
        [--max-steps N] [--max-seconds S] [--resume]
    torchrun --nproc_per_node=2 -m vqlearn.train configs/vqvae_mnist.yaml --out runs/mnist

writes ``DIR/last.ckpt``, ``DIR/metrics.jsonl`` (one JSON object per logging
interval) and ``DIR/samples/step_XXXXXX.png`` (originals over reconstructions).

One step (``Trainer.train_step``):

1. the autoencoder's forward pass gives a reconstruction, the codebook loss and the codes;
2. the loss module turns them into the autoencoder's loss (for VQ-GAN: L1 [+ LPIPS]
   + adaptive-weighted GAN term + codebook loss); one optimiser step;
3. VQ-GAN only, once ``global_step >= disc_start``: the discriminator's step on the
   *same* reconstruction, detached. ``global_step`` counts autoencoder steps;
4. code histograms feed the usage statistics and, if enabled, dead-code restarts.

Exact resume: the sampler is a seeded permutation per epoch, and the checkpoint
stores the epoch and the batch within it, every RNG state, the optimisers, the
scaler and the codebook statistics, so N steps in one go and N/2 + N/2 resumed
give the same weights.

Under ``torchrun`` (DistributedDataParallel; nccl on GPU, gloo on CPU) every rank
reads its own shard of each epoch; EMA codebook updates are all-reduced inside
the quantizer, restarts and data-initialised codebooks are broadcast from rank 0,
the discriminator's gradients are averaged here, and only rank 0 writes files.

Book: chapter "Training a VQ-VAE", chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

import vqlearn
from vqlearn.checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked, save_atomic
from vqlearn.config import Config, ConfigError, config_from_dict, config_to_dict, load_config
from vqlearn.metrics import psnr, to_unit_range
from vqlearn.models import VQGAN, VQVAE, VQVAE2, Tokenizer
from vqlearn.quantize import CodebookUsage, init_codebook_from_data, restart_dead_codes

__all__ = [
    "train",
    "TrainResult",
    "Trainer",
    "load_config",
    "build_model",
    "build_loss",
    "load_model",
    "NonFiniteLossError",
    "VQLoss",
]

DATASETS_NEEDING_ROOT = ("torchvision-mnist", "fashion-mnist", "cifar10", "folder")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped before that step changed any weight."""


# ---------------------------------------------------------------------------
# Building blocks of a run: model, loss, data
# ---------------------------------------------------------------------------


def model_channels(config: Config) -> int:
    """Image channels the model is built for: ``model.in_channels`` or the dataset's."""
    if config.model.in_channels is not None:
        return config.model.in_channels
    from vqlearn.data import dataset_channels

    return dataset_channels(config.data.name)


def quantizer_options(config: Config) -> tuple[str, dict]:
    """``(kind, options)`` for :func:`vqlearn.quantize.make_quantizer`, defaults filled in."""
    q = config.quantizer
    kind = config.resolved_quantizer_kind()
    names = ("decay", "eps") if kind == "ema" else ("legacy", "l2_normalize", "lookup_dim")
    return kind, {name: getattr(q, name) for name in names if getattr(q, name) is not None}


def build_model(config: Config, in_channels: int | None = None) -> Tokenizer:
    """The autoencoder that ``config.model`` describes (weights from the current torch seed)."""
    m = config.model
    channels = in_channels or model_channels(config)
    kind, options = quantizer_options(config)
    beta = config.quantizer.beta
    if m.family == "vqvae":
        return VQVAE(channels, m.dim, m.K, beta, m.batchnorm, kind, options)
    if m.family == "vqvae2":
        return VQVAE2(channels, m.channel, m.n_res_block, m.n_res_channel, m.embed_dim, m.n_embed,
                      beta=beta, quantizer=kind, quantizer_options=options)
    ddconfig = m.ddconfig.__class__(**{**m.ddconfig.__dict__, "in_channels": channels, "out_ch": channels})
    return VQGAN(ddconfig, m.n_embed, m.embed_dim, beta, kind, options)


class VQLoss(nn.Module):
    """VQ-VAE's objective: ``rec_loss(x, x_hat) + codebook_weight * quant_loss`` (seed 000 §1).

    Same call as :class:`vqlearn.losses.VQLPIPSWithDiscriminator` (only
    ``optimizer_idx=0`` exists) and the seed's log keys that apply:
    ``{split}/total_loss``, ``quant_loss``, ``nll_loss``, ``rec_loss``.
    ``rec_loss="mse"`` is the pytorch-vqvae reproduction's; ``"l1"`` VQ-GAN's pixel loss.
    """

    def __init__(self, rec_loss: str = "mse", codebook_weight: float = 1.0):
        super().__init__()
        if rec_loss not in ("mse", "l1"):
            raise ValueError(f"rec_loss must be 'mse' or 'l1', got {rec_loss!r}")
        self.rec_loss = rec_loss
        self.codebook_weight = codebook_weight

    def forward(self, codebook_loss, inputs, reconstructions, optimizer_idx=0, global_step=0, last_layer=None,
                cond=None, split="train"):
        if optimizer_idx != 0:
            raise ValueError("VQLoss has no discriminator: optimizer_idx must be 0")
        reconstructions = reconstructions.float()
        inputs = inputs.float()
        if self.rec_loss == "mse":
            rec = F.mse_loss(reconstructions, inputs)
        else:
            rec = F.l1_loss(reconstructions, inputs)
        loss = rec + self.codebook_weight * codebook_loss.mean()
        log = {
            f"{split}/total_loss": loss.detach(),
            f"{split}/quant_loss": codebook_loss.detach().mean(),
            f"{split}/nll_loss": rec.detach(),
            f"{split}/rec_loss": rec.detach(),
        }
        return loss, log


def build_loss(config: Config, in_channels: int | None = None) -> nn.Module:
    """:class:`VQLoss` or :class:`vqlearn.losses.VQLPIPSWithDiscriminator`, from ``config.loss``."""
    loss = config.loss
    if config.resolved_loss_kind() == "vq":
        return VQLoss(loss.rec_loss, loss.codebook_weight)
    from vqlearn.losses import VQLPIPSWithDiscriminator

    options = {
        name: getattr(loss, name)
        for name in ("pixelloss_weight", "disc_num_layers", "disc_factor", "disc_weight", "perceptual_weight",
                     "use_actnorm", "disc_ndf", "disc_loss")
        if getattr(loss, name) is not None
    }
    return VQLPIPSWithDiscriminator(
        disc_start=loss.disc_start or 0,
        codebook_weight=loss.codebook_weight,
        disc_in_channels=in_channels or model_channels(config),
        **options,
    )


def check_data_paths(config: Config) -> None:
    """Fail early, naming ``data.root``, when a dataset that lives on disk is not there."""
    data = config.data
    if data.name in DATASETS_NEEDING_ROOT:
        if data.root is None:
            raise ConfigError(
                f"dataset `{data.name}` reads files from disk: set config key `data.root` to their directory "
                f"(e.g. --set data.root=/path/to/{data.name})"
            )
        if not data.download and not Path(data.root).expanduser().exists():
            raise ConfigError(
                f"config key `data.root`: {data.root} does not exist; point it at the {data.name} files"
                + ("" if data.name == "folder" else " or set data.download=true to fetch them")
            )
    if data.name == "folder" and data.image_size is None:
        raise ConfigError("dataset `folder` needs config key `data.image_size` (images are resized to it)")


def build_datasets(config: Config, with_val: bool = True) -> tuple[Dataset, Dataset | None]:
    """The train split and (if ``with_val``) the held-out split of ``config.data``."""
    from vqlearn.data import build_dataset

    check_data_paths(config)
    d = config.data
    common = dict(image_size=d.image_size, root=d.root, download=d.download)
    train_set = build_dataset(d.name, d.train_split, augment=d.augment, seed=config.train.seed, **common)
    val_set = build_dataset(d.name, d.val_split, augment=False, **common) if with_val else None
    return train_set, val_set


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


def first_images(dataset: Dataset, n: int) -> torch.Tensor:
    """The first ``n`` items of ``dataset`` as a batch ``(n, C, H, W)``."""
    return torch.stack([_image(dataset[i]) for i in range(min(n, len(dataset)))])


def _image(item):
    return item[0] if isinstance(item, (tuple, list)) else item


# ---------------------------------------------------------------------------
# Devices, precision, distributed
# ---------------------------------------------------------------------------


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is present, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key `train.device` is {name!r} but CUDA is not available; use auto or cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype (None: full fp32). ``auto``: bf16 on CUDA, fp32 on CPU."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def distributed_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment variables (0, 1, 0 without)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init_distributed(device_name: str = "auto") -> bool:
    """Join the process group torchrun describes (nccl on GPU, gloo on CPU). True if this call created it."""
    rank, world, local_rank = distributed_env()
    if world <= 1 or dist.is_initialized():
        return False
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return True


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG state, as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value):
    """Lists back to tuples (``random.setstate`` wants the nested tuples it gave)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def learning_rate(config: Config, step: int, world_size: int = 1) -> float:
    """The learning rate at ``step`` (0-based): linear warmup over ``warmup_steps``, then
    constant, or (``lr_schedule: cosine``) a half cosine from ``lr`` down to
    ``min_lr_ratio * lr`` at ``train.max_steps``.

    With ``train.scale_lr`` the configured rate is taming's *base* rate, multiplied
    by the global batch ``batch_size * world_size``.
    """
    t = config.train
    lr = t.lr * t.batch_size * world_size if t.scale_lr else t.lr
    if t.warmup_steps and step < t.warmup_steps:
        return lr * (step + 1) / t.warmup_steps
    if t.lr_schedule == "cosine":
        progress = min(1.0, (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
        lr *= t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


def level_names(n: int) -> list[str]:
    """Metric-name suffix per quantizer: ``[""]``, ``["_top", "_bottom"]`` (VQ-VAE-2), or ``["_0", ...]``."""
    if n == 1:
        return [""]
    if n == 2:
        return ["_top", "_bottom"]
    return [f"_{i}" for i in range(n)]


# ---------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``history``: one dict per logging interval (what ``metrics.jsonl`` holds);
    ``final``: held-out metrics at the end (``val/psnr``, ``val/ssim``, ...);
    ``loss``: the loss module (VQ-GAN: holds the discriminator);
    ``stopped``: why training ended (``max_steps``, ``max_seconds`` or ``callback``).
    """

    model: Tokenizer
    loss: nn.Module
    config: Config
    history: list[dict]
    final: dict
    step: int
    stopped: str
    seconds: float
    out_dir: Path | None = None
    checkpoint: Path | None = None
    samples: list[Path] = field(default_factory=list)

    def metric(self, key: str) -> list[tuple[int, float]]:
        """``[(step, value), ...]`` of one metric over the history, e.g. ``result.metric("train/psnr")``."""
        return [(row["step"], row[key]) for row in self.history if key in row]


class Trainer:
    """A training run: everything :func:`train` sets up, and one method per part of a step.

    ``train_data`` / ``val_data`` replace the config's datasets (any ``Dataset`` of
    ``(C, H, W)`` tensors in [-1, 1]); ``val_data=None`` with ``eval_batches=0`` skips evaluation.
    """

    def __init__(
        self,
        config: Config,
        out_dir: str | os.PathLike | None = None,
        progress: bool = True,
        callback: Callable[[dict], bool | None] | None = None,
        train_data: Dataset | None = None,
        val_data: Dataset | None = None,
    ):
        self.config = config
        t = config.train
        self.rank, self.world_size = _world()
        self.is_main = self.rank == 0
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.callback = callback
        _, _, local_rank = distributed_env()
        self.device = pick_device(t.device, local_rank)
        self.amp_dtype = autocast_dtype(t.precision, self.device)
        self.channels_last = t.channels_last if t.channels_last is not None else self.device.type == "cuda"

        # Data first (needs no randomness), then the weights from the seed.
        if train_data is None:
            train_data, default_val = build_datasets(config, with_val=t.eval_batches > 0 or t.sample_every > 0)
            val_data = val_data if val_data is not None else default_val
        self.train_data, self.val_data = train_data, val_data
        self.sampler = EpochSampler(len(train_data), t.seed, self.rank, self.world_size)
        self.batches_per_epoch = self.sampler.shard_size // t.batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"config key `train.batch_size`: {t.batch_size} is more than the {self.sampler.shard_size} "
                f"training images each of the {self.world_size} process(es) gets; use a smaller batch"
            )
        self.loader_rng = torch.Generator().manual_seed(t.seed)
        self.loader = DataLoader(
            train_data,
            batch_size=t.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=self.loader_rng,
        )

        seed_everything(t.seed)
        in_channels = config.model.in_channels or _image(train_data[0]).shape[0]
        self.model = build_model(config, in_channels).to(self.device)
        self.loss_fn = build_loss(config, in_channels).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.loss_fn.to(memory_format=torch.channels_last)
        self.discriminator = getattr(self.loss_fn, "discriminator", None)
        self.disc_start = config.loss.disc_start or 0

        self.model_for_step: nn.Module = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model_for_step = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if t.compile:
            if self.discriminator is not None:
                # The adaptive GAN weight differentiates the loss twice (retain_graph=True), which a
                # compiled backward only allows without donated buffers.
                from torch._functorch import config as functorch_config

                functorch_config.donated_buffer = False
            # Quantizers stay eager: argmin, histograms, in-place EMA updates and their all-reduce
            # gain nothing from compilation (and torch 2.14's inductor miscomputes the EMA update).
            for quantizer in self.model.quantizers:
                quantizer.forward = torch.compiler.disable(quantizer.forward)
            self.model_for_step = torch.compile(self.model_for_step)
        seed_everything(t.seed + self.rank)  # ranks now draw different randomness (if any is drawn)

        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=learning_rate(config, 0, self.world_size),
                                      betas=t.betas, weight_decay=t.weight_decay)
        self.opt_d = None
        if self.discriminator is not None:
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=learning_rate(config, 0, self.world_size),
                                          betas=t.betas, weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        # Codebook statistics: one accumulator per quantizer for the log, one for restarts.
        quantizers = self.model.quantizers
        self.levels = level_names(len(quantizers))
        self.usage_log = [CodebookUsage(q.num_codes) for q in quantizers]
        self.usage_restart = [CodebookUsage(q.num_codes) for q in quantizers]
        self.codebook_rng = torch.Generator().manual_seed(t.seed)
        self.captured: list[torch.Tensor | None] = [None] * len(quantizers)
        self.capturing = False
        self.capture_hooks = [q.register_forward_pre_hook(self._capture_hook(i)) for i, q in enumerate(quantizers)]

        # Position and bookkeeping.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self._iterator = None
        self.history: list[dict] = []
        self.sums: dict[str, torch.Tensor] = {}
        self.sum_steps = 0
        self.restarts = 0
        self.saved_step = -1
        self.sample_paths: list[Path] = []
        self.sample_batch = first_images(val_data if val_data is not None else train_data, t.num_samples)

    # -- small helpers -------------------------------------------------------

    def _capture_hook(self, index: int):
        """Forward pre-hook: keep quantizer ``index``'s input (encoder output) while capturing."""

        def hook(module, inputs):
            if self.capturing:
                self.captured[index] = inputs[0].detach()

        return hook

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def next_batch(self) -> torch.Tensor:
        """The next training batch; advances ``(epoch, batch_in_epoch)``."""
        if self._iterator is None:
            if hasattr(self.train_data, "set_epoch"):
                self.train_data.set_epoch(self.epoch)
            self.sampler.set_position(self.epoch, self.batch_in_epoch * self.config.train.batch_size)
            self._iterator = iter(self.loader)
        try:
            x = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch_in_epoch, self._iterator = self.epoch + 1, 0, None
            return self.next_batch()
        self.batch_in_epoch += 1
        return _image(x)

    def all_ranks_agree(self, flags: list[bool]) -> list[bool]:
        """Each flag OR-ed over ranks (so every rank stops, or none)."""
        if self.world_size == 1:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def check_finite(self, loss: torch.Tensor, log: dict, what: str) -> None:
        (bad,) = self.all_ranks_agree([not bool(torch.isfinite(loss.detach()))])
        if bad:
            values = ", ".join(f"{k}={float(v):.4g}" for k, v in log.items())
            where = f" (saved checkpoint: {self.out_dir / 'last.ckpt'})" if self.out_dir else ""
            raise NonFiniteLossError(
                f"non-finite {what} loss at step {self.step + 1} (global_step {self.step}); stopped before "
                f"updating any weight{where}. Losses: {values}. Try a lower train.lr, train.grad_clip, "
                f"or train.precision=fp32"
            )

    def set_lr(self) -> float:
        lr = learning_rate(self.config, self.step, self.world_size)
        for opt in (self.opt_g, self.opt_d):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        return lr

    def clip_and_step(self, optimizer, params) -> torch.Tensor | None:
        norm = None
        clip = self.config.train.grad_clip
        if clip is not None:
            self.scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(optimizer)
        return norm

    def average_discriminator_grads(self) -> None:
        """All-reduce the discriminator's gradients (it is not wrapped in DDP; see the module docstring)."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in self.discriminator.parameters() if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's BatchNorm statistics to every rank, as DDP does before each forward.

        (EMA codebooks are buffers too, but they are all-reduced, so they need no copy.)
        """
        if self.world_size == 1:
            return
        for layer in module.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                for buffer in layer.buffers():
                    dist.broadcast(buffer, src=0)

    def disc_active(self) -> bool:
        return self.discriminator is not None and self.step >= self.disc_start

    # -- codebooks -----------------------------------------------------------

    @torch.no_grad()
    def init_codebooks(self) -> None:
        """``quantizer.init``: set each codebook from encoder outputs, level by level.

        Forward passes over training images (in order, from a fixed permutation
        independent of the training sampler) until about ``init_vectors`` encoder
        vectors are collected; a VQ-VAE-2's bottom level is initialised after its
        top one, from the outputs the initialised top level produces.
        """
        q = self.config.quantizer
        order = torch.randperm(len(self.train_data), generator=torch.Generator().manual_seed(q.init_vectors))
        generator = self.codebook_rng if self.device.type == "cpu" else None
        batch = max(self.config.train.batch_size, 64)  # no gradients here: bigger batches are cheap
        for level, quantizer in enumerate(self.model.quantizers):
            chunks, count, start = [], 0, 0
            needed = max(q.init_vectors, quantizer.codebook.shape[0])
            while count < needed and start < len(order):
                x = torch.stack([_image(self.train_data[int(i)]) for i in order[start : start + batch]])
                start += batch
                self.capturing = True
                with self.autocast():
                    self.model(self.to_device(x))
                self.capturing = False
                z = self.captured[level].float()
                chunks.append(z)
                count += z.shape[0] * z.shape[2] * z.shape[3]
            init_codebook_from_data(quantizer, torch.cat(chunks), q.init, q.init_iters, generator)
        self.captured = [None] * len(self.captured)

    @torch.no_grad()
    def restart_codes(self) -> int:
        """Restart each quantizer's codes unused since the last restart (counts summed over ranks)."""
        q = self.config.quantizer
        generator = self.codebook_rng if self.device.type == "cpu" else None
        restarted = 0
        for quantizer, usage, z in zip(self.model.quantizers, self.usage_restart, self.captured):
            usage.all_reduce()
            restarted += restart_dead_codes(quantizer, z.float(), usage.counts, q.restart_min_count, generator)
            usage.reset()
        self.captured = [None] * len(self.captured)
        self.restarts += restarted
        return restarted

    # -- one step -------------------------------------------------------------

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One autoencoder step (and, for VQ-GAN, one discriminator step). Returns the log dict."""
        q = self.config.quantizer
        x = self.to_device(x)
        lr = self.set_lr()
        restart_now = q.restart_every > 0 and (self.step + 1) % q.restart_every == 0
        self.model.train()
        self.loss_fn.train()

        # 1-2. Autoencoder. The discriminator is frozen so the generator loss gives it no gradient.
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        self.capturing = restart_now
        with self.autocast():
            out = self.model_for_step(x)
            loss, log = self.loss_fn(out.quant_loss, x, out.reconstruction, 0, self.step,
                                     last_layer=self.model.get_last_layer(), split="train")
        self.capturing = False
        self.check_finite(loss, log, "autoencoder")
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grad_norm = self.clip_and_step(self.opt_g, self.model.parameters())

        # 3. Discriminator, on the same reconstruction.
        if self.disc_active():
            self.discriminator.requires_grad_(True)
            with self.autocast():
                d_loss, d_log = self.loss_fn(out.quant_loss.detach(), x, out.reconstruction.detach(), 1, self.step,
                                             split="train")
            self.check_finite(d_loss, d_log, "discriminator")
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self.average_discriminator_grads()
            self.clip_and_step(self.opt_d, self.discriminator.parameters())
            self.broadcast_buffers(self.discriminator)
            log.update(d_log)
        self.scaler.update()

        # 4. Codebook statistics and restarts.
        for codes, usage_log, usage_restart in zip(out.codes, self.usage_log, self.usage_restart):
            usage_log.update(codes)
            usage_restart.update(codes)
        if restart_now:
            log["train/codes_restarted"] = torch.tensor(float(self.restart_codes()))

        with torch.no_grad():
            log["train/psnr"] = psnr(to_unit_range(x), to_unit_range(out.reconstruction)).mean()
            for name, perplexity in zip(self.levels, out.perplexity):
                log[f"train/batch_perplexity{name}"] = perplexity.detach()
        log["train/lr"] = torch.tensor(lr)
        if grad_norm is not None:
            log["train/grad_norm"] = grad_norm.detach()
        self.step += 1
        return log

    # -- logging, evaluation, samples, checkpoints ---------------------------

    def accumulate(self, log: dict[str, torch.Tensor]) -> None:
        for key, value in log.items():
            value = value.detach().float().to(self.device)
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.sum_steps += 1

    def log_row(self, seconds: float, steps_per_sec: float) -> dict:
        """Average the accumulated step logs (over steps and ranks) into one history row, and reset."""
        keys = sorted(self.sums)
        means = torch.stack([self.sums[k] for k in keys]) / max(self.sum_steps, 1)
        if self.world_size > 1:
            dist.all_reduce(means)
            means /= self.world_size
        row = {"step": self.step, "epoch": self.epoch, "time": round(seconds, 3)}
        row.update({k: float(v) for k, v in zip(keys, means.tolist())})
        if "train/codes_restarted" in row:  # a count, not an average
            row["train/codes_restarted"] = self.restarts
        usage, perplexities = [], []
        for name, acc in zip(self.levels, self.usage_log):
            acc.all_reduce()
            row[f"train/codebook_usage{name}"] = acc.fraction_used
            row[f"train/codes_used{name}"] = acc.codes_used
            row[f"train/perplexity{name}"] = acc.perplexity
            usage.append(acc.fraction_used)
            perplexities.append(acc.perplexity)
            acc.reset()
        if len(self.levels) > 1:
            row["train/codebook_usage"] = sum(usage) / len(usage)
            row["train/perplexity"] = sum(perplexities) / len(perplexities)
        row["steps_per_sec"] = round(steps_per_sec, 3)
        row["images_per_sec"] = round(steps_per_sec * self.config.train.batch_size * self.world_size, 1)
        self.sums, self.sum_steps = {}, 0
        return row

    def evaluate(self) -> dict:
        """Held-out metrics on ``eval_batches`` batches of the validation set (rank 0 only)."""
        from vqlearn.evaluate import evaluate_model

        t = self.config.train
        if self.val_data is None or t.eval_batches == 0:
            return {}
        metrics = evaluate_model(self.model, self.val_data, batch_size=t.batch_size, max_batches=t.eval_batches,
                                 device=self.device, autocast_dtype=self.amp_dtype)
        return {f"val/{k}": v for k, v in metrics.items()}

    @torch.no_grad()
    def save_samples(self) -> None:
        from vqlearn.viz import reconstruction_grid, save_image

        was_training = self.model.training
        self.model.eval()
        with self.autocast():
            reconstruction = self.model(self.to_device(self.sample_batch)).reconstruction
        self.model.train(was_training)
        path = self.out_dir / "samples" / f"step_{self.step:06d}.png"
        save_image(reconstruction_grid(self.sample_batch, reconstruction.float(), nrow=8), path)
        self.sample_paths.append(path)

    def checkpoint_state(self) -> dict:
        """Everything needed to continue exactly (see :meth:`load_state`)."""
        rng = rng_state()
        if self.world_size > 1:
            gathered = [None] * self.world_size
            dist.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        return {
            "vqlearn_version": vqlearn.__version__,
            "step": self.step,
            "config": config_to_dict(self.config),
            "model": self.model.state_dict(),
            "discriminator": self.discriminator.state_dict() if self.discriminator is not None else None,
            "optimizers": {
                "autoencoder": self.opt_g.state_dict(),
                "discriminator": self.opt_d.state_dict() if self.opt_d is not None else None,
            },
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "codebook_rng": self.codebook_rng.get_state(),
            "loader_rng": self.loader_rng.get_state(),
            "data": {"epoch": self.epoch, "batch": self.batch_in_epoch, "world_size": self.world_size},
            "codebook_usage": {
                "log": [u.counts.clone() for u in self.usage_log],
                "restart": [u.counts.clone() for u in self.usage_restart],
                "restarts": self.restarts,
            },
            "interval": {"sums": {k: float(v) for k, v in self.sums.items()}, "steps": self.sum_steps},
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``out_dir/last.ckpt`` (rank 0; every rank must call it). Returns its path."""
        if self.out_dir is None:
            return None
        path = self.out_dir / "last.ckpt"
        if self.saved_step == self.step:
            return path if self.is_main else None
        state = self.checkpoint_state()  # every rank takes part (RNG gather)
        self.saved_step = self.step
        if not self.is_main:
            return None
        save_atomic(state, path)
        return path

    def load_state(self, state: dict) -> None:
        """Continue from a :meth:`checkpoint_state` dict."""
        check_resumable(self.config, state)
        load_state_dict_checked(self.model, state["model"], "checkpoint `model`")
        if self.discriminator is not None:
            load_state_dict_checked(self.discriminator, state["discriminator"], "checkpoint `discriminator`")
            self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        self.opt_g.load_state_dict(state["optimizers"]["autoencoder"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        data = state["data"]
        self.epoch, self.batch_in_epoch = data["epoch"], data["batch"]
        if data["world_size"] != self.world_size:  # same images overall, not the same order per rank
            self.batch_in_epoch = data["batch"] * data["world_size"] // self.world_size
        rngs = state["rng"]
        set_rng_state(rngs[self.rank] if len(rngs) == self.world_size else rngs[0])
        self.codebook_rng.set_state(state["codebook_rng"])
        self.loader_rng.set_state(state["loader_rng"])
        usage = state["codebook_usage"]
        for acc, counts in zip(self.usage_log, usage["log"]):
            acc.counts = counts.clone()
        for acc, counts in zip(self.usage_restart, usage["restart"]):
            acc.counts = counts.clone()
        self.restarts = usage["restarts"]
        self.sums = {k: torch.tensor(v, device=self.device) for k, v in state["interval"]["sums"].items()}
        self.sum_steps = state["interval"]["steps"]
        self._iterator = None

    # -- the loop ------------------------------------------------------------

    def run(self, max_steps: int | None = None, max_seconds: float | None = None) -> TrainResult:
        """Train until ``max_steps`` (total, counting resumed steps) or ``max_seconds`` of this call."""
        t = self.config.train
        max_steps = max_steps or t.max_steps
        max_seconds = max_seconds if max_seconds is not None else t.max_seconds
        start = time.perf_counter()
        if self.step == 0 and self.config.quantizer.init is not None:
            self.init_codebooks()
        if self.out_dir is not None and self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        bar = self._progress_bar(max_steps)
        stopped = "max_steps"
        interval_start, interval_step = time.perf_counter(), self.step
        try:
            while self.step < max_steps:
                log = self.train_step(self.next_batch())
                self.accumulate(log)
                if bar is not None:
                    bar.update(1)
                stop_callback = False
                if self.step % t.log_every == 0 or self.step == max_steps:
                    now = time.perf_counter()
                    row = self.log_row(now - start, (self.step - interval_step) / max(now - interval_start, 1e-9))
                    interval_start, interval_step = now, self.step
                    if t.eval_every and self.step % t.eval_every == 0 and self.is_main:
                        row.update(self.evaluate())
                    stop_callback = self.record(row, bar)
                if self.out_dir is not None and self.is_main and t.sample_every and self.step % t.sample_every == 0:
                    self.save_samples()
                if t.ckpt_every and self.step % t.ckpt_every == 0:
                    self.save_checkpoint()
                out_of_time = max_seconds is not None and time.perf_counter() - start >= max_seconds
                out_of_time, stop_callback = self.all_ranks_agree([out_of_time, stop_callback])
                if out_of_time or stop_callback:
                    stopped = "max_seconds" if out_of_time else "callback"
                    break
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        # Each rank's last forward pass updated its own BatchNorm statistics: keep rank 0's everywhere.
        self.broadcast_buffers(self.model)
        if self.discriminator is not None:
            self.broadcast_buffers(self.discriminator)
        if self.sum_steps:  # a partial interval at the end
            now = time.perf_counter()
            self.record(self.log_row(seconds, (self.step - interval_step) / max(now - interval_start, 1e-9)), None)
        final = self.evaluate() if self.is_main else {}
        if final and self.history:
            self.history[-1].update(final)
            self._rewrite_last_row()
        checkpoint = self.save_checkpoint()
        saved_samples = self.sample_paths and self.sample_paths[-1].stem == f"step_{self.step:06d}"
        if self.out_dir is not None and self.is_main and t.sample_every and not saved_samples:
            self.save_samples()
        return TrainResult(self.model, self.loss_fn, self.config, self.history, final, self.step, stopped, seconds,
                           self.out_dir, checkpoint, self.sample_paths)

    def record(self, row: dict, bar) -> bool:
        """Keep a history row, append it to ``metrics.jsonl``, show it, and ask the callback."""
        self.history.append(row)
        if self.is_main and self.out_dir is not None:
            with open(self.out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if bar is not None:
            shown = {"loss": row.get("train/total_loss"), "psnr": row.get("train/psnr"),
                     "usage": row.get("train/codebook_usage")}
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if v is not None}, refresh=False)
        return bool(self.callback(row)) if self.callback is not None else False

    def _rewrite_last_row(self) -> None:
        if not self.is_main or self.out_dir is None:
            return
        path = self.out_dir / "metrics.jsonl"
        lines = path.read_text().splitlines()
        lines[-1] = json.dumps(self.history[-1])
        path.write_text("\n".join(lines) + "\n")

    def _progress_bar(self, max_steps: int):
        if not self.progress or not self.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=max_steps, initial=self.step, desc=self.config.family, dynamic_ncols=True)

    def resume(self) -> bool:
        """Load ``out_dir/last.ckpt`` if there is one (and trim ``metrics.jsonl`` to it). True if loaded."""
        if self.out_dir is None:
            raise ValueError("resume=True needs out_dir: the directory whose last.ckpt to continue from")
        path = self.out_dir / "last.ckpt"
        if not path.is_file():
            return False
        self.load_state(load_checkpoint(path, map_location=self.device))
        metrics = self.out_dir / "metrics.jsonl"
        if metrics.is_file():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            self.history = [row for row in rows if row["step"] <= self.step]
            if self.is_main:
                metrics.write_text("".join(json.dumps(row) + "\n" for row in self.history))
        return True


# Sections whose change makes a checkpoint a different experiment.
_RESUME_MUST_MATCH = ("model", "quantizer", "loss")


def check_resumable(config: Config, state: dict) -> None:
    """Refuse to continue a checkpoint with a config that builds a different model or loss."""
    saved, current = state.get("config", {}), config_to_dict(config)
    differences = []
    for section in _RESUME_MUST_MATCH:
        for key in sorted(set(saved.get(section, {})) | set(current[section])):
            if saved.get(section, {}).get(key) != current[section].get(key):
                differences.append(f"{section}.{key}: checkpoint {saved.get(section, {}).get(key)!r}, "
                                   f"config {current[section].get(key)!r}")
    if saved.get("data", {}).get("name") != current["data"]["name"]:
        differences.append(f"data.name: checkpoint {saved.get('data', {}).get('name')!r}, config {current['data']['name']!r}")
    if differences:
        raise CheckpointError("cannot resume: the config differs from the checkpoint's in\n  " + "\n  ".join(differences)
                              + "\nUse the checkpoint's settings, or start a new run in another --out directory.")


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def train(
    config,
    out_dir: str | os.PathLike | None = None,
    max_steps: int | None = None,
    max_seconds: float | None = None,
    resume: bool = False,
    callback: Callable[[dict], bool | None] | None = None,
    progress: bool = True,
    overrides=(),
    train_data: Dataset | None = None,
    val_data: Dataset | None = None,
) -> TrainResult:
    """Train the model ``config`` describes; returns a :class:`TrainResult`.

    Args:
        config: a :class:`~vqlearn.config.Config`, a dict, or a YAML path.
        out_dir: where ``last.ckpt``, ``metrics.jsonl`` and ``samples/`` go; None
            keeps everything in memory (``result.history``, ``result.model``).
        max_steps: total autoencoder steps (default ``train.max_steps``).
        max_seconds: wall-clock budget of this call (default ``train.max_seconds``).
        resume: continue from ``out_dir/last.ckpt`` if it exists.
        callback: called with each history row; returning True stops training.
        progress: show a tqdm bar.
        overrides: ``"key=value"`` strings applied to ``config``.
        train_data, val_data: datasets to use instead of the config's.

    Raises :class:`NonFiniteLossError` (naming the step) if a loss is NaN/inf.
    Under ``torchrun`` the process group is joined here and left at the end.
    """
    if not isinstance(config, Config) or overrides:
        config = load_config(config, overrides)
    created_group = init_distributed(config.train.device)
    try:
        trainer = Trainer(config, out_dir, progress, callback, train_data, val_data)
        if resume:
            trainer.resume()
        result = trainer.run(max_steps, max_seconds)
        for hook in trainer.capture_hooks:  # the returned model must not keep the trainer alive
            hook.remove()
        return result
    finally:
        if created_group:
            dist.destroy_process_group()


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Tokenizer, Config]:
    """``(model, config)`` from a checkpoint written by :func:`train` (in eval mode)."""
    state = load_checkpoint(path, map_location=device)
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a vqlearn training checkpoint (no `config`/`model` entries)")
    config = config_from_dict(state["config"])
    model = build_model(config)
    load_state_dict_checked(model, state["model"], f"checkpoint {path}")
    return model.to(device).eval(), config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vqlearn.train", description="Train a VQ-VAE, VQ-VAE-2 or VQ-GAN.")
    parser.add_argument("config", help="YAML config, e.g. configs/vqvae_mnist.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value), e.g. --set train.lr=1e-3; repeatable")
    parser.add_argument("--out", default=None, help="output directory (default runs/<config name>)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps in total")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after S seconds of training")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join("runs", Path(args.config).stem)
    try:
        config = load_config(args.config, args.overrides)
        result = train(config, out, args.max_steps, args.max_seconds, args.resume, progress=not args.no_progress)
    except (ConfigError, CheckpointError, NonFiniteLossError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    if result.checkpoint is not None:
        summary = {"step": result.step, "stopped": result.stopped, "checkpoint": str(result.checkpoint)}
        summary.update(result.final)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
