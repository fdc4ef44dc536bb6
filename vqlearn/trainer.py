"""The :class:`Trainer`: one training run of a VQ-VAE, VQ-VAE-2 or VQ-GAN, one method per part of a step.

One step (:meth:`Trainer.train_step`):

1. :meth:`Trainer.autoencoder_step`: forward pass, the loss module's
   ``generator_loss`` (VQ-VAE: reconstruction + codebook loss; VQ-GAN: L1 [+ LPIPS]
   + adaptive-weighted GAN term + codebook loss), one optimiser step;
2. VQ-GAN only, once the loss module's ``disc_active(step)``:
   :meth:`Trainer.discriminator_step` on the *same* reconstruction, detached.
   ``step`` counts autoencoder steps;
3. :meth:`Trainer.track_codes`: code histograms feed the usage statistics and,
   if enabled, dead-code restarts.

The pieces around it live in their own modules: :mod:`vqlearn.build` (config ->
model, loss, data, learning rate), :mod:`vqlearn.runtime` (device, precision,
DDP, RNG), :mod:`vqlearn.codebook` (usage, k-means, restarts),
:mod:`vqlearn.history` (interval averages, ``metrics.jsonl``) and
:mod:`vqlearn.evaluate`. :func:`vqlearn.train.train` is the way in.

Exact resume: the sampler is a seeded permutation per epoch, and the checkpoint
stores the epoch and the batch within it, every RNG state, the optimisers, the
scaler and the codebook statistics, so N steps in one go and N/2 + N/2 resumed
give the same weights.

Under ``torchrun`` every rank reads its own shard of each epoch; EMA codebook
updates are all-reduced inside the quantizer, restarts and data-initialised
codebooks are broadcast from rank 0, the discriminator's gradients are averaged
here, and only rank 0 writes files.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Dataset

import vqlearn
from vqlearn import runtime
from vqlearn.build import (build_datasets, build_loss, build_model, check_data_fits_model, check_images_fit_model,
                           check_resumable, learning_rate, resolve_in_channels, saved_config)
from vqlearn.checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked, save_atomic, write_failure
from vqlearn.codebook import (CodebookUsage, QuantizerInputs, codebook_metrics, init_codebook_from_data,
                              restart_dead_codes)
from vqlearn.config import Config, config_to_dict
from vqlearn.data import EpochLoader
from vqlearn.errors import ConfigError, DataError, NonFiniteLossError
from vqlearn.evaluate import evaluate_model
from vqlearn.history import History
from vqlearn.images import denormalize, first_images, image_of
from vqlearn.metrics import psnr
from vqlearn.models import Tokenizer


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
        t = config.train
        self.rank, self.world_size = runtime.world()
        self.is_main = self.rank == 0
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.callback = callback
        self.device = runtime.pick_device(t.device, runtime.distributed_env()[2])
        self.amp_dtype = runtime.autocast_dtype(t.precision, self.device)
        self.channels_last = t.channels_last if t.channels_last is not None else self.device.type == "cuda"

        # Data first (needs no randomness), then the weights from the seed.
        if train_data is None:
            check_data_fits_model(config)
            train_data, default_val = build_datasets(config, with_val=t.eval_batches > 0 or t.sample_every > 0)
            val_data = val_data if val_data is not None else default_val
        if len(train_data) == 0:
            raise DataError(f"the training data (data.name={config.data.name}) has no images")
        check_images_fit_model(config, image_of(train_data[0]))
        self.config = config = resolve_in_channels(config, train_data)
        self.train_data, self.val_data = train_data, val_data
        self.batches = EpochLoader(train_data, t.batch_size, t.seed, self.rank, self.world_size,
                                   config.data.num_workers, pin_memory=self.device.type == "cuda")
        if self.batches.sampler.shard_size < t.batch_size:
            raise ConfigError(
                f"config key `train.batch_size`: {t.batch_size} is more than the {self.batches.sampler.shard_size} "
                f"training images each of the {self.world_size} process(es) gets; use a smaller batch"
            )

        runtime.seed_everything(t.seed)
        self.model = build_model(config).to(self.device)
        self.loss_fn = build_loss(config).to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
            self.loss_fn.to(memory_format=torch.channels_last)
        self.discriminator = getattr(self.loss_fn, "discriminator", None)
        self.model_for_step: nn.Module = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model_for_step = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if t.compile:
            self.model_for_step = torch.compile(self.model_for_step)
        runtime.seed_everything(t.seed + self.rank)  # ranks now draw different randomness (if any is drawn)

        lr = learning_rate(config, 0, self.world_size)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=lr, betas=t.betas, weight_decay=t.weight_decay)
        self.opt_d = None
        if self.discriminator is not None:
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=t.betas,
                                          weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        # Codebook statistics: one accumulator per quantizer for the log, one for restarts.
        quantizers = self.model.quantizers
        self.levels = self.model.level_names
        self.usage_log = [CodebookUsage(q.num_indices, self.device) for q in quantizers]
        self.usage_restart = [CodebookUsage(q.num_indices, self.device) for q in quantizers]
        self.codebook_rng = torch.Generator(device=self.device).manual_seed(t.seed)
        self.quantizer_inputs = QuantizerInputs(quantizers)

        # Position and bookkeeping.
        self.step = 0
        metrics_path = self.out_dir / "metrics.jsonl" if self.out_dir is not None and self.is_main else None
        self.history = History(metrics_path)
        self.restarts = 0
        self.saved_step = -1
        self.sample_paths: list[Path] = []
        self.sample_batch = first_images(val_data if val_data is not None else train_data, t.num_samples)

    # -- small helpers -------------------------------------------------------

    def autocast(self):
        return runtime.autocast(self.device, self.amp_dtype)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def check_finite(self, loss: torch.Tensor, log: dict, what: str) -> None:
        (bad,) = runtime.any_rank([not bool(torch.isfinite(loss.detach()))], self.device)
        if bad:
            values = ", ".join(f"{k}={float(v):.4g}" for k, v in log.items())
            raise NonFiniteLossError(
                f"non-finite {what} loss at step {self.step + 1} (global_step {self.step}); stopped before "
                f"updating any weight{self.checkpoint_note()}. Losses: {values}. Try a lower train.lr, "
                f"train.grad_clip, or train.precision=fp32"
            )

    def checkpoint_note(self) -> str:
        """Where the last good checkpoint is, for an error message: one that exists, with its step."""
        if self.out_dir is None:
            return " (no output directory, so no checkpoint)"
        path = self.out_dir / "last.ckpt"
        if self.saved_step >= 0 and path.is_file():
            return f"; the last checkpoint, {path}, holds step {self.saved_step} (resume from it with --resume)"
        if path.is_file():
            return f"; {path} is the checkpoint from before this run"
        return f"; no checkpoint was written yet (train.ckpt_every={self.config.train.ckpt_every})"

    def optimizer_step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params) -> torch.Tensor | None:
        """Backward, optional gradient clipping, step. Returns the gradient norm when clipping."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if optimizer is self.opt_d:
            runtime.average_gradients(self.discriminator)  # the discriminator is not wrapped in DDP
        norm = None
        if self.config.train.grad_clip is not None:
            self.scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.train.grad_clip)
        self.scaler.step(optimizer)
        return norm

    # -- one step -------------------------------------------------------------

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One autoencoder step and, for VQ-GAN, one discriminator step. Returns the step's log."""
        x = self.to_device(x)
        lr = learning_rate(self.config, self.step, self.world_size)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr
        self.model.train()
        self.loss_fn.train()
        restart_now = self.restart_due()
        with self.quantizer_inputs.capture(restart_now):  # restarts draw from this step's encoder outputs
            out, log = self.autoencoder_step(x)
        if self.loss_fn.disc_active(self.step):
            log.update(self.discriminator_step(x, out.reconstruction))
        self.scaler.update()
        log.update(self.track_codes(out.codes, restart_now))
        with torch.no_grad():
            log["train/psnr"] = psnr(denormalize(x), denormalize(out.reconstruction)).mean()
            for name, perplexity in zip(self.levels, out.perplexity):
                log[f"train/batch_perplexity{name}"] = perplexity.detach()
        log["train/lr"] = torch.tensor(lr)
        self.step += 1
        return log

    def autoencoder_step(self, x: torch.Tensor):
        """Forward, the autoencoder's loss, backward and one Adam step. Returns ``(VQOutput, log)``."""
        with self.autocast(), runtime.frozen(self.discriminator):  # the GAN term must not train the discriminator
            out = self.model_for_step(x)
            loss, log = self.loss_fn.generator_loss(out.quant_loss, x, out.reconstruction, self.step,
                                                    self.model.get_last_layer())
        self.check_finite(loss, log, "autoencoder")
        grad_norm = self.optimizer_step(self.opt_g, loss, self.model.parameters())
        if grad_norm is not None:
            log["train/grad_norm"] = grad_norm.detach()
        return out, log

    def discriminator_step(self, x: torch.Tensor, reconstruction: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step of the discriminator on real ``x`` and the detached ``reconstruction``."""
        with self.autocast():
            loss, log = self.loss_fn.discriminator_loss(x, reconstruction.detach(), self.step)
        self.check_finite(loss, log, "discriminator")
        self.optimizer_step(self.opt_d, loss, self.discriminator.parameters())
        runtime.broadcast_batchnorm_stats(self.discriminator)
        return log

    def track_codes(self, codes: list[torch.Tensor], restart_now: bool) -> dict[str, torch.Tensor]:
        """Count this step's codes; restart dead codes when due. Returns the restart count if any."""
        for level_codes, usage_log, usage_restart in zip(codes, self.usage_log, self.usage_restart):
            usage_log.update(level_codes)
            usage_restart.update(level_codes)
        if not restart_now:
            return {}
        return {"train/codes_restarted": torch.tensor(float(self.restart_codes()))}

    # -- codebooks -----------------------------------------------------------

    def restart_due(self) -> bool:
        """Restart dead codes every ``restart_every`` steps, except in the run's last ``restart_every`` steps.

        A restarted code is one the decoder has never seen; restarting it so late
        that the decoder cannot learn it would leave a worse model. The cut-off
        counts from ``train.max_steps`` (the planned run), so a run split by
        ``--max-steps`` and ``--resume`` restarts at the same steps as one that was not.
        """
        every = self.config.quantizer.restart_every
        done = self.step + 1
        return every > 0 and done % every == 0 and done <= self.config.train.max_steps - every

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
        batch = max(self.config.train.batch_size, 64)  # no gradients here: bigger batches are cheap
        for level, quantizer in enumerate(self.model.quantizers):
            chunks, count, start = [], 0, 0
            needed = max(q.init_vectors, quantizer.codebook.shape[0])
            while count < needed and start < len(order):
                x = torch.stack([image_of(self.train_data[int(i)]) for i in order[start : start + batch]])
                start += batch
                with self.quantizer_inputs.capture(), self.autocast():
                    self.model(self.to_device(x))
                z = self.quantizer_inputs.captured[level].float()
                chunks.append(z)
                count += z.shape[0] * z.shape[2] * z.shape[3]
            init_codebook_from_data(quantizer, torch.cat(chunks), q.init, q.init_iters, self.codebook_rng)
        self.quantizer_inputs.clear()

    @torch.no_grad()
    def restart_codes(self) -> int:
        """Restart each quantizer's codes unused since the last restart (counts summed over ranks)."""
        q = self.config.quantizer
        restarted = 0
        for quantizer, usage, z in zip(self.model.quantizers, self.usage_restart, self.quantizer_inputs.captured):
            usage.all_reduce()
            restarted += restart_dead_codes(quantizer, z.float(), usage.counts, q.restart_min_count, self.codebook_rng)
            usage.reset()
        self.quantizer_inputs.clear()
        self.restarts += restarted
        return restarted

    # -- logging, evaluation, samples -----------------------------------------

    def log_row(self, seconds: float, steps_per_sec: float) -> dict:
        """One history row: the interval's averaged step logs and the codebook statistics since the last row."""
        row = {"step": self.step, "epoch": self.batches.epoch, "time": round(seconds, 3)}
        row.update(self.history.interval_means())
        if "train/codes_restarted" in row:  # a count, not an average
            row["train/codes_restarted"] = self.restarts
        for acc in self.usage_log:
            acc.all_reduce()
        row.update(codebook_metrics(self.usage_log, self.levels, prefix="train/"))
        for acc in self.usage_log:
            acc.reset()
        row["steps_per_sec"] = round(steps_per_sec, 3)
        row["images_per_sec"] = round(steps_per_sec * self.config.train.batch_size * self.world_size, 1)
        return row

    def evaluate(self) -> dict:
        """Held-out metrics on ``eval_batches`` batches of the validation set (rank 0 only)."""
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
        try:
            save_image(reconstruction_grid(self.sample_batch, reconstruction.float(), nrow=8), path)
        except OSError as error:
            raise write_failure(path, error, "sample grid") from None
        self.sample_paths.append(path)

    def record(self, row: dict, bar) -> bool:
        """Keep a history row (and append it to ``metrics.jsonl``), show it, and ask the callback."""
        self.history.append(row)
        if bar is not None:
            shown = {"loss": row.get("train/total_loss"), "psnr": row.get("train/psnr"),
                     "usage": row.get("train/codebook_usage")}
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if v is not None}, refresh=False)
        return bool(self.callback(row)) if self.callback is not None else False

    # -- checkpoints ---------------------------------------------------------

    def checkpoint_state(self) -> dict:
        """Everything needed to continue exactly (see :meth:`load_state`)."""
        rng = runtime.rng_state()
        if self.world_size > 1:
            gathered = [None] * self.world_size
            dist.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        data_position, loader_rng = self.batches.state()
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
            "data": data_position,
            "loader_rng": loader_rng,
            "codebook_usage": {
                "log": [u.counts.clone() for u in self.usage_log],
                "restart": [u.counts.clone() for u in self.usage_restart],
                "restarts": self.restarts,
            },
            "interval": self.history.state(),
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``out_dir/last.ckpt`` (rank 0; every rank must call it). Returns its path."""
        if self.out_dir is None:
            return None
        path = self.out_dir / "last.ckpt"
        if self.saved_step == self.step:
            return path if self.is_main else None
        finite = bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all())
        (bad,) = runtime.any_rank([not finite], self.device)
        if bad:  # keep the last finite checkpoint as last.ckpt
            raise NonFiniteLossError(f"the weights became non-finite by step {self.step}; not saving them"
                                     f"{self.checkpoint_note()}. Try a lower train.lr, train.grad_clip, "
                                     f"or train.precision=fp32")
        state = self.checkpoint_state()  # every rank takes part (RNG gather)
        if not self.is_main:
            self.saved_step = self.step
            return None
        save_atomic(state, path)
        self.saved_step = self.step
        return path

    RESUME_KEYS = ("step", "config", "model", "optimizers", "scaler", "rng", "codebook_rng", "data", "loader_rng",
                   "codebook_usage", "interval")

    def load_state(self, state: dict, source: str = "checkpoint") -> None:
        """Continue from a :meth:`checkpoint_state` dict."""
        saved_config(state, source)  # a vqlearn checkpoint with a usable config
        missing = [key for key in self.RESUME_KEYS if key not in state]
        if missing:
            raise CheckpointError(f"cannot resume from {source}: it has no {', '.join(missing)} (a checkpoint "
                                  f"for inference only, e.g. a shipped .pt?); load it with vqlearn.build.load_model, "
                                  f"or train into a new --out")
        check_resumable(self.config, state)
        load_state_dict_checked(self.model, state["model"], "checkpoint `model`")
        if self.discriminator is not None:
            load_state_dict_checked(self.discriminator, state["discriminator"], "checkpoint `discriminator`")
            self.opt_d.load_state_dict(state["optimizers"]["discriminator"])
        self.opt_g.load_state_dict(state["optimizers"]["autoencoder"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = self.saved_step = state["step"]
        self.batches.load_state(state["data"], state["loader_rng"])
        rngs = state["rng"]
        runtime.set_rng_state(rngs[self.rank] if len(rngs) == self.world_size else rngs[0])
        self.codebook_rng.set_state(state["codebook_rng"])
        usage = state["codebook_usage"]
        for accumulators, saved in ((self.usage_log, usage["log"]), (self.usage_restart, usage["restart"])):
            for acc, counts in zip(accumulators, saved):
                acc.counts = counts.to(self.device).clone()
        self.restarts = usage["restarts"]
        self.history.load_state(state["interval"], self.device)

    def resume(self) -> bool:
        """Load ``out_dir/last.ckpt`` if there is one (and trim ``metrics.jsonl`` to it). True if loaded."""
        if self.out_dir is None:
            raise ValueError("resume=True needs out_dir: the directory whose last.ckpt to continue from")
        path = self.out_dir / "last.ckpt"
        if not path.is_file():
            if self.is_main:
                warnings.warn(f"--resume: no checkpoint in {self.out_dir} (no last.ckpt); starting a fresh run",
                              stacklevel=2)
            self.history.truncate(0)  # rows of a run that never saved a checkpoint
            return False
        self.load_state(load_checkpoint(path, map_location="cpu"), str(path))  # RNG states must stay on the CPU
        self.history.truncate(self.step)
        return True

    # -- the loop ------------------------------------------------------------

    def run(self, max_steps: int | None = None, max_seconds: float | None = None) -> TrainResult:
        """Train until ``max_steps`` (total, counting resumed steps) or ``max_seconds`` of this call."""
        t = self.config.train
        max_steps = t.max_steps if max_steps is None else max_steps  # 0 is a request: save and evaluate step 0
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
            with self._compile_settings():
                while self.step < max_steps:
                    self.history.add(self.train_step(self.batches.next_batch()), self.device)
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
                    out_of_time, stop_callback = runtime.any_rank([out_of_time, stop_callback], self.device)
                    if out_of_time or stop_callback:
                        stopped = "max_seconds" if out_of_time else "callback"
                        break
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        # Each rank's last forward pass updated its own BatchNorm statistics: keep rank 0's everywhere.
        runtime.broadcast_batchnorm_stats(self.model)
        if self.discriminator is not None:
            runtime.broadcast_batchnorm_stats(self.discriminator)
        if self.history.steps:  # a partial interval at the end
            now = time.perf_counter()
            self.record(self.log_row(seconds, (self.step - interval_step) / max(now - interval_start, 1e-9)), None)
        final = self.evaluate() if self.is_main else {}
        if final and self.history.rows:
            self.history.update_last(final)
        checkpoint = self.save_checkpoint()
        saved_samples = self.sample_paths and self.sample_paths[-1].stem == f"step_{self.step:06d}"
        if self.out_dir is not None and self.is_main and t.sample_every and not saved_samples:
            self.save_samples()
        return TrainResult(self.model, self.loss_fn, self.config, self.history.rows, final, self.step, stopped, seconds,
                           self.out_dir, checkpoint, self.sample_paths)

    def _compile_settings(self):
        """With ``train.compile`` and a discriminator: compiled backward passes keep their buffers.

        The adaptive GAN weight differentiates the loss twice (``retain_graph=True``), which
        a compiled backward allows only without donated buffers. The setting is torch's,
        process-wide, so it is changed for the loop only and restored afterwards.
        """
        if not (self.config.train.compile and self.discriminator is not None):
            return contextlib.nullcontext()
        from torch._functorch import config as functorch_config

        return functorch_config.patch(donated_buffer=False)

    def _progress_bar(self, max_steps: int):
        if not self.progress or not self.is_main:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=max_steps, initial=self.step, desc=self.config.family, dynamic_ncols=True)

    def close(self) -> None:
        """Remove the trainer's hooks from the model, so the model can outlive the trainer (and be pickled)."""
        self.quantizer_inputs.remove()
