"""Typed training configuration: dataclasses validated on load.

A config has five sections, each a dataclass below::

    model:      family (vqvae | vqvae2 | vqgan) and that family's constructor arguments
    data:       which dataset, where it lives, image size
    quantizer:  the codebook (vq | ema, beta, ...) and the anti-collapse tools
    loss:       reconstruction + codebook loss, or VQ-GAN's loss with a discriminator
    train:      optimiser, steps, precision, logging and checkpoint intervals

:func:`load_config` reads a YAML file, applies ``key=value`` overrides (values
parsed as YAML scalars: ``train.lr=1e-3``, ``model.ddconfig.ch_mult=[1,2]``)
and validates the result: an unknown key, a value of the wrong type or an
invalid choice is a :class:`ConfigError` that names the dotted key.

``None`` in a field documented as "None: the family's default" is resolved
when the model is built, so a config states only what it changes.

Book: chapter "Training a VQ-VAE" (the recipe configs), chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from vqlearn.models.vqgan import DDConfig


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the fix."""


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


@dataclass
class VQVAEModel:
    """:class:`vqlearn.models.VQVAE` (seed 000 §1). Seed values: dim 256, K 512."""

    family: str = "vqvae"
    in_channels: int | None = None  # None: the dataset's channel count
    dim: int = 256
    K: int = 512
    batchnorm: bool = True


@dataclass
class VQVAE2Model:
    """:class:`vqlearn.models.VQVAE2` (seed 000 §2). ImageNet table: 128 / 2 / 64 / 64 / 512."""

    family: str = "vqvae2"
    in_channels: int | None = None
    channel: int = 128
    n_res_block: int = 2
    n_res_channel: int = 64
    embed_dim: int = 64
    n_embed: int = 512


@dataclass
class VQGANModel:
    """:class:`vqlearn.models.VQGAN` (seed 000 §VQ-GAN). ``ddconfig`` is taming's, except
    ``in_channels`` / ``out_ch``, which follow ``model.in_channels``."""

    family: str = "vqgan"
    in_channels: int | None = None
    n_embed: int = 1024
    embed_dim: int = 256
    ddconfig: DDConfig = field(default_factory=DDConfig)


MODEL_FAMILIES: dict[str, type] = {"vqvae": VQVAEModel, "vqvae2": VQVAE2Model, "vqgan": VQGANModel}
ModelConfig = Union[VQVAEModel, VQVAE2Model, VQGANModel]


@dataclass
class DataConfig:
    """What :func:`vqlearn.data.build_dataset` is called with."""

    name: str = "mnist"
    root: str | None = None  # folder / downloaded datasets: where the files are
    image_size: int | None = None  # None: the dataset's own size
    download: bool = False
    augment: bool | None = None  # None: the dataset's default
    train_split: str = "train"
    val_split: str = "test"
    num_workers: int = 0  # 0 keeps CPU runs deterministic and exactly resumable


@dataclass
class QuantizerConfig:
    """The codebook and the anti-collapse tools (chapter "Codebook and commitment losses").

    ``kind``: ``vq`` (learned by gradients) or ``ema``; None: the family's
    (VQ-VAE-2: ema, others: vq). ``decay`` / ``eps`` are EMA options;
    ``legacy`` / ``l2_normalize`` / ``lookup_dim`` options of ``vq``.

    ``init``: ``kmeans`` or ``samples`` initialises every code from encoder
    outputs before the first step (about ``init_vectors`` of them);
    ``restart_every > 0`` moves codes chosen fewer than ``restart_min_count``
    times since the last restart onto random encoder outputs.
    """

    kind: str | None = None
    beta: float = 0.25
    decay: float | None = None  # ema only; None: 0.99
    eps: float | None = None  # ema only; None: 1e-5
    legacy: bool | None = None  # vq only; None: False
    l2_normalize: bool | None = None  # vq only
    lookup_dim: int | None = None  # vq only
    init: str | None = None  # None | kmeans | samples
    init_vectors: int = 4096
    init_iters: int = 10
    restart_every: int = 0
    restart_min_count: int = 1


QUANTIZER_KINDS = ("vq", "ema")
INIT_METHODS = ("kmeans", "samples")
EMA_ONLY = ("decay", "eps")
VQ_ONLY = ("legacy", "l2_normalize", "lookup_dim")


@dataclass
class LossConfig:
    """``kind="vq"``: ``rec_loss(x, x_hat) + codebook_weight * quant_loss`` (VQ-VAE, VQ-VAE-2).
    ``kind="vqgan"``: :class:`vqlearn.losses.VQLPIPSWithDiscriminator` with the
    fields below (taming's ``lossconfig`` names). None: the family's default
    (vqgan for VQ-GAN, vq otherwise). The GAN fields are None for ``vq``.
    """

    kind: str | None = None
    rec_loss: str = "mse"  # vq only: mse | l1 (VQ-GAN's pixel loss is always L1)
    codebook_weight: float = 1.0
    # vqgan only (None: VQLPIPSWithDiscriminator's default)
    disc_start: int | None = None
    pixelloss_weight: float | None = None
    disc_num_layers: int | None = None
    disc_factor: float | None = None
    disc_weight: float | None = None
    perceptual_weight: float | None = None
    use_actnorm: bool | None = None
    disc_ndf: int | None = None
    disc_loss: str | None = None


