"""Tests of vqlearn.pretrained: rosinality VQ-VAE-2 and taming VQGAN checkpoints.

The original projects are not installed, so checkpoints are written here in
their key layouts (enumerated by tests/reference_impls.py from the originals'
constructor logic, not from our models), loaded with our loaders, and our
models' codes and reconstructions are compared with the functional references
of the original forward passes in tests/reference_impls.py.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vqlearn.checkpoint import CheckpointError, load_checkpoint
from vqlearn.models.vqgan import VQGAN
from vqlearn.models.vqvae2 import VQVAE2
from vqlearn.pretrained import load_pytorch_vqvae, load_rosinality_vqvae2, load_taming_vqgan

_spec = importlib.util.spec_from_file_location("reference_impls", Path(__file__).with_name("reference_impls.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

ROS = dict(in_channels=3, channel=32, n_res_block=2, n_res_channel=8, embed_dim=8, num_codes=16)
# The same model in rosinality's VQVAE argument names, for the reference implementation.
ROS_REF = {{"in_channels": "in_channel", "num_codes": "n_embed"}.get(key, key): value for key, value in ROS.items()}
DD = dict(
    double_z=False,
    z_channels=8,
    resolution=32,
    in_channels=3,
    out_ch=3,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=2,
    attn_resolutions=[16],
    dropout=0.0,
)
TAMING = {
    "model": {
        "base_learning_rate": 4.5e-6,
        "target": "taming.models.vqgan.VQModel",
        "params": {
            "embed_dim": 8,
            "n_embed": 16,
            "ddconfig": DD,
            "lossconfig": {
                "target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                "params": {"disc_start": 10, "disc_weight": 0.8, "codebook_weight": 1.0},
            },
        },
    }
}

# taming-transformers' published ImageNet f16/1024 model.yaml (model section and the data section's shape).
F16_1024_YAML = textwrap.dedent(
    """\
    model:
      base_learning_rate: 4.5e-06
      target: taming.models.vqgan.VQModel
      params:
        embed_dim: 256
        n_embed: 1024
        ddconfig:
          double_z: false
          z_channels: 256
          resolution: 256
          in_channels: 3
          out_ch: 3
          ch: 128
          ch_mult:
          - 1
          - 1
          - 2
          - 2
          - 4
          num_res_blocks: 2
          attn_resolutions:
          - 16
          dropout: 0.0
        lossconfig:
          target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator
          params:
            disc_conditional: false
            disc_in_channels: 3
            disc_start: 250001
            disc_weight: 0.8
            codebook_weight: 1.0
    data:
      target: main.DataModuleFromConfig
      params:
        batch_size: 12
        num_workers: 24
        train:
          target: taming.data.imagenet.ImageNetTrain
          params:
            config:
              size: 256
        validation:
          target: taming.data.imagenet.ImageNetValidation
          params:
            config:
              size: 256
    """
)


class TrainerState:
    """Stands for the Python objects real Lightning checkpoints may pickle (callbacks, hparams)."""

    def __init__(self):
        self.best = 1.0


def images(seed: int = 0, batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def layout(state_dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(value.shape)) for name, value in state_dict.items()]


def lightning_checkpoint(state_dict: dict) -> dict:
    """What taming's Lightning trainer saves, with the loss module's weights in the state_dict."""
    full = dict(state_dict)
    full["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    full["loss.discriminator.main.0.bias"] = torch.randn(64)
    full["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    return {
        "epoch": 3,
        "global_step": 1234,
        "pytorch-lightning_version": "1.0.8",
        "state_dict": full,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 4.5e-6}]}],
        "lr_schedulers": [],
    }


@pytest.fixture(scope="module")
def rosinality_weights():
    """Random weights in rosinality's layout, codebooks drawn from the latents of ``images()``."""
    keys = ref.rosinality_vqvae2_keys(**ROS_REF)
    return ref.rosinality_fit_codebooks(ref.random_state_dict(keys, seed=1), images(), ROS["n_res_block"])


