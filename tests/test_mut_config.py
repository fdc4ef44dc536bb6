"""vqlearn.config: every error line, overrides, the saved-config upgrade and the family defaults
(mutation testing, issue 16)."""

import pytest

from vqlearn.config import (
    Config,
    ConfigError,
    TrainConfig,
    VQGANModel,
    VQVAE2Model,
    VQVAEModel,
    _dotted,
    _model_family,
    _type_at,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_override,
    upgrade_saved_config,
    validate,
)


def error_of(*args, **kwargs):
    with pytest.raises(ConfigError) as error:
        (kwargs.pop("call", load_config))(*args, **kwargs)
    return str(error.value)


# --- parse_override / apply_overrides ---


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a.b=1E5", ("a.b", 1e5)),
        ("a.b=-2.5e-3", ("a.b", -2.5e-3)),
        ("a.b=.5e1", ("a.b", 5.0)),
        ("a.b=+3e2", ("a.b", 300.0)),
        ("a.b=7.e-1", ("a.b", 0.7)),
        ("a.b= 1e-3 ", ("a.b", 1e-3)),
        (" a.b =x=y", ("a.b", "x=y")),
        ("a.b=", ("a.b", None)),
        ("a.b=   ", ("a.b", None)),
        ("a.b=e5", ("a.b", "e5")),
        ("a.b=1e", ("a.b", "1e")),
        ("a.b=abc1e5", ("a.b", "abc1e5")),
        ("a.b=1e5x", ("a.b", "1e5x")),
    ],
)
def test_parse_override_values(text, expected):
    key, value = parse_override(text)
    assert (key, value) == expected and type(value) is type(expected[1])


def test_parse_override_errors():
    assert error_of("train.lr", call=parse_override) == (
        "an override must look like key=value (e.g. train.lr=1e-3), got 'train.lr'")
    assert error_of(" =3", call=parse_override) == "an override must name a key before '=', got ' =3'"
    message = error_of("train.lr=[1, 2", call=parse_override)
    assert message.startswith("cannot parse the value of override `train.lr`: '[1, 2' (")


def test_apply_overrides_builds_sections_and_copies():
    values = {"train": {"lr": 1.0}, "model": None}
    result = apply_overrides(values, ["train.lr=2", ("model.dim", 8), "a.b.c=x"])
    assert result == {"train": {"lr": 2}, "model": {"dim": 8}, "a": {"b": {"c": "x"}}}
    assert values == {"train": {"lr": 1.0}, "model": None}  # a copy
    assert apply_overrides(values, None) == values and apply_overrides(values, ()) is not values


@pytest.mark.parametrize("key", ["", " ", "train..lr", ".lr", "train. ", 3])
def test_apply_overrides_refuses_keys_that_name_nothing(key):
    assert error_of({}, [(key, 1)], call=apply_overrides) == (
        f"an override must name a dotted config key such as train.lr, got {key!r}")


def test_apply_overrides_into_a_value_names_the_value():
    assert error_of({"train": {"lr": 1.0}}, ["train.lr.x.y=1"], call=apply_overrides) == (
        "cannot set `train.lr.x.y`: `train.lr` is a value, not a section")
    assert error_of({"train": 3}, ["train.lr=1"], call=apply_overrides) == (
        "cannot set `train.lr`: `train` is a value, not a section")
    assert apply_overrides({}, [" train . lr =1"]) == {"train": {"lr": 1}}


# --- load_config / config_from_dict ---


