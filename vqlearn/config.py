"""Typed training configuration: dataclasses validated on load.

A config has five sections, each a (pydantic) dataclass below::

    model:      family (vqvae | vqvae2 | vqgan) and that family's constructor arguments
    data:       which dataset, where it lives, image size
    quantizer:  the quantizer (vq | ema | fsq | lfq | rvq, beta, ...) and the anti-collapse tools
    loss:       reconstruction + codebook loss, or VQ-GAN's loss with a discriminator
    train:      optimiser, steps, precision, logging and checkpoint intervals

:func:`load_config` reads a YAML file, applies ``key=value`` overrides (values
parsed as YAML scalars: ``train.lr=1e-3``, ``model.ddconfig.ch_mult=[1,2]``)
and validates the result with pydantic: the field types, ``Literal`` choices
and bounds below are the whole check, plus :meth:`Config.check_combinations`
for the rules that span sections. Every problem becomes one line of a
:class:`ConfigError` that names the dotted key, the value and what is allowed.
Integers and booleans are strict (``4.0``, ``"4"`` or ``true`` is not an
integer, ``1`` or ``"yes"`` is not a boolean); numbers also take integers and
numeric strings such as ``"3e-4"`` (YAML 1.1 reads it as a string), never booleans.

``None`` in a field documented as "None: the family's default" is resolved
when the model is built, so a config states only what it changes.

Checkpoints store the config they were trained with (:func:`config_to_dict`).
Keys renamed or added since are brought up to date by
:func:`upgrade_saved_config` when a checkpoint is read; in a YAML file or an
override an old key is an error that names its new name.

Book: chapter "Training a VQ-VAE" (the recipe configs); chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from annotated_types import Ge, Gt, Lt
from pydantic import (BeforeValidator, ConfigDict, Discriminator, Field, Strict, Tag, TypeAdapter, ValidationError,
                      field_validator, model_validator)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from vqlearn.codebook import INIT_METHODS
from vqlearn.data import DATASETS
from vqlearn.errors import ConfigError
from vqlearn.losses import DISC_LOSSES, REC_LOSSES
from vqlearn.models.vqgan import DDConfig
from vqlearn.quantizers import LEARNED_CODEBOOK_KINDS, QUANTIZER_KINDS, QUANTIZER_OPTIONS
from vqlearn.residual_quantize import RESIDUAL_LEVEL_KINDS
from vqlearn.scalar_quantize import FSQ_LEVELS
from vqlearn.runtime import PRECISIONS

# The allowed values that belong to the config and the trainer (the others are imported above).
LOSS_KINDS = ("vq", "vqgan")
LR_SCHEDULES = ("constant", "cosine")
GAN_FIELDS = ("disc_start", "pixelloss_weight", "disc_num_layers", "disc_factor", "disc_weight",
              "perceptual_weight", "use_actnorm", "disc_ndf", "disc_loss", "feature_matching_weight")
DERIVED_DDCONFIG_KEYS = ("in_channels", "out_ch")  # set from model.in_channels when the model is built

SECTION = ConfigDict(extra="forbid")  # an unknown key is an error (nested stdlib dataclasses inherit it)




def _not_a_bool(value):
    """pydantic's lax float would read ``true`` as 1.0."""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value


# The field types: strict integers and booleans; numbers that refuse booleans.
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Float = Annotated[float, BeforeValidator(_not_a_bool)]
PositiveInt = Annotated[Int, Gt(0)]
NonNegativeInt = Annotated[Int, Ge(0)]
PositiveFloat = Annotated[Float, Gt(0)]
NonNegativeFloat = Annotated[Float, Ge(0)]
Fraction = Annotated[Float, Ge(0), Lt(1)]

# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------