@pytest.fixture(scope="module")
def taming_weights():
    keys = ref.taming_vqmodel_keys(DD, 16, 8)
    return ref.taming_fit_codebook(ref.random_state_dict(keys, seed=2), DD, images())


# ---------------------------------------------------------------------------
# The references read exactly the keys they enumerate
# ---------------------------------------------------------------------------


def test_references_read_every_enumerated_key(rosinality_weights, taming_weights):
    sd = ref.RecordingDict(rosinality_weights)
    _, _, _, top, bottom = ref.rosinality_encode(sd, images())
    ref.rosinality_decode_code(sd, top, bottom)
    ema_statistics = {f"quantize_{level}.{name}" for level in "tb" for name in ("cluster_size", "embed_avg")}
    assert sd.read == set(sd) - ema_statistics

    sd = ref.RecordingDict(taming_weights)
    _, _, codes = ref.taming_encode(sd, DD, images())
    ref.taming_decode_code(sd, DD, codes)
    assert sd.read == set(sd)


# ---------------------------------------------------------------------------
# rosinality/vq-vae-2-pytorch
# ---------------------------------------------------------------------------


def test_vqvae2_has_rosinality_parameter_and_buffer_names():
    """Same names, shapes and order as rosinality's VQVAE, at its defaults and at the test size."""
    assert layout(VQVAE2().state_dict()) == list(ref.rosinality_vqvae2_keys().items())
    assert layout(VQVAE2(**ROS).state_dict()) == list(ref.rosinality_vqvae2_keys(**ROS_REF).items())