def test_load_config_sources(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\n")
    assert load_config(path).train.lr == 0.01 and load_config(str(path), ["train.lr=0.5"]).train.lr == 0.5
    config = load_config(None, ["model.dim=8"])
    assert load_config(config).model.dim == 8 and load_config(config, ["model.dim=4"]).model.dim == 4
    assert load_config({"model": {"dim": 4}}).model.dim == 4
    assert load_config() == Config()
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert error_of(empty) == (f"config file {empty} is empty (or only comments); write the sections to change "
                               f"(e.g. configs/vqvae_mnist.yaml), or `{{}}` to train every default on purpose")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    assert error_of(listing) == (f"config file {listing} must be a mapping of sections (model:, data:, quantizer:, "
                                 f"loss:, train:), got a YAML list")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    assert error_of(broken).startswith(f"cannot parse {broken} as YAML: ")
    assert error_of(tmp_path) == f"config file not found: {tmp_path}"


def test_config_from_dict_takes_null_sections_and_refuses_non_mappings():
    assert config_from_dict(None) == Config() and config_from_dict({"train": None, "model": None}) == Config()
    assert error_of([1], call=config_from_dict) == "a config must be a mapping of sections, got list"
    assert error_of({"train": 3}, call=config_from_dict) == "config key `train` must be a mapping of keys, got 3"


def test_validate_with_another_root():
    assert validate(TrainConfig, {"lr": 0.5}).lr == 0.5
    assert error_of(TrainConfig, {"lr": -1}, call=validate) == "config key `lr` must be > 0, got -1"
    assert error_of(TrainConfig, {"lrr": 1}, call=validate).startswith(
        "unknown config key `lrr` in the top level; known keys there: batch_size, lr, ")


# --- _problem: one line per kind of mistake ---


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.family=gpt"], "config key `model.family` must be one of ['vqvae', 'vqvae2', 'vqgan'], got 'gpt'"),
        (["model=3"], "config key `model` must be a mapping of keys, got 3"),
        (["train.betas=[0.9, 0.99, 0.5]"], "config key `train.betas` must be a list of at most 2 values, got "
                                           "[0.9, 0.99, 0.5]"),
        (["train.betas=0.9"], "config key `train.betas` must be a list, got 0.9"),
        (["train.betas=[0.9, 1.0]"], "config key `train.betas[1]` must be < 1, got 1.0"),
        (["train.device=gpu"], "config key `train.device` must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        (["data.name=imagenette"], None),
        (["loss.rec_loss=l2"], "config key `loss.rec_loss` must be one of ['mse', 'l1'], got 'l2'"),
        (["train.lr=[1]"], "config key `train.lr` must be a number, got [1]"),
        (["data.root=[1]"], "config key `data.root` must be a string, got [1]"),
        (["train.warmup_steps=-1"], "config key `train.warmup_steps` must be >= 0, got -1"),
        (["model.family=vqgan", "model.ddconfig=3"], "config key `model.ddconfig` must be a mapping of keys, got 3"),
        (["model.family=vqgan", "model.ddconfig.out_ch=3"],
         "config key `model.ddconfig.out_ch` is derived from `model.in_channels` (default: the dataset's channels); "
         "remove it, or set model.in_channels"),
        (["model.family=vqvae2", "model.n_embed=3"], "config key `model.n_embed` is now `model.num_codes`; rename it"),
    ],
)
def test_one_line_per_mistake(overrides, message):
    got = error_of(None, overrides)
    if message is None:
        assert got.startswith("config key `data.name`: unknown dataset 'imagenette'; choose one of: mnist")
    else:
        assert got == message


def test_unknown_keys_list_their_section():
    assert error_of(None, ["model.family=vqvae2", "model.dim=3"]) == (
        "unknown config key `model.dim` in `model`; known keys there: family, in_channels, channel, n_res_block, "
        "n_res_channel, embed_dim, num_codes")
    assert error_of(None, ["optim.lr=1"]).startswith(
        "unknown config key `optim` in the top level; known keys there: model, data, quantizer, loss, train")


def test_the_model_family_of_a_section():
    assert _model_family({}) == "vqvae" and _model_family({"family": None}) == "None"
    assert _model_family({"family": "vqgan"}) == "vqgan"
    assert _model_family(VQVAE2Model()) == "vqvae2" and _model_family(3) is None
    assert error_of({"model": {"family": None}}, call=config_from_dict) == (
        "config key `model.family` must be one of ['vqvae', 'vqvae2', 'vqgan'], got None")


def test_dotted_and_type_at():
    assert _dotted(("model", "vqgan", "ddconfig", "ch_mult", 1)) == "model.ddconfig.ch_mult[1]"
    assert _dotted(("train", "betas", 0)) == "train.betas[0]" and _dotted(()) == ""
    assert _dotted(("model", "vqvae", "dim"), root=VQVAEModel) == "model.vqvae.dim"
    assert _type_at(("model", "vqgan")) is VQGANModel and _type_at(()) is Config
    assert _type_at(("train", "betas")) == tuple[float, float]  # get_type_hints drops the bounds
    assert _type_at(("betas",), root=TrainConfig) == tuple[float, float]


def test_other_pydantic_errors_keep_pydantic_words():
    message = error_of(None, ["train.betas=[0.9, 0.99, 0.5, 0.1]"])
    assert message == "config key `train.betas` must be a list of at most 2 values, got [0.9, 0.99, 0.5, 0.1]"
    message = error_of({"model": {"family": "vqgan", "ddconfig": {"ch_mult": "abc"}}}, call=config_from_dict)
    assert message.startswith("config key `model.ddconfig.ch_mult` ")