@dataclass(config=SECTION)
class VQVAEModel:
    """:class:`vqlearn.models.VQVAE` (seed 000 §1). Seed values: dim 256, num_codes 512.

    ``inplace_relu_skip: true`` makes each ResBlock add ``ReLU(x)`` like the
    pytorch-vqvae reproduction's in-place ReLU does (see :class:`vqlearn.models.vqvae.ResBlock`).
    """

    family: Literal["vqvae"] = "vqvae"
    in_channels: PositiveInt | None = None  # None: the dataset's channel count
    dim: PositiveInt = 256
    num_codes: PositiveInt = 512  # codebook size, the paper's K
    batchnorm: Bool = True
    inplace_relu_skip: Bool = False


@dataclass(config=SECTION)
class VQVAE2Model:
    """:class:`vqlearn.models.VQVAE2` (seed 000 §2). ImageNet table: 128 / 2 / 64 / 64 / 512."""

    family: Literal["vqvae2"] = "vqvae2"
    in_channels: PositiveInt | None = None
    channel: PositiveInt = 128
    n_res_block: NonNegativeInt = 2
    n_res_channel: PositiveInt = 64
    embed_dim: PositiveInt = 64
    num_codes: PositiveInt = 512  # per level


@dataclass(config=SECTION)
class VQGANModel:
    """:class:`vqlearn.models.VQGAN` (seed 000 §VQ-GAN). ``ddconfig`` is taming's, except
    ``in_channels`` / ``out_ch``, which follow ``model.in_channels``."""

    family: Literal["vqgan"] = "vqgan"
    in_channels: PositiveInt | None = None
    num_codes: PositiveInt = 1024  # taming's n_embed
    embed_dim: PositiveInt = 256
    ddconfig: DDConfig = Field(default_factory=DDConfig)

    @field_validator("ddconfig", mode="before")
    @classmethod
    def refuse_derived_keys(cls, ddconfig):
        """``ddconfig.in_channels`` / ``out_ch`` come from ``model.in_channels``; stating them is an error."""
        if isinstance(ddconfig, dict):
            for key in DERIVED_DDCONFIG_KEYS:
                if key in ddconfig:
                    raise ConfigError(
                        f"config key `model.ddconfig.{key}` is derived from `model.in_channels` "
                        f"(default: the dataset's channels); remove it, or set model.in_channels"
                    )
        return ddconfig


MODEL_FAMILIES: dict[str, type] = {"vqvae": VQVAEModel, "vqvae2": VQVAE2Model, "vqgan": VQGANModel}


def _model_family(model) -> str | None:
    """The family of a ``model`` section, a mapping (default ``vqvae``) or a model dataclass."""
    if isinstance(model, dict):
        return str(model.get("family", "vqvae"))  # str: a null family is an unknown one, not a missing one
    return getattr(model, "family", None)


ModelConfig = Annotated[
    Union[Annotated[VQVAEModel, Tag("vqvae")], Annotated[VQVAE2Model, Tag("vqvae2")],
          Annotated[VQGANModel, Tag("vqgan")]],
    Discriminator(_model_family),
]


