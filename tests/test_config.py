"""The typed config: loading, overrides, and errors that name the key."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from vqlearn.config import (
    Config,
    ConfigError,
    TrainConfig,
    VQGANModel,
    VQVAE2Model,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_override,
    upgrade_saved_config,
)
from vqlearn.losses import DISC_LOSSES, REC_LOSSES
from vqlearn.quantizers import QUANTIZER_KINDS
from vqlearn.runtime import PRECISIONS
from vqlearn.build import build_loss, build_model
from vqlearn.data import check_data_paths
from vqlearn.build import learning_rate

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
GPU_CONFIGS = ["vqvae_mnist_seed.yaml", "vqvae_cifar10_seed.yaml", "vqvae2_imagenet.yaml", "vqgan_imagenet_f16_1024.yaml"]


def test_every_shipped_config_loads():
    names = {p.name for p in CONFIGS}
    assert {"vqvae_mnist.yaml", "vqvae2_photos.yaml", "vqgan_photos.yaml", *GPU_CONFIGS} <= names
    for path in CONFIGS:
        config = load_config(path)
        assert config_from_dict(config_to_dict(config)) == config, path.name


def test_seed_settings_in_gpu_configs():
    seed = load_config(CONFIGS[0].parent / "vqvae_mnist_seed.yaml")
    assert (seed.model.dim, seed.model.num_codes, seed.train.batch_size, seed.train.lr) == (256, 512, 32, 3e-4)
    v2 = load_config(CONFIGS[0].parent / "vqvae2_imagenet.yaml")
    assert isinstance(v2.model, VQVAE2Model)
    assert (v2.model.channel, v2.model.n_res_block, v2.model.n_res_channel) == (128, 2, 64)
    assert (v2.model.embed_dim, v2.model.num_codes, v2.train.batch_size, v2.quantizer.beta) == (64, 512, 128, 0.25)
    assert v2.resolved_quantizer_kind() == "ema"
    gan = load_config(CONFIGS[0].parent / "vqgan_imagenet_f16_1024.yaml")
    assert isinstance(gan.model, VQGANModel)
    dd = gan.model.ddconfig
    assert (gan.model.embed_dim, gan.model.num_codes) == (256, 1024)
    assert (dd.ch, dd.ch_mult, dd.num_res_blocks, dd.attn_resolutions, dd.z_channels, dd.resolution) == (
        128, (1, 1, 2, 2, 4), 2, (16,), 256, 256)
    assert (gan.loss.disc_start, gan.loss.disc_weight, gan.loss.codebook_weight) == (250001, 0.8, 1.0)
    assert gan.train.lr == 4.5e-6 and gan.train.scale_lr
    # taming's rule: base_lr * batch_size * number of GPUs
    assert learning_rate(gan, step=0, world_size=8) == pytest.approx(4.5e-6 * 32 * 8)


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_gpu_configs_without_their_data_name_the_root_key(name):
    config = load_config(CONFIGS[0].parent / name, ["data.root=/nonexistent/vqlearn-data"])
    with pytest.raises(ConfigError, match=r"data\.root"):
        check_data_paths(config.data)
    config = load_config(CONFIGS[0].parent / name, ["data.root=null"])
    with pytest.raises(ConfigError, match=r"data\.root"):
        check_data_paths(config.data)


def test_defaults_are_the_seed_vqvae():
    config = load_config()
    assert isinstance(config, Config)
    assert (config.family, config.model.dim, config.model.num_codes) == ("vqvae", 256, 512)
    assert config.resolved_quantizer_kind() == "vq" and config.resolved_loss_kind() == "vq"


def test_overrides_are_yaml_values():
    assert parse_override("train.lr=1e-3") == ("train.lr", 1e-3)
    assert parse_override("model.ddconfig.ch_mult=[1, 2]") == ("model.ddconfig.ch_mult", [1, 2])
    assert parse_override("data.root=null") == ("data.root", None)
    assert parse_override("train.compile=true") == ("train.compile", True)
    config = load_config(None, ["model.family=vqgan", "model.ddconfig.ch_mult=[1,2]", "train.lr=3e-4",
                                ("train.batch_size", 4)])
    assert config.model.ddconfig.ch_mult == (1, 2)
    assert config.train.lr == 3e-4 and config.train.batch_size == 4
    assert config.resolved_loss_kind() == "vqgan"


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lrr=1", "train.lrr"),
        ("model.dimm=3", "model.dimm"),
        ("optim.lr=1", "optim"),
        ("model.ddconfig.chh=3", "model.ddconfig"),  # a VQ-VAE has no ddconfig
    ],
)
def test_unknown_keys_are_named(override, key):
    with pytest.raises(ConfigError, match="unknown config key") as error:
        load_config(None, [override])
    assert f"`{key}`" in str(error.value)


def test_unknown_ddconfig_key_is_named():
    with pytest.raises(ConfigError, match=r"model\.ddconfig\.chh"):
        load_config(None, ["model.family=vqgan", "model.ddconfig.chh=3"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lr=fast", "train.lr"),
        ("train.batch_size=1.5", "train.batch_size"),
        ("model.batchnorm=maybe", "model.batchnorm"),
        ("train.betas=[0.9]", "train.betas"),
        ("data.name=3", "data.name"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.precision=fp8", "train.precision"),
        ("model.family=transformer", "model.family"),
        ("quantizer.kind=pq", "quantizer.kind"),
        ("quantizer.init=random", "quantizer.init"),
    ],
)
def test_wrong_values_are_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_options_of_the_other_kind_are_refused():
    with pytest.raises(ConfigError, match=r"quantizer\.decay"):
        load_config(None, ["quantizer.decay=0.9"])  # a vq codebook has no decay
    with pytest.raises(ConfigError, match=r"quantizer\.l2_normalize"):
        load_config(None, ["quantizer.kind=ema", "quantizer.l2_normalize=true"])
    with pytest.raises(ConfigError, match=r"loss\.disc_start"):
        load_config(None, ["loss.disc_start=10"])  # vqvae: no discriminator
    with pytest.raises(ConfigError, match=r"model\.ddconfig\.in_channels"):
        load_config(None, ["model.family=vqgan", "model.ddconfig.in_channels=3"])


def test_bad_override_syntax_and_missing_file():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")
    with pytest.raises(ConfigError, match="is a value"):
        load_config({"train": {"lr": 1.0}}, ["train.lr.x=1"])


def test_builders_follow_the_config():
    config = load_config(None, ["model.in_channels=1", "model.dim=16", "model.num_codes=8", "quantizer.kind=ema",
                                "quantizer.decay=0.9"])
    model = build_model(config)
    assert model.quantize.num_codes == 8 and model.quantize.decay == 0.9
    assert not model.encoder[4].inplace_relu_skip
    assert build_model(load_config(config, ["model.inplace_relu_skip=true"])).encoder[4].inplace_relu_skip
    gan = load_config(None, ["model.family=vqgan", "model.ddconfig={ch: 32, ch_mult: [1, 2], attn_resolutions: [], "
                             "num_groups: 8, z_channels: 8, resolution: 16}", "model.embed_dim=8",
                             "model.num_codes=16", "loss.perceptual_weight=0", "loss.disc_start=7", "model.in_channels=1"])
    model = build_model(gan)
    assert model.encoder.conv_in.in_channels == 1 and model.decoder.conv_out.out_channels == 1
    loss = build_loss(gan)
    assert loss.discriminator_iter_start == 7 and loss.perceptual_loss is None


def test_warmup():
    config = load_config(None, ["train.lr=1e-3", "train.warmup_steps=10"])
    assert learning_rate(config, 0) == pytest.approx(1e-4)
    assert learning_rate(config, 9) == pytest.approx(1e-3)
    assert learning_rate(config, 500) == pytest.approx(1e-3)


def test_cosine_schedule():
    config = load_config(None, ["train.lr=1e-3", "train.lr_schedule=cosine", "train.max_steps=100",
                                "train.min_lr_ratio=0.1", "train.warmup_steps=10"])
    assert learning_rate(config, 0) == pytest.approx(1e-4)  # warmup first
    assert learning_rate(config, 10) == pytest.approx(1e-3)
    assert learning_rate(config, 55) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way down
    assert learning_rate(config, 100) == pytest.approx(1e-4)
    assert learning_rate(config, 1000) == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match=r"train\.lr_schedule"):
        load_config(None, ["train.lr_schedule=linear"])


def test_the_model_family_picks_the_schema():
    """``model`` is a union keyed on ``family``: a key of another family is named with this family's keys."""
    ddconfig = {"ch": 32, "ch_mult": [1, 2]}
    assert isinstance(config_from_dict({"model": {"family": "vqgan", "ddconfig": ddconfig}}).model, VQGANModel)
    with pytest.raises(ConfigError) as error:
        config_from_dict({"model": {"family": "vqvae", "ddconfig": ddconfig}})
    assert str(error.value) == (
        "unknown config key `model.ddconfig` in `model`; known keys there: "
        "family, in_channels, dim, num_codes, batchnorm, inplace_relu_skip"
    )


