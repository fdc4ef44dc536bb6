"""An autoregressive prior over code grids: a small GPT that generates images as token sequences.

A trained tokenizer turns an image into a grid of integers ``(h, w)``; this module models those
grids. The grid is read in raster order (row by row, left to right) into a sequence of
``T = h * w`` tokens, and a decoder-only transformer learns
``p(c_1, ..., c_T | y) = prod_t p(c_t | c_<t, y)``, where ``y`` is an optional class label. To
generate, sample the tokens one at a time and decode the grid with the tokenizer. This is the
second stage of VQ-VAE {PixelCNN prior, van den Oord et al. 2017 §3.2} and of VQ-GAN
{Esser et al. 2021 §3.2, a GPT-2-style transformer, Radford et al. 2019}, written like
karpathy's nanoGPT ``model.py``: a config dataclass, causal self-attention with
``F.scaled_dot_product_attention``, pre-norm blocks, weight tying.

The input sequence is ``[s, c_1, ..., c_{T-1}]``: a start token ``s`` (the class token when the
prior is class-conditional, one shared start token otherwise) followed by the codes shifted right
by one, so output ``t`` predicts ``c_t`` from ``s, c_1 .. c_{t-1}`` (taming's ``c_indices`` are
prepended the same way, taming/models/cond_transformer.py).

Training (:func:`train_prior`) keeps the trainer's conventions: a config (:class:`PriorTrainConfig`,
read from YAML by :func:`load_prior_config`), ``metrics.jsonl`` through
:class:`vqlearn.history.History`, atomic checkpoints (:func:`vqlearn.checkpoint.save_atomic`) and
an exact resume; the loop itself is its own, because :class:`vqlearn.trainer.Trainer` is built
around an image autoencoder (its data are images, its step a reconstruction, its statistics
codebook usage).

Book: chapter "Generating images from tokens".
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from dataclasses import field
from typing import Annotated
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from annotated_types import Ge, Le
from pydantic.dataclasses import dataclass

from vqlearn import runtime
from vqlearn.build import warmup_cosine
from vqlearn.checkpoint import load_checkpoint, load_state_dict_checked, save_atomic
from vqlearn.config import (SECTION, Bool, Float, Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat,
                            PositiveInt, apply_overrides, validate)
from vqlearn.errors import ConfigError
from vqlearn.history import History

# ---------------------------------------------------------------------------
# Sequences: raster order
# ---------------------------------------------------------------------------


def flatten_codes(codes: torch.Tensor) -> torch.Tensor:
    """Raster order: ``(B, h, w) -> (B, h * w)``, row by row, each row left to right."""
    if codes.dim() != 3:
        raise ValueError(f"`codes` must be a (B, h, w) grid of code indices, got shape {tuple(codes.shape)}")
    return codes.reshape(codes.shape[0], -1)


def unflatten_codes(sequence: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`flatten_codes`: ``(B, h * w) -> (B, h, w)``."""
    if sequence.dim() != 2 or sequence.shape[1] != h * w:
        raise ValueError(f"`sequence` must have shape (B, {h * w}) for a {h}x{w} grid, got {tuple(sequence.shape)}")
    return sequence.reshape(sequence.shape[0], h, w)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