@dataclass(config=SECTION)
class DataConfig:
    """What :func:`vqlearn.data.build_dataset` is called with."""

    name: str = "mnist"  # one of vqlearn.data.DATASETS
    root: str | None = None  # folder / downloaded datasets: where the files are
    image_size: PositiveInt | None = None  # None: the dataset's own size
    download: Bool = False
    augment: Bool | None = None  # None: the dataset's default
    train_split: str = "train"
    val_split: str = "test"
    num_workers: NonNegativeInt = 0  # 0 keeps CPU runs deterministic and exactly resumable

    @field_validator("name")
    @classmethod
    def known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ConfigError(f"config key `data.name`: unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
        return name


@dataclass(config=SECTION)
class QuantizerConfig:
    """The quantizer and the anti-collapse tools (chapters "Codebook and commitment losses",
    "Quantizers after VQ-GAN").

    ``kind``: ``vq`` (learned by gradients) or ``ema``; or ``fsq``, ``lfq``, ``rvq``
    (:func:`vqlearn.quantizers.make_quantizer`); None: the family's (VQ-VAE-2: ema,
    others: vq). Each kind takes only its own options (:data:`QUANTIZER_OPTIONS`):
    ``decay`` / ``eps`` / ``rotation_trick`` for ``ema``; ``legacy`` / ``l2_normalize`` /
    ``lookup_dim`` / ``rotation_trick`` for ``vq``; ``levels`` for ``fsq`` (default: the
    paper's levels for ``model.num_codes``; FSQ has ``prod(levels)`` codes and ignores
    ``model.num_codes`` otherwise); ``entropy_weight`` / ``entropy_temperature`` for ``lfq``
    (``model.num_codes`` = 2^bits); ``depth`` / ``quantizer_dropout`` / ``level_kind`` for ``rvq``
    (``model.num_codes`` codes per level), plus its levels' ``legacy`` (vq) or ``decay`` / ``eps`` (ema).

    ``init``: ``kmeans`` or ``samples`` initialises every code from encoder
    outputs before the first step (about ``init_vectors`` of them);
    ``restart_every > 0`` moves codes chosen fewer than ``restart_min_count``
    times since the last restart onto random encoder outputs. Both apply to
    learned codebooks (vq, ema, each level of rvq), not to fsq and lfq.
    """

    kind: Literal[QUANTIZER_KINDS] | None = None
    beta: NonNegativeFloat = 0.25
    decay: Float | None = Field(None, gt=0, lt=1)  # ema (and rvq's ema levels) only; None: 0.99
    eps: PositiveFloat | None = None  # ema only; None: 1e-5
    legacy: Bool | None = None  # vq only; None: False
    l2_normalize: Bool | None = None  # vq only
    lookup_dim: PositiveInt | None = None  # vq only
    rotation_trick: Bool | None = None  # vq and ema; None: False (the straight-through estimator)
    levels: tuple[Annotated[Int, Ge(2)], ...] | None = None  # fsq only; None: FSQ_LEVELS[model.num_codes]
    entropy_weight: NonNegativeFloat | None = None  # lfq only; None: 0.1
    entropy_temperature: PositiveFloat | None = None  # lfq only; None: 0.01
    depth: PositiveInt | None = None  # rvq only; None: 4
    quantizer_dropout: Bool | None = None  # rvq only; None: False
    level_kind: Literal[RESIDUAL_LEVEL_KINDS] | None = None  # rvq only; None: vq
    init: Literal[INIT_METHODS] | None = None
    init_vectors: PositiveInt = 4096
    init_iters: NonNegativeInt = 10
    restart_every: NonNegativeInt = 0
    restart_min_count: NonNegativeInt = 1


@dataclass(config=SECTION)
class LossConfig:
    """``kind="vq"``: ``rec_loss(x, x_hat) + codebook_weight * quant_loss`` (VQ-VAE, VQ-VAE-2).
    ``kind="vqgan"``: :class:`vqlearn.losses.VQLPIPSWithDiscriminator` with the
    fields below (taming's ``lossconfig`` names). None: the family's default
    (vqgan for VQ-GAN, vq otherwise). The GAN fields (:data:`GAN_FIELDS`) are None for ``vq``.
    """

    kind: Literal[LOSS_KINDS] | None = None
    rec_loss: Literal[REC_LOSSES] = "mse"  # vq only (VQ-GAN's pixel loss is always L1)
    codebook_weight: NonNegativeFloat = 1.0
    # vqgan only (None: VQLPIPSWithDiscriminator's default)
    disc_start: NonNegativeInt | None = None
    pixelloss_weight: NonNegativeFloat | None = None
    disc_num_layers: PositiveInt | None = None
    disc_factor: NonNegativeFloat | None = None
    disc_weight: NonNegativeFloat | None = None
    perceptual_weight: NonNegativeFloat | None = None
    use_actnorm: Bool | None = None
    disc_ndf: PositiveInt | None = None
    disc_loss: Literal[DISC_LOSSES] | None = None
    feature_matching_weight: NonNegativeFloat | None = None


@dataclass(config=SECTION)
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

    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-4
    scale_lr: Bool = False
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)
    weight_decay: NonNegativeFloat = 0.0
    warmup_steps: NonNegativeInt = 0
    lr_schedule: Literal[LR_SCHEDULES] = "constant"  # cosine: to min_lr_ratio * lr at train.max_steps
    min_lr_ratio: Float = Field(0.0, ge=0, le=1)
    grad_clip: PositiveFloat | None = None
    max_steps: PositiveInt = 1000
    max_seconds: PositiveFloat | None = None
    seed: NonNegativeInt = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal[PRECISIONS] = "auto"
    channels_last: Bool | None = None  # None: on CUDA
    compile: Bool = False
    log_every: PositiveInt = 50
    sample_every: NonNegativeInt = 500  # reconstruction grid PNGs (needs an output directory)
    ckpt_every: NonNegativeInt = 1000
    eval_every: NonNegativeInt = 0  # held-out PSNR every N steps (0: only at the end)
    eval_batches: NonNegativeInt = 8  # 0: no held-out evaluation
    num_samples: NonNegativeInt = 16  # images in each reconstruction grid
    dist_timeout: PositiveFloat = 300.0  # torchrun: seconds a rank waits for another before the run ends with an error

    @field_validator("device")
    @classmethod
    def check_device(cls, device: str) -> str:
        """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is there is checked when the run starts)."""
        if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
            raise ConfigError(f"config key `train.device` must be auto, cpu, cuda or cuda:N, got {device!r}")
        return device


