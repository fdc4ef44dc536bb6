"""From a config to the objects of a run: the model, the loss, the datasets; and back from a checkpoint.

    config = load_config("configs/vqvae_mnist.yaml")
    model = build_model(config)                   # a Tokenizer: VQVAE, VQVAE2 or VQGAN
    loss = build_loss(config)                     # VQLoss, or VQLPIPSWithDiscriminator for VQ-GAN
    train_set, val_set = build_datasets(config)
    model, config = load_model("runs/mnist/last.ckpt")

A config may leave ``model.in_channels`` unset (None: the dataset's channel
count). :func:`resolve_in_channels` writes the resolved number into the
config, so the checkpoint that stores the config rebuilds the same model.

Book: chapter "Training a VQ-VAE".
"""

from __future__ import annotations

import copy
import os

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from vqlearn.checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked
from vqlearn.config import GAN_FIELDS, QUANTIZER_OPTIONS, Config, config_from_dict, upgrade_saved_config
from vqlearn.data import build_dataset, check_data_paths, dataset_channels
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


def quantizer_options(config: Config) -> tuple[str, dict]:
    """``(kind, options)`` for :func:`vqlearn.quantize.make_quantizer`, with unset options left out."""
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
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not a vqlearn training checkpoint (no `config`/`model` entries)")
    config = config_from_dict(upgrade_saved_config(state["config"]))
    model = build_model(config)
    load_state_dict_checked(model, state["model"], f"checkpoint {path}")
    return model.to(device).eval(), config