@dataclass(config=SECTION)
class PriorConfig:
    """The transformer's sizes (nanoGPT's ``GPTConfig``, plus the class token).

    ``vocab_size``: the tokenizer's codebook size K; ``block_size``: tokens per image ``h * w``;
    ``num_classes``: 0 for an unconditional prior, else the number of class tokens.
    """

    vocab_size: PositiveInt = 1024
    block_size: PositiveInt = 49
    num_classes: NonNegativeInt = 0
    n_layer: PositiveInt = 4
    n_head: PositiveInt = 4
    n_embd: PositiveInt = 128
    dropout: Fraction = 0.0
    bias: Bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ConfigError(f"config key `model.n_embd`: {self.n_embd} is not divisible by "
                              f"model.n_head={self.n_head}; choose n_embd = n_head * head size")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` sees only positions ``<= t``.

    ``(B, T, n_embd) -> (B, T, n_embd)``; the ``(T, T)`` attention matrix per head is the cost
    that makes pixel-level transformers impractical (chapter "Generating images from tokens").
    """

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head size)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """``(B, T, n_embd) -> (B, T, n_embd)``: expand 4x, GELU, project back."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block (GPT-2): ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CodePrior(nn.Module):
    """A GPT over code sequences: ``codes (B, T)``, ``labels (B,)`` -> ``logits (B, T, vocab_size)``.

    ``logits[:, t]`` is the distribution of ``codes[:, t]`` given the start/class token and
    ``codes[:, :t]``. The output layer shares its weight with the code embedding (weight tying,
    as in GPT-2 and nanoGPT).
    """

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)  # codes
        self.start_emb = nn.Embedding(max(config.num_classes, 1), config.n_embd)  # class tokens, or one start
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 n_layer)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding/output weight once."""
        return sum(p.numel() for p in self.parameters())

    def start_tokens(self, batch: int, labels: torch.Tensor | None, device) -> torch.Tensor:
        """``(B,)`` indices into ``start_emb``: the labels, or zeros for an unconditional prior."""
        if self.config.num_classes == 0:
            if labels is not None:
                raise ValueError("`labels`: this prior is unconditional (model.num_classes=0); pass labels=None")
            return torch.zeros(batch, dtype=torch.long, device=device)
        if labels is None or labels.shape != (batch,):
            raise ValueError(f"`labels`: this prior is class-conditional; pass a (B,) = ({batch},) tensor of "
                             f"class indices in [0, {self.config.num_classes})")
        if int(labels.min()) < 0 or int(labels.max()) >= self.config.num_classes:
            raise ValueError(f"`labels`: class indices must be in [0, {self.config.num_classes}), got values in "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return labels.long()

    def features(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, T)`` -> the last block's normalised output ``(B, T, n_embd)``, before the output layer."""
        B, T = codes.shape
        if T > self.config.block_size:
            raise ValueError(f"`codes`: {T} tokens, more than model.block_size={self.config.block_size}")
        start = self.start_emb(self.start_tokens(B, labels, codes.device))[:, None]  # (B, 1, C)
        x = torch.cat([start, self.tok_emb(codes[:, : T - 1])], dim=1)  # (B, T, C): start, then codes shifted right
        x = self.drop(x + self.pos_emb(torch.arange(T, device=codes.device)))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``codes (B, T)`` with ``T <= block_size`` -> ``logits (B, T, vocab_size)`` (next-code logits).

        The input is the start/class token followed by ``codes[:, :-1]``, so ``logits[:, t]`` never
        sees ``codes[:, t]`` or anything after it.
        """
        return self.head(self.features(codes, labels))

    def loss(self, codes: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy in nats per token of ``codes (B, T)``; divide by ln 2 for bits."""
        logits = self(codes, labels)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))

    @torch.no_grad()
    def sample(self, num: int, labels: torch.Tensor | None = None, temperature: float = 1.0,
               top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` code sequences ``(num, block_size)``, one token at a time.

        Each step takes the logits of the next position, divides them by ``temperature``
        (< 1: sharper, > 1: flatter), keeps the ``top_k`` largest (None: all) and draws from the
        softmax with ``generator`` (same generator state, same samples).
        """
        if temperature <= 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.config.vocab_size:
            raise ValueError(f"`top_k` must be in [1, {self.config.vocab_size}] or None, got {top_k}")
        device = self.pos_emb.weight.device
        codes = torch.zeros(num, 0, dtype=torch.long, device=device)
        for _ in range(self.config.block_size):
            # forward() drops the last input code, so append a placeholder for the position asked about
            hidden = self.features(torch.cat([codes, codes.new_zeros(num, 1)], dim=1), labels)[:, -1]
            logits = self.head(hidden) / temperature  # (num, vocab_size): the next code's logits
            if top_k is not None:
                kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            codes = torch.cat([codes, nxt], dim=1)
        return codes


@torch.no_grad()
def bits_per_token(model: CodePrior, codes: torch.Tensor, labels: torch.Tensor | None = None,
                   batch_size: int = 250) -> float:
    """The prior's average negative log2-likelihood per token of ``codes (N, T)`` (eval mode)."""
    was_training = model.training
    model.eval()
    device = model.pos_emb.weight.device
    codes = codes.to(device)
    labels = labels.to(device) if labels is not None else None
    total = 0.0
    for i in range(0, len(codes), batch_size):
        y = labels[i : i + batch_size] if labels is not None else None
        total += float(model.loss(codes[i : i + batch_size], y)) * len(codes[i : i + batch_size])
    model.train(was_training)
    return total / len(codes) / math.log(2)


# ---------------------------------------------------------------------------
# Tokenizing a dataset once
# ---------------------------------------------------------------------------