@dataclass(config=SECTION)
class Config:
    """A whole training run. ``model`` is one of :data:`MODEL_FAMILIES`' dataclasses."""

    model: ModelConfig = Field(default_factory=VQVAEModel)
    data: DataConfig = Field(default_factory=DataConfig)
    quantizer: QuantizerConfig = Field(default_factory=QuantizerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @property
    def family(self) -> str:
        return self.model.family

    def resolved_quantizer_kind(self) -> str:
        return self.quantizer.kind or ("ema" if self.family == "vqvae2" else "vq")

    def resolved_loss_kind(self) -> str:
        return self.loss.kind or ("vqgan" if self.family == "vqgan" else "vq")

    @model_validator(mode="after")
    def check_combinations(self) -> Config:
        """The rules that span sections: options of the other quantizer kind, GAN fields without a GAN."""
        self.check_quantizer()
        if self.resolved_loss_kind() == "vq":
            for name in GAN_FIELDS:
                if getattr(self.loss, name) is not None:
                    raise ConfigError(
                        f"config key `loss.{name}` belongs to the VQ-GAN loss but loss.kind is `vq`; "
                        f"remove it or set loss.kind=vqgan"
                    )
        return self

    def check_quantizer(self) -> None:
        """Each quantizer kind takes only its own options, and fits ``model.num_codes`` and the codebook tools."""
        q, kind = self.quantizer, self.resolved_quantizer_kind()
        a = "a" if kind == "vq" else "an"  # an `ema`, an `fsq`, an `lfq`, an `rvq`
        for name in dict.fromkeys(n for names in QUANTIZER_OPTIONS.values() for n in names):
            if name not in QUANTIZER_OPTIONS[kind] and getattr(q, name) is not None:
                other = next(k for k, names in QUANTIZER_OPTIONS.items() if name in names)
                raise ConfigError(f"config key `quantizer.{name}` does not apply to {a} `{kind}` quantizer; "
                                  f"remove it or set quantizer.kind={other}")
        if kind == "rvq":
            level_kind = q.level_kind or "vq"
            for name in ("legacy", "decay", "eps"):
                if getattr(q, name) is not None and name not in QUANTIZER_OPTIONS[level_kind]:
                    other = "ema" if level_kind == "vq" else "vq"
                    raise ConfigError(f"config key `quantizer.{name}` does not apply to the `{level_kind}` levels of "
                                      f"an rvq quantizer; remove it or set quantizer.level_kind={other}")
        if kind not in LEARNED_CODEBOOK_KINDS:
            for name, unset in (("init", None), ("restart_every", 0)):
                if getattr(q, name) != unset:
                    raise ConfigError(f"config key `quantizer.{name}` does not apply to {a} `{kind}` quantizer "
                                      f"(its codebook is a fixed grid, nothing to initialise or restart); remove it")
        if q.levels is not None and not q.levels:
            raise ConfigError("config key `quantizer.levels` must list the values of at least one channel, got []; "
                              "e.g. quantizer.levels=[8,5,5,5]")
        num_codes = self.model.num_codes
        if kind == "fsq" and q.levels is None and num_codes not in FSQ_LEVELS:
            sizes = ", ".join(f"{k}: {list(v)}" for k, v in FSQ_LEVELS.items())
            raise ConfigError(f"config key `quantizer.levels` must be set for an fsq quantizer when "
                              f"model.num_codes={num_codes} has no recommended levels (the paper's: {sizes}); "
                              f"e.g. quantizer.levels=[8,5,5,5]")
        if kind == "lfq" and (num_codes < 2 or num_codes & (num_codes - 1)):
            raise ConfigError(f"config key `model.num_codes` must be a power of 2 for an lfq quantizer "
                              f"(2^bits codes), got {num_codes}; e.g. {2 ** num_codes.bit_length()}")


# ---------------------------------------------------------------------------
# Dict <-> Config, with one line per problem that names the key
# ---------------------------------------------------------------------------

_CONFIG = TypeAdapter(Config)

# pydantic's error type -> what the key must be ({...}: the error's context).
_MUST_BE = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "tuple_type": "must be a list",
    "too_long": "must be a list of at most {max_length} values",
    "dataclass_type": "must be a mapping of keys",
    "union_tag_not_found": "must be a mapping of keys",
    "literal_error": "must be one of [{expected}]",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
}