LOSS_KINDS = ("vq", "vqgan")
REC_LOSSES = ("mse", "l1")
GAN_FIELDS = (
    "disc_start",
    "pixelloss_weight",
    "disc_num_layers",
    "disc_factor",
    "disc_weight",
    "perceptual_weight",
    "use_actnorm",
    "disc_ndf",
    "disc_loss",
)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping.

    ``lr`` is the learning rate; with ``scale_lr: true`` it is a *base* rate
    multiplied by the global batch, ``batch_size * world_size`` (taming's rule,
    ``lr = ngpu * batch_size * base_lr``). ``warmup_steps`` ramps it linearly
    from 0. ``precision: auto`` is bf16 autocast on CUDA and fp32 on CPU.
    ``max_steps`` counts optimiser steps of the autoencoder (the generator); it is
    also the horizon of the cosine schedule (a shorter ``--max-steps`` / ``train(max_steps=)``
    stops early without changing the schedule, so runs stay exactly resumable).
    """

    batch_size: int = 32
    lr: float = 3e-4
    scale_lr: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # constant | cosine (to min_lr_ratio * lr at train.max_steps)
    min_lr_ratio: float = 0.0
    grad_clip: float | None = None
    max_steps: int = 1000
    max_seconds: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool | None = None  # None: on CUDA
    compile: bool = False
    log_every: int = 50
    sample_every: int = 500  # reconstruction grid PNGs (needs an output directory)
    ckpt_every: int = 1000
    eval_every: int = 0  # held-out PSNR every N steps (0: only at the end)
    eval_batches: int = 8  # 0: no held-out evaluation
    num_samples: int = 16  # images in each reconstruction grid


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class Config:
    """A whole training run. ``model`` is one of :data:`MODEL_FAMILIES`' dataclasses."""

    model: Any = field(default_factory=VQVAEModel)
    data: DataConfig = field(default_factory=DataConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def family(self) -> str:
        return self.model.family

    def resolved_quantizer_kind(self) -> str:
        return self.quantizer.kind or ("ema" if self.family == "vqvae2" else "vq")

    def resolved_loss_kind(self) -> str:
        return self.loss.kind or ("vqgan" if self.family == "vqgan" else "vq")


# ---------------------------------------------------------------------------
# Dict <-> dataclass, with type checks that name the key
# ---------------------------------------------------------------------------


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, key: str):
    """Check ``value`` against the annotation ``tp`` and convert it (lists -> tuples, int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"config key `{key}` must not be null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key `{key}` must be a mapping of {tp.__name__} fields, got {value!r}")
        return _from_dict(tp, value, key)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key `{key}` must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"config key `{key}` must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key `{key}` must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key `{key}` must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key `{key}` must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key `{key}` must be a string, got {value!r}")
        return value
    raise ConfigError(f"config key `{key}`: unsupported type {_type_name(tp)}")  # a bug in this module


def _from_dict(cls, values: dict, prefix: str):
    """Build dataclass ``cls`` from ``values``; unknown keys and wrong types name ``prefix.key``."""
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        where = f"`{prefix}`" if prefix else "the top level"
        raise ConfigError(
            f"unknown config key(s) {', '.join(f'`{_join(prefix, k)}`' for k in unknown)} in {where}; "
            f"known keys there: {', '.join(known)}"
        )
    kwargs = {name: _convert(values[name], hints[name], _join(prefix, name)) for name in known if name in values}
    return cls(**kwargs)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _model_from_dict(values) -> ModelConfig:
    if not isinstance(values, dict):
        raise ConfigError(f"config key `model` must be a mapping, got {values!r}")
    family = values.get("family", "vqvae")
    if family not in MODEL_FAMILIES:
        raise ConfigError(f"config key `model.family` must be one of {list(MODEL_FAMILIES)}, got {family!r}")
    values = dict(values)
    ddconfig = values.get("ddconfig")
    if family == "vqgan" and isinstance(ddconfig, dict):
        for derived in ("in_channels", "out_ch"):
            if derived in ddconfig:
                raise ConfigError(
                    f"config key `model.ddconfig.{derived}` is derived from `model.in_channels` "
                    f"(default: the dataset's channels); remove it, or set model.in_channels"
                )
        values["ddconfig"] = _from_dict(DDConfig, ddconfig, "model.ddconfig")
    return _from_dict(MODEL_FAMILIES[family], values, "model")


def config_from_dict(values: dict) -> Config:
    """Validate a plain nested dict (e.g. parsed YAML) into a :class:`Config`."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(values).__name__}")
    values = dict(values)
    model = _model_from_dict(values.pop("model", {}) or {})
    config = _from_dict(Config, {k: v or {} for k, v in values.items()}, "")
    config.model = model
    validate(config)
    return config