@torch.no_grad()
def encode_dataset(tokenizer: nn.Module, dataset, batch_size: int = 250) -> torch.Tensor:
    """Every image of ``dataset`` (items ``(C, H, W)``) -> its code grid: ``(N, h, w)`` int64."""
    tokenizer.eval()
    grids = []
    for i in range(0, len(dataset), batch_size):
        x = torch.stack([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))])
        grids.append(tokenizer.tokenize(x))
        if grids[0].dim() != 3:
            raise ValueError(f"the prior models one (h, w) grid of codes per image; this tokenizer gives codes of shape "
                             f"{tuple(grids[0].shape[1:])} (a residual quantizer's (depth, h, w)): use a single-level "
                             f"quantizer (quantizer.kind vq, ema, fsq or lfq)")
    return torch.cat(grids)


def file_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of the file's SHA-256: names a cache after the weights it came from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def cached_codes(tokenizer_path: str | os.PathLike, split: str, cache_dir: str | os.PathLike = "runs/codes"
                 ) -> torch.Tensor:
    """The code grids ``(N, h, w)`` of the tokenizer's dataset split, computed once and cached.

    The cache file ``cache_dir/<checkpoint name>-<digest>-<split>.pt`` is named after the checkpoint's
    contents, so retrained weights never reuse stale codes. Written atomically.
    """
    from vqlearn.build import load_model
    from vqlearn.data import build_dataset

    tokenizer_path = Path(tokenizer_path)
    cache = Path(cache_dir) / f"{tokenizer_path.stem}-{file_digest(tokenizer_path)}-{split}.pt"
    if cache.is_file():
        return load_checkpoint(cache)["codes"]
    model, config = load_model(tokenizer_path)
    d = config.data
    dataset = build_dataset(d.name, split, augment=False, image_size=d.image_size, root=d.root, download=d.download)
    codes = encode_dataset(model, dataset)
    save_atomic({"codes": codes, "tokenizer": str(tokenizer_path), "split": split}, cache)
    return codes


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


@dataclass(config=SECTION)
class PriorTrainConfig:
    """How :func:`train_prior` trains (the ``train`` section of a prior config).

    AdamW with ``weight_decay`` on the matrices only, linear warmup then a cosine decay to
    ``min_lr_ratio * lr`` at ``max_steps``, gradient clipping at ``grad_clip``.
    """

    batch_size: PositiveInt = 64
    lr: PositiveFloat = 2e-3
    max_steps: PositiveInt = 1000
    warmup_steps: NonNegativeInt = 50
    min_lr_ratio: Annotated[Float, Ge(0), Le(1)] = 0.1
    weight_decay: NonNegativeFloat = 0.1
    betas: tuple[Fraction, Fraction] = (0.9, 0.95)
    grad_clip: PositiveFloat = 1.0
    seed: NonNegativeInt = 0
    log_every: PositiveInt = 50
    ckpt_every: PositiveInt = 500


@dataclass(config=SECTION)
class PriorSetup:
    """A whole prior config: the tokenizer checkpoint whose codes it models, the model, the training."""

    tokenizer: str = "checkpoints/vqvae_mnist.pt"
    model: PriorConfig = field(default_factory=PriorConfig)
    train: PriorTrainConfig = field(default_factory=PriorTrainConfig)


def load_prior_config(path: str | os.PathLike | None = None, overrides=()) -> PriorSetup:
    """A :class:`PriorSetup` from a YAML file (sections ``tokenizer``, ``model``, ``train``) and
    ``"section.key=value"`` overrides (values read as YAML scalars)."""
    raw = yaml.safe_load(Path(path).read_text()) if path is not None else {}
    return validate(PriorSetup, apply_overrides(raw or {}, overrides))


def prior_learning_rate(t: PriorTrainConfig, step: int) -> float:
    """Linear warmup over ``warmup_steps``, then a half cosine down to ``min_lr_ratio * lr`` at ``max_steps``."""
    return warmup_cosine(t.lr, step, t.warmup_steps, t.max_steps, t.min_lr_ratio)


