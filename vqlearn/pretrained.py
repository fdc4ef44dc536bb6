"""Loading checkpoints of the reference implementations into vqlearn's models.

* :func:`load_rosinality_vqvae2` reads a state_dict saved by
  rosinality/vq-vae-2-pytorch (``train_vqvae.py`` saves ``model.state_dict()``
  of its ``VQVAE``) into :class:`~vqlearn.models.vqvae2.VQVAE2`.
* :func:`load_pytorch_vqvae` reads a state_dict saved by
  ritheshkumar95/pytorch-vqvae (``vqvae.py`` saves ``model.state_dict()`` of its
  ``VectorQuantizedVAE``, modules.py) into :class:`~vqlearn.models.vqvae.VQVAE`.
* :func:`load_taming_vqgan` reads a taming-transformers ``model.yaml`` and its
  PyTorch-Lightning ``last.ckpt`` into :class:`~vqlearn.models.vqgan.VQGAN`.

Both load strictly: every parameter and buffer of the model must come from
the file and nothing in the file may be left over (apart from the entries
documented below), and a mismatch raises
:class:`~vqlearn.checkpoint.CheckpointError` listing the missing and unexpected
keys. Files are read with ``weights_only=True``
(:func:`vqlearn.checkpoint.load_checkpoint`); a file that needs other Python
objects unpickled is refused with an explanation of how to convert it.

Nothing here downloads anything: point the loaders at files you have.

Book: chapter "The VQ-VAE" (pytorch-vqvae's checkpoints),
chapter "VQ-VAE-2: a hierarchy of codes" (rosinality's ImageNet model),
chapter "The VQ-GAN encoder and decoder" (taming-transformers' checkpoints).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml

from vqlearn.checkpoint import CheckpointError, load_checkpoint, load_state_dict_checked
from vqlearn.errors import ConfigError
from vqlearn.models.vqgan import VQGAN, DDConfig
from vqlearn.models.vqvae import VQVAE
from vqlearn.models.vqvae2 import VQVAE2

__all__ = [
    "load_pytorch_vqvae",
    "pytorch_vqvae_state_dict",
    "load_rosinality_vqvae2",
    "load_taming_vqgan",
    "build_taming_vqgan",
    "read_taming_config",
    "taming_state_dict",
    "strip_ddp_prefix",
]

DDP_PREFIX = "module."

# The classes of taming-transformers (and latent-diffusion) whose first stage is
# an Encoder, a VectorQuantizer2 and a Decoder with the keys VQGAN uses. Other
# taming models (GumbelVQ, EMAVQ, VQSegmentationModel) have different keys.
TAMING_MODEL_CLASSES = ("VQModel", "VQNoDiscModel", "VQModelInterface")
# VQModel arguments that only concern training, logging or taming's own loading:
# accepted and ignored. (`ckpt_path`: the checkpoint comes from the `ckpt` argument.)
TAMING_IGNORED_PARAMS = (
    "lossconfig",
    "ckpt_path",
    "ignore_keys",
    "image_key",
    "monitor",
    "colorize_nlabels",
    # latent-diffusion's VQModel: training-only arguments
    "batch_resize_range",
    "scheduler_config",
    "lr_g_factor",
)
TAMING_USED_PARAMS = ("ddconfig", "n_embed", "embed_dim", "remap", "sane_index_shape")
# taming's VQModel builds its quantizer with beta=0.25, whatever the config says.
TAMING_BETA = 0.25


def _as_state_dict(obj, path) -> dict[str, torch.Tensor]:
    """A plain ``{name: tensor}`` dict from what ``torch.load`` returned, or a CheckpointError."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}, not a state_dict; expected the dict that "
            f"`model.state_dict()` returns (or a Lightning checkpoint with a 'state_dict' entry)"
        )
    return obj


