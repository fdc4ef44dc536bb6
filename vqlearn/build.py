"""From a config to the objects of a run: the model, the loss, the datasets; and back from a checkpoint.

    config = load_config("configs/vqvae_mnist.yaml")
    model = build_model(config)                   # a Tokenizer: VQVAE, VQVAE2 or VQGAN
    loss = build_loss(config)                     # VQLoss, or VQLPIPSWithDiscriminator for VQ-GAN
    train_set, val_set = build_datasets(config)
    model, config = load_model("runs/mnist/last.ckpt")
    learning_rate(config, step)                   # the schedule
    check_resumable(config, checkpoint)           # may this config continue that checkpoint?

A config may leave ``model.in_channels`` unset (None: the dataset's channel
count). :func:`resolve_in_channels` writes the resolved number into the
config, so the checkpoint that stores the config rebuilds the same model.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import copy
import math
import os

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from vqlearn.checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked
from vqlearn.config import (GAN_FIELDS, QUANTIZER_OPTIONS, Config, config_from_dict, config_to_dict,
                            upgrade_saved_config)
from vqlearn.data import build_dataset, check_data_paths, dataset_channels, dataset_spec
from vqlearn.errors import ConfigError, DataError
from vqlearn.losses import VQLoss, VQLPIPSWithDiscriminator
from vqlearn.models import VQGAN, VQVAE, VQVAE2, Tokenizer


def model_channels(config: Config) -> int:
    """Image channels the model is built for: ``model.in_channels``, else the dataset's."""
    if config.model.in_channels is not None:
        return config.model.in_channels
    return dataset_channels(config.data.name)


def resolve_in_channels(config: Config, train_data: Dataset | None = None) -> Config:
    """A copy of ``config`` whose ``model.in_channels`` is a number.

    Taken from ``train_data``'s first image when given (data passed to
    :func:`vqlearn.train.train` directly may differ from ``data.name``),
    else from the dataset registry.
    """
    config = copy.deepcopy(config)
    if config.model.in_channels is None:
        if train_data is not None:
            from vqlearn.images import image_of

            config.model.in_channels = int(image_of(train_data[0]).shape[0])
        else:
            config.model.in_channels = dataset_channels(config.data.name)
    return config


def downsample_factor(config: Config) -> int:
    """Pixels one code covers along each side: VQ-VAE 4, VQ-VAE-2 8 (its top level), VQ-GAN 2^(len(ch_mult)-1)."""
    m = config.model
    if m.family == "vqgan":
        return 2 ** (len(m.ddconfig.ch_mult) - 1)
    return {"vqvae": 4, "vqvae2": 8}[m.family]


def check_data_fits_model(config: Config) -> None:
    """Refuse, naming ``data.image_size``, images whose side the model's downsampling does not divide.

    For the config's own dataset (data passed to :func:`vqlearn.train.train` directly is checked by the model).
    """
    f = downsample_factor(config)
    size = config.data.image_size
    native = size is None
    if native:
        size = dataset_spec(config.data.name).image_size
    if size is None or size % f == 0:
        return
    given = (f"`{config.data.name}` images are {size}x{size} (data.image_size is unset: the dataset's own size)"
             if native else f"data.image_size is {size}")
    up = -(-size // f) * f
    fix = f"set data.image_size to a multiple of {f}, e.g. {up}"
    if config.family == "vqgan":
        fix += " (or use fewer levels in model.ddconfig.ch_mult)"
    raise ConfigError(f"config key `data.image_size`: the {config.family} model downsamples by {f}, so the image side "
                      f"must be a multiple of {f}, but {given}; {fix}")


def check_images_fit_model(config: Config, image) -> None:
    """Refuse a first training image the model cannot take: not a float tensor ``(C, H, W)``, or other channels."""
    if not torch.is_tensor(image) or image.dim() != 3:
        shape = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
        raise DataError(f"training images must be float tensors (C, H, W) in [-1, 1], got {shape}")
    if not image.is_floating_point():
        raise DataError(f"training images must be float tensors in [-1, 1], got dtype {image.dtype}; "
                        f"for bytes 0..255 use x.float() / 127.5 - 1")
    channels = config.model.in_channels
    if channels is not None and image.shape[0] != channels:
        raise ConfigError(
            f"config key `model.in_channels` is {channels} but the training images (data.name={config.data.name}) "
            f"have {image.shape[0]} channels; remove model.in_channels (it defaults to the data's) or set it to "
            f"{image.shape[0]}"
        )


def quantizer_options(config: Config) -> tuple[str, dict]:
    """``(kind, options)`` for :func:`vqlearn.quantizers.make_quantizer`, with unset options left out."""
    q = config.quantizer
    kind = config.resolved_quantizer_kind()
    return kind, {name: getattr(q, name) for name in QUANTIZER_OPTIONS[kind] if getattr(q, name) is not None}


def build_model(config: Config) -> Tokenizer:
    """The autoencoder that ``config.model`` describes (weights from the current torch seed)."""
    m = config.model
    channels = model_channels(config)
    kind, options = quantizer_options(config)
    beta = config.quantizer.beta
    if m.family == "vqvae":
        return VQVAE(channels, m.dim, m.num_codes, beta, m.batchnorm, kind, options, m.inplace_relu_skip)
    if m.family == "vqvae2":
        return VQVAE2(channels, m.channel, m.n_res_block, m.n_res_channel, m.embed_dim, m.num_codes,
                      beta=beta, quantizer=kind, quantizer_options=options)
    ddconfig = m.ddconfig.__class__(**{**m.ddconfig.__dict__, "in_channels": channels, "out_ch": channels})
    return VQGAN(ddconfig, m.num_codes, m.embed_dim, beta, kind, options)


def build_loss(config: Config) -> nn.Module:
    """:class:`~vqlearn.losses.VQLoss`, or :class:`~vqlearn.losses.VQLPIPSWithDiscriminator` (``loss.kind: vqgan``)."""
    loss = config.loss
    if config.resolved_loss_kind() == "vq":
        return VQLoss(loss.rec_loss, loss.codebook_weight)
    options = {name: getattr(loss, name) for name in GAN_FIELDS if getattr(loss, name) is not None}
    options.setdefault("disc_start", 0)
    return VQLPIPSWithDiscriminator(codebook_weight=loss.codebook_weight, disc_in_channels=model_channels(config),
                                    **options)


def build_datasets(config: Config, with_val: bool = True) -> tuple[Dataset, Dataset | None]:
    """The train split and (if ``with_val``) the held-out split of ``config.data``."""
    check_data_paths(config.data)
    d = config.data
    common = dict(image_size=d.image_size, root=d.root, download=d.download)
    train_set = build_dataset(d.name, d.train_split, augment=d.augment, seed=config.train.seed, **common)
    val_set = build_dataset(d.name, d.val_split, augment=False, **common) if with_val else None
    return train_set, val_set


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Tokenizer, Config]:
    """``(model, config)`` from a checkpoint written by :func:`vqlearn.train.train`, in eval mode.

    The stored config is read through :func:`vqlearn.config.upgrade_saved_config`,
    so checkpoints written with older key names (``model.K``, ``model.n_embed``) still load.
    """
    state = load_checkpoint(path, map_location=device)
    return model_from_state(state, path, device)