# --- the rules across sections, the families' defaults ---


def test_families_resolve_their_quantizer_and_loss():
    for family, quantizer, loss in (("vqvae", "vq", "vq"), ("vqvae2", "ema", "vq"), ("vqgan", "vq", "vqgan")):
        config = load_config(None, [f"model.family={family}"])
        assert (config.family, config.resolved_quantizer_kind(), config.resolved_loss_kind()) == (
            family, quantizer, loss)
    config = load_config(None, ["model.family=vqvae2", "quantizer.kind=vq", "loss.kind=vqgan"])
    assert (config.resolved_quantizer_kind(), config.resolved_loss_kind()) == ("vq", "vqgan")


def test_gan_fields_without_a_gan_name_the_fix():
    assert error_of(None, ["loss.disc_weight=0.5"]) == (
        "config key `loss.disc_weight` belongs to the VQ-GAN loss but loss.kind is `vq`; "
        "remove it or set loss.kind=vqgan")
    assert load_config(None, ["loss.kind=vqgan", "loss.disc_weight=0.5"]).loss.disc_weight == 0.5


# --- the saved config and its upgrade ---


def test_upgrade_keeps_a_new_key_that_is_already_there_and_leaves_odd_sections():
    stored = {"model": {"family": "vqvae", "K": 8, "num_codes": 16}}
    assert upgrade_saved_config(stored)["model"] == {"family": "vqvae", "K": 8, "num_codes": 16,
                                                    "inplace_relu_skip": False}
    assert upgrade_saved_config({"model": None, "train": {}}) == {"model": None, "train": {}}
    assert upgrade_saved_config({"model": {"family": "vqvae", "inplace_relu_skip": True}})["model"] == {
        "family": "vqvae", "inplace_relu_skip": True}
    assert upgrade_saved_config({"model": {"K": 4}})["model"] == {"num_codes": 4, "inplace_relu_skip": False}
    assert upgrade_saved_config({}) == {}


def test_config_to_dict_is_plain_and_skips_derived_keys():
    stored = config_to_dict(load_config(None, ["model.family=vqgan", "model.ddconfig.ch_mult=[1,2]"]))
    assert stored["model"]["ddconfig"]["ch_mult"] == [1, 2] and stored["train"]["betas"] == [0.9, 0.999]
    assert "in_channels" not in stored["model"]["ddconfig"] and "out_ch" not in stored["model"]["ddconfig"]
    assert stored["model"]["in_channels"] is None and stored["model"]["family"] == "vqgan"
    assert set(stored) == {"model", "data", "quantizer", "loss", "train"}


# --- _problem for other roots (the prior's config is one): nothing Config-specific leaks into their keys ---

from pydantic import Field, field_validator  # noqa: E402
from pydantic.dataclasses import dataclass  # noqa: E402

from vqlearn.config import SECTION, Int  # noqa: E402


@dataclass(config=SECTION)
class _Inner:
    x: Int = 0
    pair: tuple[Int, Int] = (1, 2)


@dataclass(config=SECTION)
class _Middle:
    sub: _Inner = Field(default_factory=_Inner)
    even: Int = 0

    @field_validator("even")
    @classmethod
    def must_be_even(cls, value):
        if value % 2:
            raise ValueError("must be even")
        return value


@dataclass(config=SECTION)
class _Root:
    required: Int
    model: _Middle = Field(default_factory=_Middle)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"required": 1, "model": {"sub": {"x": "a"}}}, "config key `model.sub.x` must be an integer, got 'a'"),
        ({"required": 1, "model": {"sub": {"y": 1}}},
         "unknown config key `model.sub.y` in `model.sub`; known keys there: x, pair"),
        ({"required": 1, "model": {"sub": {"pair": [1]}}}, "config key `model.sub.pair` must be a list of 2 values, "
                                                          "got [1]"),
        ({"required": 1, "model": {"even": 3}}, "config key `model.even`: must be even"),
        ({"model": {}}, "config key `required`: Field required, got {'model': {}}"),
    ],
)
def test_problems_under_another_root_keep_their_keys(values, message):
    assert error_of(_Root, values, call=validate) == message


def test_dotted_strips_only_the_leading_dot():
    assert _dotted(("Xray", "a")) == "Xray.a" and _dotted(("XX", 0)) == "XX[0]"