def strip_ddp_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` that DistributedDataParallel puts before every key.

    Only when *every* key has it: a partly prefixed dict is left alone, so the
    strict load lists the odd keys instead of silently renaming some.
    """
    if state_dict and all(key.startswith(DDP_PREFIX) for key in state_dict):
        return {key[len(DDP_PREFIX) :]: value for key, value in state_dict.items()}
    return state_dict


# pytorch-vqvae's VectorQuantizedVAE keeps its codebook in a VQEmbedding module named `codebook`
# (`codebook.embedding.weight`, (K, dim)); VQVAE's quantizer is `quantize` (`quantize.embedding.weight`).
# Every other key (encoder.N..., decoder.N..., ResBlock's block.N...) is the same in both.
PYTORCH_VQVAE_RENAMES = {"codebook.embedding.weight": "quantize.embedding.weight"}
# vqvae.py's default --beta: loss = recons + vq + beta * commit, beta=1.0.
PYTORCH_VQVAE_BETA = 1.0


def pytorch_vqvae_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pytorch-vqvae's ``VectorQuantizedVAE`` keys -> :class:`VQVAE`'s: ``codebook.`` -> ``quantize.``.

    A ``module.`` prefix on every key (DistributedDataParallel) is stripped first;
    other keys pass unchanged, so a strict load reports anything that does not fit.
    """
    state_dict = strip_ddp_prefix(state_dict)
    return {PYTORCH_VQVAE_RENAMES.get(key, key): value for key, value in state_dict.items()}


def load_pytorch_vqvae(
    path_or_state_dict: str | os.PathLike | dict,
    in_channels: int | None = None,
    dim: int | None = None,
    num_codes: int | None = None,
    beta: float = PYTORCH_VQVAE_BETA,
    inplace_relu_skip: bool = True,
) -> VQVAE:
    """A :class:`VQVAE` with the weights of a ritheshkumar95/pytorch-vqvae checkpoint, in eval mode.

    Args:
        path_or_state_dict: a file written by ``torch.save(model.state_dict(), f)`` for
            the reproduction's ``VectorQuantizedVAE(input_dim, dim, K)`` (what its
            ``vqvae.py`` does: ``models/<name>/best.pt``, ``model_<epoch>.pt``), or that
            dict itself. A ``module.`` prefix on every key (DistributedDataParallel) is
            stripped; a dict with a ``'state_dict'`` entry is unwrapped.
        in_channels, dim, num_codes: the reproduction's ``input_dim``, ``dim``
            (``--hidden-size``) and ``K`` (``--k``). ``None`` (default) reads them from the
            weights (``encoder.0.weight (dim, in_channels, 4, 4)``,
            ``codebook.embedding.weight (K, dim)``); a value that disagrees with the
            weights is reported as a shape mismatch.
        beta: commitment weight of the returned model's loss; 1.0 is ``vqvae.py``'s
            default ``--beta`` (its loss is ``recons + vq + beta * commit``), so
            fine-tuning trains as the reproduction did.
        inplace_relu_skip: ``True`` (default) makes every ResBlock add ``ReLU(x)`` instead
            of ``x``. The reproduction's ResBlock starts with ``nn.ReLU(True)``, which
            overwrites its input in place before ``forward`` returns ``x + self.block(x)``,
            so the network it trained -- and whose weights these are -- computes
            ``ReLU(x) + block(x)``. Loading those weights into the plain skip gives a
            different function (other codes, worse reconstructions); keep the default
            unless you want to see that.

    The keys are the reproduction's with one rename, ``codebook.embedding.weight`` ->
    ``quantize.embedding.weight`` (:func:`pytorch_vqvae_state_dict`); the load is strict.

    Raises:
        CheckpointError: the file is missing, unreadable, not a state_dict, needs unsafe
            unpickling, or does not fit the model (every missing and unexpected key and
            wrong shape is listed).
    """
    if isinstance(path_or_state_dict, dict):
        source = "pytorch-vqvae state_dict"
        state_dict = _as_state_dict(path_or_state_dict, "the state_dict argument")
    else:
        source = f"pytorch-vqvae checkpoint {path_or_state_dict}"
        state_dict = _as_state_dict(load_checkpoint(path_or_state_dict), path_or_state_dict)
    state_dict = pytorch_vqvae_state_dict(state_dict)
    codebook, first = state_dict.get("quantize.embedding.weight"), state_dict.get("encoder.0.weight")
    if (num_codes is None or dim is None) and codebook is None:
        raise CheckpointError(
            f"{source} has no 'codebook.embedding.weight', the reproduction's codebook; is it a "
            f"pytorch-vqvae VectorQuantizedVAE state_dict? (keys start with: {', '.join(list(state_dict)[:4])})"
        )
    if in_channels is None and first is None:
        raise CheckpointError(f"{source} has no 'encoder.0.weight'; pass in_channels= or check the file")
    model = VQVAE(
        in_channels=int(first.shape[1]) if in_channels is None else in_channels,
        dim=int(codebook.shape[1]) if dim is None else dim,
        num_codes=int(codebook.shape[0]) if num_codes is None else num_codes,
        beta=beta,
        batchnorm=True,
        quantizer="vq",
        inplace_relu_skip=inplace_relu_skip,
    )
    load_state_dict_checked(model, state_dict, source=source)
    return model.eval()


def load_rosinality_vqvae2(
    path: str | os.PathLike,
    in_channels: int = 3,
    channel: int = 128,
    n_res_block: int = 2,
    n_res_channel: int = 32,
    embed_dim: int = 64,
    num_codes: int = 512,
    decay: float = 0.99,
) -> VQVAE2:
    """A :class:`VQVAE2` with the weights of a rosinality/vq-vae-2-pytorch checkpoint, in eval mode.

    Args:
        path: a file written by ``torch.save(model.state_dict(), path)`` for
            rosinality's ``VQVAE`` (what its ``train_vqvae.py`` does, e.g.
            ``checkpoint/vqvae_560.pt``). Keys prefixed with ``module.``, as
            written when the model was trained wrapped in
            DistributedDataParallel, are accepted: the prefix is stripped. A
            dict with a ``'state_dict'`` entry is unwrapped.
        in_channels, channel, n_res_block, n_res_channel, embed_dim, num_codes, decay:
            the arguments the ``VQVAE`` was built with (its defaults here too;
            rosinality calls ``in_channels`` ``in_channel`` and ``num_codes``
            ``n_embed``). They must match the checkpoint: a wrong value shows up
            as missing, unexpected or wrongly shaped keys.

    Our :class:`VQVAE2` has the same parameter and buffer names and shapes as
    rosinality's ``VQVAE`` (``enc_b.blocks.0.weight``, ...,
    ``quantize_t.embed (embed_dim, num_codes)``, ``quantize_t.cluster_size``,
    ``quantize_t.embed_avg``), so the state_dict loads as it is, with
    ``strict=True``. It then gives the same codes and reconstructions. Its
    ``quant_loss`` is ``0.25 * (diff_t + diff_b)``: rosinality's ``diff`` with
    the ``latent_loss_weight=0.25`` its training script applies folded in.

    Raises:
        CheckpointError: the file is missing, unreadable, not a state_dict,
            needs unsafe unpickling, or does not fit the model (every missing
            and unexpected key is listed).
    """
    state_dict = strip_ddp_prefix(_as_state_dict(load_checkpoint(path), path))
    model = VQVAE2(
        in_channels=in_channels,
        channel=channel,
        n_res_block=n_res_block,
        n_res_channel=n_res_channel,
        embed_dim=embed_dim,
        num_codes=num_codes,
        decay=decay,
        quantizer="ema",
    )
    load_state_dict_checked(model, state_dict, source=f"rosinality VQ-VAE-2 checkpoint {path}")
    return model.eval()


def read_taming_config(config: str | os.PathLike | dict) -> tuple[dict, Path | None]:
    """The ``model`` section of a taming config, checked: ``(model_section, config_dir)``.

    ``config`` is a path to taming's YAML (``configs/*.yaml`` or the
    ``model.yaml`` / ``*-project.yaml`` next to a published checkpoint), or the
    already-parsed dict: either the whole file (with a ``model`` key) or just
    its ``model`` section (with ``target`` and ``params``).
    """
    config_dir = None
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"`config`: no taming config file at {path}; pass the model.yaml path or a dict")
        with open(path) as f:
            config = yaml.safe_load(f)
        config_dir = path.parent
        source = str(path)
    else:
        source = "the config dict"
    if not isinstance(config, dict):
        raise ValueError(f"`config`: {source} should be a mapping with a 'model' section, got {type(config).__name__}")
    model = config["model"] if "model" in config else config
    if not isinstance(model, dict):
        raise ValueError(f"`config`: 'model' in {source} should be a mapping, got {type(model).__name__}")

    target = model.get("target")
    if target is None:
        raise ValueError(f"`config`: {source} has no 'model.target' (expected e.g. taming.models.vqgan.VQModel)")
    class_name = str(target).rsplit(".", 1)[-1]
    if class_name not in TAMING_MODEL_CLASSES:
        raise ValueError(
            f"`config`: model.target is {target!r}; load_taming_vqgan reads the autoencoders "
            f"{', '.join(TAMING_MODEL_CLASSES)} (e.g. taming.models.vqgan.VQModel). GumbelVQ, EMAVQ and "
            f"segmentation models use other quantizers and are not supported; a transformer config "
            f"(Net2NetTransformer) names its VQGAN in model.params.first_stage_config -- pass that section."
        )
    params = model.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"`config`: {source} has no 'model.params' mapping (with ddconfig, n_embed, embed_dim)")
    for key in ("ddconfig", "n_embed", "embed_dim"):
        if key not in params:
            raise ValueError(f"`config`: {source} has no 'model.params.{key}', which a taming VQModel requires")
    for key in ("n_embed", "embed_dim"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"`config`: {source}'s 'model.params.{key}' must be a positive integer, got {value!r}")
    if not isinstance(params["ddconfig"], dict):
        raise ConfigError(f"`config`: {source}'s 'model.params.ddconfig' must be a mapping of the encoder/decoder "
                          f"settings, got {type(params['ddconfig']).__name__}")
    unknown = sorted(set(params) - set(TAMING_USED_PARAMS) - set(TAMING_IGNORED_PARAMS))
    if unknown:
        raise ValueError(
            f"`config`: unknown key(s) {', '.join('model.params.' + k for k in unknown)} for a taming VQModel; "
            f"known keys are {', '.join(TAMING_USED_PARAMS + TAMING_IGNORED_PARAMS)}"
        )
    return model, config_dir


def _resolve_remap(remap, config_dir: Path | None) -> str | None:
    """taming resolves ``remap`` relative to the working directory; also try the config's folder."""
    if remap is None:
        return None
    candidates = [Path(remap)]
    if config_dir is not None and not Path(remap).is_absolute():
        candidates.append(config_dir / remap)
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"`config`: model.params.remap names {remap!r}, which is not a file (looked in "
        f"{', '.join(str(c) for c in candidates)}); put the .npy of used code indices there or fix the path"
    )


def build_taming_vqgan(config: str | os.PathLike | dict) -> VQGAN:
    """The untrained :class:`VQGAN` a taming config describes (training mode, random weights).

    taming's ``model.params`` names are read as they are (an interface: ``n_embed``,
    ``embed_dim``, ``ddconfig``) and passed under ours (``n_embed`` -> ``num_codes``).
    """
    model_config, config_dir = read_taming_config(config)
    params = model_config["params"]
    try:
        ddconfig = DDConfig.from_dict(params["ddconfig"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"`config`: model.params.ddconfig: {error}") from None
    options = {
        # taming's VectorQuantizer2 defaults to legacy=True and VQModel never changes it.
        "legacy": True,
        "remap": _resolve_remap(params.get("remap"), config_dir),
        "sane_index_shape": bool(params.get("sane_index_shape", False)),
    }
    return VQGAN(
        ddconfig=ddconfig,
        num_codes=int(params["n_embed"]),
        embed_dim=int(params["embed_dim"]),
        beta=TAMING_BETA,
        quantizer="vq",
        quantizer_options=options,
    )


def taming_state_dict(checkpoint, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The autoencoder's entries of a taming checkpoint.

    ``checkpoint`` is what ``torch.load`` returned: a Lightning checkpoint (its
    ``'state_dict'`` entry is used; ``epoch``, ``global_step``, optimizer
    states and the rest are ignored) or a plain state_dict. Dropped: the
    ``loss.*`` entries (discriminator and LPIPS weights of
    ``VQLPIPSWithDiscriminator``, not part of the autoencoder) and
    ``colorize`` (a random projection for logging segmentation maps).
    """
    state_dict = _as_state_dict(checkpoint, source)
    return {
        key: value for key, value in state_dict.items() if not key.startswith("loss.") and key != "colorize"
    }


def load_taming_vqgan(
    config: str | os.PathLike | dict = "model.yaml",
    ckpt: str | os.PathLike | None = "last.ckpt",
) -> VQGAN:
    """A :class:`VQGAN` built from a taming-transformers config and checkpoint, in eval mode.

    Args:
        config: taming's YAML (path) or its parsed dict. Read: ``model.target``
            (one of ``VQModel``, ``VQNoDiscModel``, ``VQModelInterface``),
            ``model.params.{ddconfig, n_embed, embed_dim}`` and the optional
            ``remap`` (path of the ``.npy`` of used codes; relative paths are
            tried from the working directory, as taming does, then from the
            config's folder) and ``sane_index_shape``. Accepted and ignored:
            ``lossconfig``, ``ckpt_path``, ``ignore_keys``, ``image_key``,
            ``monitor``, ``colorize_nlabels`` (and latent-diffusion's
            training-only ``batch_resize_range``, ``scheduler_config``,
            ``lr_g_factor``). Any other key is an error naming it.
        ckpt: taming's PyTorch-Lightning checkpoint (``last.ckpt``), or a plain
            state_dict file. ``None`` returns the untrained model.

    The model keeps taming's training semantics: ``beta=0.25`` and
    ``legacy=True`` (taming's ``VectorQuantizer2`` default, which puts beta on
    the codebook term of the loss, not the commitment term; see
    :func:`vqlearn.quantize.vq_loss`), so fine-tuning it trains like taming
    would. With ``remap`` its codes are the compact indices taming reports.
    ``sane_index_shape`` is passed to the quantizer (what ``model.quantize``
    returns), but ``model.tokenize`` always returns ``(B, h, w)`` codes.

    Raises:
        ValueError / FileNotFoundError: the config is missing, malformed or
            names an unsupported model (the message names the key).
        CheckpointError: the checkpoint is missing, unreadable, needs unsafe
            unpickling (real Lightning files sometimes hold Python objects
            such as callbacks' classes or hyper-parameter containers; the
            message says how to convert them once), or does not fit the
            config (every missing and unexpected key is listed).
    """
    model = build_taming_vqgan(config)
    if ckpt is not None:
        state_dict = taming_state_dict(load_checkpoint(ckpt), source=str(ckpt))
        load_state_dict_checked(model, state_dict, source=f"taming checkpoint {ckpt}")
    return model.eval()