def test_choices_come_from_their_one_home():
    with pytest.raises(ConfigError) as error:
        load_config(None, ["quantizer.kind=vqq"])
    assert str(error.value) == "config key `quantizer.kind` must be one of ['vq', 'ema', 'fsq', 'lfq', 'rvq'], got 'vqq'"
    allowed = {"quantizer.kind": QUANTIZER_KINDS, "loss.rec_loss": REC_LOSSES, "train.precision": PRECISIONS}
    needs = {"fsq": ["quantizer.levels=[8,8,8]"]}  # 512 codes, the default, has no recommended FSQ levels
    for key, values in allowed.items():
        for value in values:
            load_config(None, [(key, value), *needs.get(value, [])])
        with pytest.raises(ConfigError, match=re.escape(f"must be one of {list(values)}")):
            load_config(None, [(key, "nonsense")])
    for value in DISC_LOSSES:
        load_config(None, ["model.family=vqgan", ("loss.disc_loss", value)])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.batch_size=0"], "config key `train.batch_size` must be > 0, got 0"),
        (["train.min_lr_ratio=2"], "config key `train.min_lr_ratio` must be <= 1.0, got 2"),
        (["quantizer.beta=-1"], "config key `quantizer.beta` must be >= 0, got -1"),
        (["quantizer.kind=ema", "quantizer.decay=1.5"], "config key `quantizer.decay` must be < 1, got 1.5"),
    ],
)
def test_bounds_are_named(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert str(error.value) == message


def test_list_items_are_named_by_index():
    with pytest.raises(ConfigError) as error:
        load_config(None, ["model.family=vqgan", "model.ddconfig.ch_mult=[1, two, 4]"])
    assert str(error.value) == "config key `model.ddconfig.ch_mult[1]` must be an integer, got 'two'"
    with pytest.raises(ConfigError) as error:
        load_config(None, ["train.betas=[0.9]"])
    assert str(error.value) == "config key `train.betas` must be a list of 2 values, got [0.9]"


def test_every_problem_is_one_line():
    with pytest.raises(ConfigError) as error:
        load_config(None, ["train.lr=fast", "train.lrr=1", "data.name=3"])
    assert str(error.value).splitlines() == [
        "config key `data.name` must be a string, got 3",
        "config key `train.lr` must be a number, got 'fast'",
        "unknown config key `train.lrr` in `train`; known keys there: " + ", ".join(
            f.name for f in dataclasses.fields(TrainConfig)),
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_plain_dicts_round_trip(path):
    """The dict stored in every checkpoint: plain values only, and it loads back to the same config."""
    stored = config_to_dict(load_config(path))
    assert json.loads(json.dumps(stored)) == stored  # lists, not tuples; no dataclasses
    assert config_to_dict(config_from_dict(stored)) == stored
    if "ddconfig" in stored["model"]:
        assert not {"in_channels", "out_ch"} & set(stored["model"]["ddconfig"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.batch_size=true", "config key `train.batch_size` must be an integer, got True"),
        ("train.batch_size=4.0", "config key `train.batch_size` must be an integer, got 4.0"),
        ("train.batch_size='4'", "config key `train.batch_size` must be an integer, got '4'"),
        ("model.batchnorm=1", "config key `model.batchnorm` must be true or false, got 1"),
        ("train.lr=true", "config key `train.lr` must be a number, got True"),
    ],
)
def test_integers_and_booleans_are_strict(override, message):
    """pydantic's lax mode would read these as 1, 4, 4, True and 1.0: a typo would train silently."""
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert str(error.value) == message


def test_numbers_take_integers_and_numeric_strings():
    config = load_config({"train": {"lr": "3e-4"}}, ["train.weight_decay=1"])
    assert config.train.lr == 3e-4 and config.train.weight_decay == 1.0


@pytest.mark.parametrize("family, old", [("vqvae", "K"), ("vqvae2", "n_embed"), ("vqgan", "n_embed")])
def test_an_old_key_in_yaml_or_override_names_the_new_key(family, old, tmp_path):
    message = f"config key `model.{old}` is now `model.num_codes`; rename it"
    path = tmp_path / "old.yaml"
    path.write_text(f"model:\n  family: {family}\n  {old}: 8\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == message
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"model.family={family}", f"model.{old}=8"])  # --set
    assert str(error.value) == message


def test_upgrade_saved_config_renames_old_keys_and_adds_new_ones():
    old = {"model": {"family": "vqvae", "dim": 16, "K": 8, "batchnorm": True}, "train": {"lr": 1e-3}}
    upgraded = upgrade_saved_config(old)
    assert upgraded["model"] == {"family": "vqvae", "dim": 16, "num_codes": 8, "batchnorm": True,
                                 "inplace_relu_skip": False}
    assert "K" in old["model"]  # the stored dict is left alone
    assert config_from_dict(upgraded).model.num_codes == 8
    for family in ("vqvae2", "vqgan"):
        upgraded = upgrade_saved_config({"model": {"family": family, "n_embed": 8}})
        assert upgraded["model"] == {"family": family, "num_codes": 8}
    current = config_to_dict(load_config(None))
    assert upgrade_saved_config(current) == current  # a checkpoint written today is unchanged