def batch_indices(num: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The examples of step ``step``: batch ``step mod (num // batch_size)`` of a seeded permutation per epoch.

    A function of the step alone, so a resumed run reads exactly the batches a straight run would.
    """
    per_epoch = num // batch_size
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[k * batch_size : (k + 1) * batch_size]


@dataclasses.dataclass
class PriorRun:
    """What :func:`train_prior` returns: the model, the history rows, the step reached and the seconds spent."""

    model: CodePrior
    history: list[dict]
    step: int
    seconds: float
    checkpoint: Path | None = None


def _optimizer(model: CodePrior, t: PriorTrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices and embeddings; not biases, norms
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=t.lr, betas=t.betas)


def train_prior(setup: PriorSetup, codes: torch.Tensor, labels: torch.Tensor | None = None,
                val: tuple[torch.Tensor, torch.Tensor | None] | None = None, out_dir: str | os.PathLike | None = None,
                max_steps: int | None = None, resume: bool = False, progress: bool = False,
                device: str | torch.device = "cpu") -> PriorRun:
    """Train a :class:`CodePrior` on code sequences ``codes (N, T)`` (class ``labels (N,)`` if conditional).

    ``val = (codes, labels)``: held-out sequences whose bits per token are logged (``val/bits_per_token``)
    at every ``log_every``. ``out_dir``: ``metrics.jsonl`` and ``last.ckpt`` (every ``ckpt_every`` steps
    and at the end, written atomically); ``resume=True`` continues from ``out_dir/last.ckpt`` exactly
    (weights, optimiser, RNG, step). ``max_steps``: stop there (default ``train.max_steps``).
    ``device``: where the model trains (the sequences are moved there); the returned model stays on it.
    """
    t = setup.train
    stop = t.max_steps if max_steps is None else max_steps
    if codes.dim() != 2 or codes.shape[1] != setup.model.block_size:
        raise ValueError(f"`codes` must be (N, model.block_size) = (N, {setup.model.block_size}) sequences; "
                         f"got {tuple(codes.shape)} (flatten (N, h, w) grids with flatten_codes)")
    if len(codes) < t.batch_size:
        raise ConfigError(f"config key `train.batch_size`: {t.batch_size} is more than the {len(codes)} sequences")
    runtime.seed_everything(t.seed)
    device = torch.device(device)
    model = CodePrior(setup.model).to(device)
    codes = codes.to(device)
    labels = labels.to(device) if labels is not None else None
    if val is not None:
        val = (val[0].to(device), val[1].to(device) if val[1] is not None else None)
    optimizer = _optimizer(model, t)
    out = Path(out_dir) if out_dir is not None else None
    history = History(out / "metrics.jsonl" if out is not None else None)
    step, seconds = 0, 0.0
    if resume:
        if out is None or not (out / "last.ckpt").is_file():
            raise ConfigError(f"resume: no checkpoint at {out}/last.ckpt; train without resume first")
        state = load_checkpoint(out / "last.ckpt")
        load_state_dict_checked(model, state["model"], f"checkpoint {out / 'last.ckpt'}")
        optimizer.load_state_dict(state["optimizer"])
        runtime.set_rng_state(state["rng"])
        step, seconds = state["step"], state["seconds"]
        history.truncate(step)
        history.load_state(state["history"], device)

    def save() -> Path:
        path = out / "last.ckpt"
        save_atomic({"step": step, "seconds": seconds, "setup": dataclasses.asdict(setup),
                     "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "rng": runtime.rng_state(), "history": history.state()}, path)
        return path

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stop, initial=step, desc="prior", leave=False)
    start = time.perf_counter() - seconds
    checkpoint = None
    model.train()
    while step < stop:
        idx = batch_indices(len(codes), t.batch_size, t.seed, step).to(device)
        for group in optimizer.param_groups:
            group["lr"] = prior_learning_rate(t, step)
        loss = model.loss(codes[idx], labels[idx] if labels is not None else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        step += 1
        history.add({"train/bits_per_token": loss.detach() / math.log(2), "train/grad_norm": norm}, device)
        if step % t.log_every == 0 or step == stop:
            seconds = time.perf_counter() - start
            row = {"step": step, "time": round(seconds, 3), **history.interval_means(),
                   "train/lr": prior_learning_rate(t, step - 1)}
            if val is not None:
                row["val/bits_per_token"] = bits_per_token(model, *val)
            history.append(row)
            if bar is not None:
                bar.set_postfix({k.split("/")[-1]: f"{v:.3f}" for k, v in row.items() if "bits" in k}, refresh=False)
        if bar is not None:
            bar.update(1)
        if out is not None and (step % t.ckpt_every == 0 or step == stop):
            seconds = time.perf_counter() - start
            checkpoint = save()
    if bar is not None:
        bar.close()
    model.eval()
    return PriorRun(model, history.rows, step, time.perf_counter() - start, checkpoint)


def load_prior(path: str | os.PathLike) -> tuple[CodePrior, PriorSetup]:
    """``(model, setup)`` from a checkpoint written by :func:`train_prior`, in eval mode."""
    state = load_checkpoint(path)
    raw = state["setup"]
    setup = validate(PriorSetup, raw)
    model = CodePrior(setup.model)
    load_state_dict_checked(model, state["model"], f"checkpoint {path}")
    return model.eval(), setup