def config_from_dict(values: dict | None) -> Config:
    """Validate a plain nested dict (e.g. parsed YAML; a section may be null) into a :class:`Config`."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(values).__name__}")
    values = {name: {} if section is None else section for name, section in values.items()}
    return validate(Config, values)


def validate(root, values: dict):
    """``values`` validated into the pydantic dataclass ``root`` (:class:`Config`, or another config
    built from this module's field types, like the prior's); every problem is one line of a
    :class:`ConfigError` that names the dotted key."""
    adapter = _CONFIG if root is Config else TypeAdapter(root)
    try:
        return adapter.validate_python(values)
    except ValidationError as error:
        problems = dict.fromkeys(_problem(e, root) for e in error.errors())  # in order, without repeats
        raise ConfigError("\n".join(problems)) from None


def _problem(error: dict, root=None) -> str:
    """One line for one of pydantic's errors: the dotted key, the value given and what is allowed."""
    root = root or Config
    where, kind, ctx, value = error["loc"], error["type"], error.get("ctx", {}), error["input"]
    key = _dotted(where, root)
    if kind == "value_error":
        if isinstance(ctx["error"], ConfigError):  # our own checks write the whole line
            return str(ctx["error"])
        return f"config key `{key}`: {ctx['error']}"
    if kind == "unexpected_keyword_argument" and key in RENAMED_KEYS:
        return f"config key `{key}` is now `{RENAMED_KEYS[key]}`; rename it"
    if kind == "unexpected_keyword_argument":
        section = f"`{_dotted(where[:-1], root)}`" if len(where) > 1 else "the top level"
        known = [f.name for f in dataclasses.fields(_type_at(where[:-1], root))]
        return f"unknown config key `{key}` in {section}; known keys there: {', '.join(known)}"
    if kind == "union_tag_invalid":  # the model family
        return f"config key `{key}.family` must be one of [{ctx['expected_tags']}], got {value['family']!r}"
    if kind == "missing" and isinstance(where[-1], int):  # a list shorter than a fixed-length tuple
        length = len(typing.get_args(_type_at(where[:-1], root)))
        return f"config key `{_dotted(where[:-1], root)}` must be a list of {length} values, got {value!r}"
    if kind == "literal_error":
        ctx = {"expected": ctx["expected"].replace(" or ", ", ")}
    if kind in _MUST_BE:
        return f"config key `{key}` {_MUST_BE[kind].format(**ctx)}, got {value!r}"
    return f"config key `{key}`: {error['msg']}, got {value!r}"