def saved_config(state, path) -> Config:
    """The config a vqlearn checkpoint stores, checked: a :class:`CheckpointError` names what is missing or wrong."""
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        keys = f"; it holds {', '.join(map(str, list(state)[:6]))}" if isinstance(state, dict) else ""
        hint = (" (a taming-transformers checkpoint? use vqlearn.pretrained.load_taming_vqgan)"
                if isinstance(state, dict) and "state_dict" in state else "")
        raise CheckpointError(f"{path} is not a vqlearn training checkpoint "
                              f"(no `config`/`model` entries{keys}){hint}")
    if not isinstance(state["config"], dict):
        raise CheckpointError(f"{path}: its stored `config` is a {type(state['config']).__name__}, not a mapping")
    try:
        return config_from_dict(upgrade_saved_config(state["config"]))
    except ConfigError as error:
        raise CheckpointError(f"{path} stores a config this version cannot use:\n{error}") from None


def model_from_state(state, path, device: str | torch.device = "cpu") -> tuple[Tokenizer, Config]:
    """``(model, config)`` from a loaded vqlearn checkpoint dict (see :func:`load_model`)."""
    config = saved_config(state, path)
    model = build_model(config)
    load_state_dict_checked(model, state["model"], f"checkpoint {path}")
    return model.to(device).eval(), config


def learning_rate(config: Config, step: int, world_size: int = 1) -> float:
    """The learning rate at ``step`` (0-based): linear warmup over ``warmup_steps``, then
    constant, or (``lr_schedule: cosine``) a half cosine from ``lr`` down to
    ``min_lr_ratio * lr`` at ``train.max_steps``.

    With ``train.scale_lr`` the configured rate is taming's *base* rate, multiplied
    by the global batch ``batch_size * world_size``.
    """
    t = config.train
    lr = t.lr * t.batch_size * world_size if t.scale_lr else t.lr
    return warmup_cosine(lr, step, t.warmup_steps, t.max_steps, t.min_lr_ratio, cosine=t.lr_schedule == "cosine")


def warmup_cosine(lr: float, step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float,
                  cosine: bool = True) -> float:
    """``lr`` at ``step`` (0-based): linear warmup over ``warmup_steps``, then constant or (``cosine``) a
    half cosine down to ``min_lr_ratio * lr`` at ``max_steps``. The tokenizers' and the prior's schedule."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if cosine:
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        lr *= min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


# Sections whose change makes a checkpoint a different experiment.
_RESUME_MUST_MATCH = ("model", "quantizer", "loss")


def check_resumable(config: Config, state: dict) -> None:
    """Refuse to continue a checkpoint with a config that builds a different model or loss."""
    saved, current = upgrade_saved_config(state.get("config", {})), config_to_dict(config)
    if saved.get("model", {}).get("in_channels") is None:  # written before in_channels was stored
        saved = {**saved, "model": {**saved["model"], "in_channels": model_channels(config_from_dict(saved))}}
    saved_family = saved.get("model", {}).get("family", "vqvae")
    if saved_family != config.family:
        raise CheckpointError(f"cannot resume: the checkpoint is a {saved_family} and the config a {config.family} "
                              f"(model.family); resume with the checkpoint's config, or start a new run in another "
                              f"--out directory")
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