def config_to_dict(config: Config) -> dict:
    """Plain nested dict (lists for tuples), e.g. to store in a checkpoint or write as YAML."""

    def plain(value):
        if isinstance(value, DDConfig):  # its in_channels / out_ch follow model.in_channels
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                    if f.name not in ("in_channels", "out_ch")}
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def _choice(value, choices, key: str) -> None:
    if value not in choices:
        raise ConfigError(f"config key `{key}` must be one of {list(choices)}, got {value!r}")


def _positive(value, key: str, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"config key `{key}` must be {bound}, got {value!r}")


def validate(config: Config) -> None:
    """Cross-field checks that types alone cannot express. Raises :class:`ConfigError`."""
    q, loss, t = config.quantizer, config.loss, config.train
    if q.kind is not None:
        _choice(q.kind, QUANTIZER_KINDS, "quantizer.kind")
    kind = config.resolved_quantizer_kind()
    wrong = EMA_ONLY if kind == "vq" else VQ_ONLY
    for name in wrong:
        if getattr(q, name) is not None:
            raise ConfigError(
                f"config key `quantizer.{name}` does not apply to a `{kind}` quantizer; "
                f"remove it or set quantizer.kind={'ema' if kind == 'vq' else 'vq'}"
            )
    if q.init is not None:
        _choice(q.init, INIT_METHODS, "quantizer.init")
    _positive(q.restart_every, "quantizer.restart_every", allow_zero=True)
    _positive(q.init_vectors, "quantizer.init_vectors")
    _positive(q.beta, "quantizer.beta", allow_zero=True)
    if q.decay is not None and not 0 < q.decay < 1:
        raise ConfigError(f"config key `quantizer.decay` must be in (0, 1), got {q.decay}")

    if loss.kind is not None:
        _choice(loss.kind, LOSS_KINDS, "loss.kind")
    _choice(loss.rec_loss, REC_LOSSES, "loss.rec_loss")
    if config.resolved_loss_kind() == "vq":
        for name in GAN_FIELDS:
            if getattr(loss, name) is not None:
                raise ConfigError(
                    f"config key `loss.{name}` belongs to the VQ-GAN loss but loss.kind is `vq`; "
                    f"remove it or set loss.kind=vqgan"
                )
    elif loss.disc_loss is not None:
        _choice(loss.disc_loss, ("hinge", "vanilla"), "loss.disc_loss")

    _choice(t.precision, PRECISIONS, "train.precision")
    _choice(t.lr_schedule, LR_SCHEDULES, "train.lr_schedule")
    if not 0 <= t.min_lr_ratio <= 1:
        raise ConfigError(f"config key `train.min_lr_ratio` must be in [0, 1], got {t.min_lr_ratio}")
    if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
        raise ConfigError(f"config key `train.device` must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    for name in ("batch_size", "lr", "log_every", "max_steps"):
        _positive(getattr(t, name), f"train.{name}")
    for name in ("warmup_steps", "sample_every", "ckpt_every", "eval_every", "eval_batches", "num_samples",
                 "weight_decay"):
        _positive(getattr(t, name), f"train.{name}", allow_zero=True)
    _positive(t.grad_clip, "train.grad_clip")
    _positive(t.max_seconds, "train.max_seconds")
    _positive(config.data.num_workers, "data.num_workers", allow_zero=True)


# ---------------------------------------------------------------------------
# YAML and --set overrides
# ---------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-3" -> ("train.lr", 0.001)``: the value is read as a YAML scalar/list."""
    if "=" not in text:
        raise ConfigError(f"an override must look like key=value (e.g. train.lr=1e-3), got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"an override must name a key before '=', got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"cannot parse the value of override `{key}`: {raw!r} ({error})") from None
    if isinstance(value, str) and _FLOAT.match(value.strip()):  # YAML 1.1 reads 1e-3 as a string
        value = float(value)
    return key, value


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def apply_overrides(values: dict, overrides) -> dict:
    """Set each ``"a.b.c=value"`` (or ``(key, value)`` pair) into the nested dict ``values``."""
    values = _deep_copy(values)
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        parts = key.split(".")
        node = values
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set `{key}`: `{'.'.join(parts[: i + 1])}` is a value, not a section")
            node = child
        node[parts[-1]] = value
    return values


def _deep_copy(values):
    if isinstance(values, dict):
        return {k: _deep_copy(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_deep_copy(v) for v in values]
    return values


def load_config(source=None, overrides=()) -> Config:
    """A validated :class:`Config` from a YAML path, a dict or a :class:`Config`, plus overrides.

    ``overrides``: strings ``"train.lr=1e-3"`` or pairs ``("train.lr", 1e-3)``.
    """
    if source is None:
        values = {}
    elif isinstance(source, Config):
        values = config_to_dict(source)
    elif isinstance(source, dict):
        values = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        with open(path) as f:
            try:
                values = yaml.safe_load(f) or {}
            except yaml.YAMLError as error:
                raise ConfigError(f"cannot parse {path} as YAML: {error}") from None
    return config_from_dict(apply_overrides(values, overrides))