def _dotted(where: tuple, root=None) -> str:
    """pydantic's error location as a dotted key: ``("model", "vqgan", "ddconfig", "ch_mult", 1)``
    -> ``model.ddconfig.ch_mult[1]`` (in a :class:`Config`, the family after ``model`` is the union's tag,
    not a key)."""
    if (root or Config) is Config and where[:1] == ("model",):
        where = where[:1] + where[2:]
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where).lstrip(".")


def _type_at(where: tuple, root=None):
    """The type declared at an error location (a section, or a field), walking from ``root`` (:class:`Config`)."""
    tp = root or Config
    for part in where:
        tp = MODEL_FAMILIES[part] if part in MODEL_FAMILIES else typing.get_type_hints(tp)[part]
    return tp


# Keys renamed since checkpoints were first written: old dotted key -> new dotted key.
RENAMED_KEYS = {"model.K": "model.num_codes", "model.n_embed": "model.num_codes"}
# Keys added since, per model family, with the value that computes what older versions did.
ADDED_MODEL_KEYS = {"vqvae": {"inplace_relu_skip": False}}


def upgrade_saved_config(values: dict) -> dict:
    """A config dict stored in a checkpoint, in today's keys (a copy; ``values`` is not changed).

    A checkpoint stores ``config_to_dict(config)`` in the key names of the version
    that wrote it. This renames the keys of :data:`RENAMED_KEYS` (``model.K`` and
    ``model.n_embed`` became ``model.num_codes``) and adds those of
    :data:`ADDED_MODEL_KEYS` with the value older versions behaved as, so old
    checkpoints still load (:func:`vqlearn.build.load_model`) and resume
    (:func:`vqlearn.train.check_resumable`). Only saved configs are upgraded: a
    user's YAML or ``--set`` with an old key gets a :class:`ConfigError` naming the new key.
    """
    values = copy.deepcopy(values)
    for old, new in RENAMED_KEYS.items():
        (section, old_key), new_key = old.split("."), new.split(".")[1]
        node = values.get(section)
        if isinstance(node, dict) and old_key in node and new_key not in node:
            node[new_key] = node.pop(old_key)
    model = values.get("model")
    if isinstance(model, dict):
        for key, value in ADDED_MODEL_KEYS.get(_model_family(model), {}).items():
            model.setdefault(key, value)
    return values


def config_to_dict(config: Config) -> dict:
    """Plain nested dict (lists for tuples), e.g. to store in a checkpoint or write as YAML."""

    def plain(value):
        if dataclasses.is_dataclass(value):
            skip = DERIVED_DDCONFIG_KEYS if isinstance(value, DDConfig) else ()
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in skip}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(config)


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
    """Set each ``"a.b.c=value"`` (or ``(key, value)`` pair) into a copy of the nested dict ``values``."""
    values = copy.deepcopy(values)
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        if not isinstance(key, str) or not key.strip() or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"an override must name a dotted config key such as train.lr, got {key!r}")
        parts = [part.strip() for part in key.split(".")]
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
                values = yaml.safe_load(f)
            except yaml.YAMLError as error:
                raise ConfigError(f"cannot parse {path} as YAML: {error}") from None
        if values is None:
            raise ConfigError(f"config file {path} is empty (or only comments); write the sections to change "
                              f"(e.g. configs/vqvae_mnist.yaml), or `{{}}` to train every default on purpose")
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must be a mapping of sections (model:, data:, quantizer:, loss:, "
                              f"train:), got a YAML {type(values).__name__}")
    return config_from_dict(apply_overrides(values, overrides))