def test_rosinality_checkpoint_gives_the_original_codes_and_reconstructions(tmp_path, rosinality_weights):
    path = tmp_path / "vqvae_560.pt"
    torch.save(rosinality_weights, path)  # what rosinality's train_vqvae.py does
    model = load_rosinality_vqvae2(path, **ROS)
    assert isinstance(model, VQVAE2) and not model.training

    x = images()
    _, _, diff, ref_top, ref_bottom = ref.rosinality_encode(rosinality_weights, x)
    top, bottom = model.tokenize(x)
    assert top.shape == (2, 4, 4) and bottom.shape == (2, 8, 8)
    assert torch.equal(top, ref_top) and torch.equal(bottom, ref_bottom)
    assert top.unique().numel() > 4 and bottom.unique().numel() > 4  # a test on one code would be weak

    expected = ref.rosinality_decode_code(rosinality_weights, ref_top, ref_bottom)
    torch.testing.assert_close(model.reconstruct(x), expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        out = model(x)
    expected, diff = ref.rosinality_forward(rosinality_weights, x)
    torch.testing.assert_close(out.reconstruction, expected, atol=1e-5, rtol=1e-5)
    # rosinality's train script weights the latent diff by latent_loss_weight=0.25: our beta.
    torch.testing.assert_close(out.quant_loss, 0.25 * diff)
    assert torch.equal(model.quantize_t.embed, rosinality_weights["quantize_t.embed"])  # eval: no EMA update


def test_rosinality_checkpoint_saved_under_ddp_loads(tmp_path, rosinality_weights):
    path = tmp_path / "vqvae_ddp.pt"
    torch.save({f"module.{name}": value for name, value in rosinality_weights.items()}, path)
    model = load_rosinality_vqvae2(path, **ROS)
    _, _, _, ref_top, ref_bottom = ref.rosinality_encode(rosinality_weights, images())
    top, bottom = model.tokenize(images())
    assert torch.equal(top, ref_top) and torch.equal(bottom, ref_bottom)


def test_rosinality_mismatch_lists_missing_and_unexpected_keys(tmp_path, rosinality_weights):
    weights = dict(rosinality_weights)
    del weights["dec.blocks.0.bias"]
    weights["enc_b.blocks.99.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(weights, path)
    with pytest.raises(CheckpointError) as error:
        load_rosinality_vqvae2(path, **ROS)
    message = str(error.value)
    assert "dec.blocks.0.bias" in message and "enc_b.blocks.99.weight" in message
    assert "missing" in message and "unexpected" in message


def test_rosinality_wrong_size_argument_is_reported_as_shape_mismatch(tmp_path, rosinality_weights):
    path = tmp_path / "vqvae.pt"
    torch.save(rosinality_weights, path)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_rosinality_vqvae2(path, **{**ROS, "num_codes": 32})


def test_rosinality_file_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_rosinality_vqvae2(path, **ROS)


# ---------------------------------------------------------------------------
# CompVis/taming-transformers
# ---------------------------------------------------------------------------


def test_vqgan_has_taming_parameter_and_buffer_names():
    model = load_taming_vqgan(TAMING, ckpt=None)
    assert layout(model.state_dict()) == list(ref.taming_vqmodel_keys(DD, 16, 8).items())


def test_taming_checkpoint_gives_the_original_codes_and_reconstructions(tmp_path, taming_weights):
    config = tmp_path / "model.yaml"
    config.write_text(yaml.safe_dump(TAMING))
    ckpt = tmp_path / "last.ckpt"
    torch.save(lightning_checkpoint(taming_weights), ckpt)

    model = load_taming_vqgan(config, ckpt)
    assert isinstance(model, VQGAN) and not model.training
    assert model.quantize.legacy is True and model.quantize.beta == 0.25  # taming's training semantics

    x = images()
    _, ref_loss, ref_codes = ref.taming_encode(taming_weights, DD, x)
    codes = model.tokenize(x)
    assert codes.shape == (2, 16, 16) and codes.dtype == torch.long
    assert torch.equal(codes, ref_codes)
    assert codes.unique().numel() > 4

    expected = ref.taming_decode_code(taming_weights, DD, ref_codes)
    torch.testing.assert_close(model.reconstruct(x), expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        out = model(x)
    expected, ref_loss = ref.taming_forward(taming_weights, DD, x)
    torch.testing.assert_close(out.reconstruction, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.quant_loss, ref_loss)

    from_dict = load_taming_vqgan(TAMING, ckpt)  # the parsed config works the same
    assert all(torch.equal(a, b) for a, b in zip(from_dict.state_dict().values(), model.state_dict().values()))


def test_taming_quantizer_has_legacy_loss_gradients(taming_weights):
    """Beta on the codebook term: the encoder gets the full commitment gradient, as in taming."""
    model = load_taming_vqgan(TAMING, ckpt=None)
    model.quantize.embedding.weight.data.copy_(taming_weights["quantize.embedding.weight"])
    z = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(3), requires_grad=True)
    model.quantize(z).loss.backward()
    ours = z.grad.clone(), model.quantize.embedding.weight.grad.clone()

    z.grad = None
    codebook = taming_weights["quantize.embedding.weight"].clone().requires_grad_(True)
    _, loss, _ = ref.taming_quantize({"quantize.embedding.weight": codebook}, z, legacy=True)
    loss.backward()
    torch.testing.assert_close(ours[0], z.grad)
    torch.testing.assert_close(ours[1], codebook.grad)


def test_taming_remap_gives_the_original_compact_codes(tmp_path, taming_weights):
    used = torch.randperm(16, generator=torch.Generator().manual_seed(4))
    np.save(tmp_path / "used.npy", used.numpy())
    config = {"model": {**TAMING["model"], "params": {**TAMING["model"]["params"], "remap": "used.npy"}}}
    config_path = tmp_path / "model.yaml"
    config_path.write_text(yaml.safe_dump(config))  # `remap` relative to the config's folder
    weights = {**taming_weights, "quantize.used": used}
    ckpt = tmp_path / "last.ckpt"
    torch.save(lightning_checkpoint(weights), ckpt)

    model = load_taming_vqgan(config_path, ckpt)
    assert layout(model.state_dict()) == list(ref.taming_vqmodel_keys(DD, 16, 8, remap_size=16).items())
    x = images()
    _, _, ref_codes = ref.taming_encode(weights, DD, x)
    assert torch.equal(model.tokenize(x), ref_codes)
    torch.testing.assert_close(
        model.reconstruct(x), ref.taming_decode_code(weights, DD, ref_codes), atol=1e-5, rtol=1e-5
    )


def test_taming_imagenet_f16_1024_config_builds_the_published_model(tmp_path):
    config = tmp_path / "model.yaml"
    config.write_text(F16_1024_YAML)
    model = load_taming_vqgan(config, ckpt=None)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 72_141_699
    state_dict = model.state_dict()
    assert len(state_dict) == 343
    ddconfig = yaml.safe_load(F16_1024_YAML)["model"]["params"]["ddconfig"]
    assert layout(state_dict) == list(ref.taming_vqmodel_keys(ddconfig, 1024, 256).items())
    assert model.downsample_factor == 16


def test_taming_mismatch_lists_missing_and_unexpected_keys(tmp_path, taming_weights):
    weights = dict(taming_weights)
    del weights["decoder.up.1.attn.2.proj_out.bias"]
    weights["encoder.down.5.block.0.conv1.weight"] = torch.zeros(1)
    ckpt = tmp_path / "last.ckpt"
    torch.save(lightning_checkpoint(weights), ckpt)
    with pytest.raises(CheckpointError) as error:
        load_taming_vqgan(TAMING, ckpt)
    message = str(error.value)
    assert "decoder.up.1.attn.2.proj_out.bias" in message and "encoder.down.5.block.0.conv1.weight" in message
    assert "loss." not in message  # the loss module's entries are skipped, not reported


def test_taming_checkpoint_with_python_objects_is_refused_with_the_explanation(tmp_path, taming_weights):
    ckpt = tmp_path / "last.ckpt"
    torch.save({**lightning_checkpoint(taming_weights), "hyper_parameters": TrainerState()}, ckpt)
    with pytest.raises(CheckpointError) as direct:
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError) as error:
        load_taming_vqgan(TAMING, ckpt)
    assert str(error.value) == str(direct.value)  # load_checkpoint's explained refusal, unchanged
    assert "refusing to load" in str(error.value) and "TrainerState" in str(error.value)
    assert "weights_only=False" in str(error.value)  # says how to convert a trusted file


def _with(**changes):
    model = {**TAMING["model"], "params": dict(TAMING["model"]["params"])}
    for key, value in changes.items():
        if key == "target":
            model["target"] = value
        elif value is None:
            model["params"].pop(key)
        else:
            model["params"][key] = value
    return {"model": model}


@pytest.mark.parametrize(
    "config, error, named",
    [
        (_with(target="taming.models.vqgan.GumbelVQ"), ValueError, "model.target"),
        ({"model": {"params": TAMING["model"]["params"]}}, ValueError, "model.target"),
        ({"model": {"target": "taming.models.vqgan.VQModel"}}, ValueError, "model.params"),
        (_with(ddconfig=None), ValueError, "model.params.ddconfig"),
        (_with(n_embed=None), ValueError, "model.params.n_embed"),
        (_with(kl_weight=1e-8), ValueError, "model.params.kl_weight"),
        (_with(ddconfig={**DD, "chmult": [1, 2]}), ValueError, "chmult"),
        (_with(remap="no/such/used.npy"), FileNotFoundError, "remap"),
        ("no/such/model.yaml", FileNotFoundError, "config"),
    ],
)
def test_taming_config_errors_name_the_key(config, error, named):
    with pytest.raises(error, match=named.replace(".", r"\.")):
        load_taming_vqgan(config, ckpt=None)


def test_taming_config_ignores_training_only_params():
    config = _with(ckpt_path="logs/x/last.ckpt", ignore_keys=["loss"], image_key="image", monitor="val/rec_loss")
    model = load_taming_vqgan(config, ckpt=None)
    assert layout(model.state_dict()) == list(ref.taming_vqmodel_keys(DD, 16, 8).items())


# ---------------------------------------------------------------------------
# ritheshkumar95/pytorch-vqvae
# ---------------------------------------------------------------------------


class PytorchVqvaeReference:
    """An independent copy of pytorch-vqvae's modules.py (``VQEmbedding``, ``ResBlock``,
    ``VectorQuantizedVAE``), written from the reference file, not from vqlearn: the same
    module tree (so the same state_dict keys) and the same forward, in-place ReLUs included.
    Only ``functions.vq`` is inlined (its distance + argmin)."""

    class VQEmbedding(torch.nn.Module):
        def __init__(self, K, D):
            super().__init__()
            self.embedding = torch.nn.Embedding(K, D)
            self.embedding.weight.data.uniform_(-1.0 / K, 1.0 / K)

    class ResBlock(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            nn = torch.nn
            self.block = nn.Sequential(
                nn.ReLU(True), nn.Conv2d(dim, dim, 3, 1, 1), nn.BatchNorm2d(dim),
                nn.ReLU(True), nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim),
            )

        def forward(self, x):
            return x + self.block(x)  # the block's in-place ReLU has already turned x into ReLU(x)

    class VectorQuantizedVAE(torch.nn.Module):
        def __init__(self, input_dim, dim, K=512):
            super().__init__()
            nn, R = torch.nn, PytorchVqvaeReference.ResBlock
            self.encoder = nn.Sequential(
                nn.Conv2d(input_dim, dim, 4, 2, 1), nn.BatchNorm2d(dim), nn.ReLU(True),
                nn.Conv2d(dim, dim, 4, 2, 1), R(dim), R(dim),
            )
            self.codebook = PytorchVqvaeReference.VQEmbedding(K, dim)
            self.decoder = nn.Sequential(
                R(dim), R(dim), nn.ReLU(True), nn.ConvTranspose2d(dim, dim, 4, 2, 1), nn.BatchNorm2d(dim),
                nn.ReLU(True), nn.ConvTranspose2d(dim, input_dim, 4, 2, 1), nn.Tanh(),
            )

        def encode(self, x):  # functions.vq: ||e||^2 + ||z||^2 - 2 z.e, argmin over codes
            z = self.encoder(x).permute(0, 2, 3, 1).contiguous()
            codebook = self.codebook.embedding.weight
            flat = z.view(-1, codebook.size(1))
            distances = torch.addmm((codebook**2).sum(1) + (flat**2).sum(1, keepdim=True), flat, codebook.t(),
                                    alpha=-2.0, beta=1.0)
            return distances.argmin(dim=1).view(*z.shape[:-1])

        def decode(self, latents):
            return self.decoder(self.codebook.embedding(latents).permute(0, 3, 1, 2))


PV = dict(in_channels=1, dim=8, num_codes=16)


def mnist_like(seed: int = 0, batch: int = 4) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def pytorch_vqvae_reference():
    """The reference model with random weights, non-trivial BatchNorm statistics, and codes
    drawn from its own encoder outputs (so that many different codes are chosen)."""
    torch.manual_seed(3)
    model = PytorchVqvaeReference.VectorQuantizedVAE(PV["in_channels"], PV["dim"], PV["num_codes"])
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
        model.eval()
        z = model.encoder(mnist_like(seed=9)).permute(0, 2, 3, 1).reshape(-1, PV["dim"])
        model.codebook.embedding.weight.copy_(z[torch.randperm(len(z))[: PV["num_codes"]]])
    return model


def test_pytorch_vqvae_reference_has_the_reproductions_key_layout(pytorch_vqvae_reference):
    keys = dict(layout(pytorch_vqvae_reference.state_dict()))
    d, k = PV["dim"], PV["num_codes"]
    # modules.py: self.codebook = VQEmbedding(K, dim), whose nn.Embedding is `embedding`.
    assert keys["codebook.embedding.weight"] == (k, d)
    assert keys["encoder.0.weight"] == (d, 1, 4, 4) and keys["encoder.1.running_var"] == (d,)
    assert keys["encoder.4.block.1.weight"] == (d, d, 3, 3) and keys["encoder.5.block.5.running_mean"] == (d,)
    assert keys["decoder.1.block.4.weight"] == (d, d, 1, 1)
    assert keys["decoder.3.weight"] == (d, d, 4, 4) and keys["decoder.6.weight"] == (d, 1, 4, 4)
    assert len(keys) == 75 and not any(key.startswith("quantize") for key in keys)


def test_pytorch_vqvae_checkpoint_gives_the_reference_codes_and_reconstructions(tmp_path, pytorch_vqvae_reference):
    path = tmp_path / "best.pt"
    torch.save(pytorch_vqvae_reference.state_dict(), path)  # what vqvae.py writes
    model = load_pytorch_vqvae(path)  # sizes read from the weights
    assert (model.in_channels, model.quantize.num_codes, model.quantize.dim) == (1, 16, 8)
    assert not model.training and model.quantize.beta == 1.0
    x = mnist_like(seed=1)
    with torch.no_grad():
        ref_codes = pytorch_vqvae_reference.encode(x.clone())
        ref_images = pytorch_vqvae_reference.decode(ref_codes)
    assert len(ref_codes.unique()) > 4  # a real test: many codes in use
    assert torch.equal(model.tokenize(x), ref_codes)
    torch.testing.assert_close(model.reconstruct(x), ref_images, atol=1e-5, rtol=1e-5)


def test_pytorch_vqvae_plain_skip_is_a_different_network(pytorch_vqvae_reference):
    """Why inplace_relu_skip=True is the default: the plain skip computes something else."""
    state = pytorch_vqvae_reference.state_dict()
    x = mnist_like(seed=1)
    with torch.no_grad():
        ref_images = pytorch_vqvae_reference.decode(pytorch_vqvae_reference.encode(x.clone()))
    plain = load_pytorch_vqvae(state, inplace_relu_skip=False)
    assert not torch.equal(plain.tokenize(x), pytorch_vqvae_reference.encode(x.clone()))
    assert (plain.reconstruct(x) - ref_images).abs().max() > 1e-2


def test_pytorch_vqvae_state_dict_saved_under_ddp_or_wrapped_loads(pytorch_vqvae_reference):
    state = pytorch_vqvae_reference.state_dict()
    x = mnist_like(seed=2)
    ref_codes = pytorch_vqvae_reference.encode(x.clone())
    ddp = load_pytorch_vqvae({f"module.{key}": value for key, value in state.items()}, **PV)
    wrapped = load_pytorch_vqvae({"state_dict": state})
    assert torch.equal(ddp.tokenize(x), ref_codes) and torch.equal(wrapped.tokenize(x), ref_codes)


def test_pytorch_vqvae_mismatch_is_a_clear_error(pytorch_vqvae_reference):
    state = dict(pytorch_vqvae_reference.state_dict())
    del state["decoder.6.bias"]
    state["encoder.9.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_pytorch_vqvae(state)
    message = str(error.value)
    assert "decoder.6.bias" in message and "encoder.9.weight" in message
    assert "missing" in message and "unexpected" in message
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_pytorch_vqvae(pytorch_vqvae_reference.state_dict(), num_codes=32)
    with pytest.raises(CheckpointError, match="codebook.embedding.weight"):
        load_pytorch_vqvae({k: v for k, v in pytorch_vqvae_reference.state_dict().items() if "codebook" not in k})
    with pytest.raises(CheckpointError, match="not found"):
        load_pytorch_vqvae("no/such/best.pt")
