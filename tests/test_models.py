"""The three families at the seeds' configurations: shapes, parameter counts,
the tokenizer interface, and clear errors for bad input."""

import pytest
import torch
import torch.nn as nn

from vqlearn.models import VQGAN, VQVAE, VQVAE2, DDConfig
from vqlearn.models.vqvae import ResBlock
from vqlearn.trace import count_parameters

SEED_001_DDCONFIG = {  # seed 001's 64x64 single-channel example
    "double_z": False,
    "z_channels": 3,
    "resolution": 64,
    "in_channels": 1,
    "out_ch": 1,
    "ch": 128,
    "ch_mult": [1, 2, 4],
    "num_res_blocks": 3,
    "attn_resolutions": [],
    "dropout": 0.0,
}


def test_vqvae_mnist_seed_config_shapes():
    model = VQVAE(in_channels=1, dim=256, num_codes=512)
    x = torch.randn(3, 1, 28, 28)
    out = model(x)
    assert out.reconstruction.shape == x.shape
    assert out.codes[0].shape == (3, 7, 7)
    assert out.quant_loss.dim() == 0
    assert model.tokenize(x).shape == (3, 7, 7)
    assert model.eval().reconstruct(x).shape == x.shape
    assert count_parameters(model) == 4_865_793


def test_vqvae_without_batchnorm_has_no_batchnorm():
    model = VQVAE(in_channels=3, dim=32, num_codes=16, batchnorm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model(torch.randn(2, 3, 32, 32)).reconstruction.shape == (2, 3, 32, 32)


def test_vqvae_output_in_tanh_range():
    out = VQVAE(in_channels=1, dim=16, num_codes=8)(10 * torch.randn(2, 1, 8, 8)).reconstruction
    assert out.abs().max() <= 1.0


def test_vqvae2_imagenet_256_levels():
    model = VQVAE2().eval()
    x = torch.randn(1, 3, 256, 256)
    top, bottom = model.tokenize(x)
    assert top.shape == (1, 32, 32) and bottom.shape == (1, 64, 64)
    assert model.detokenize((top, bottom)).shape == x.shape
    assert count_parameters(model) == 1_388_867  # rosinality defaults (n_res_channel=32)
    assert count_parameters(VQVAE2(n_res_channel=64)) == 1_388_867 + 4 * 2 * (128 * 32 * 9 + 32 + 32 * 128)


def test_vqvae2_training_forward_reports_both_levels():
    model = VQVAE2(channel=32, n_res_channel=8, embed_dim=8, num_codes=16)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.reconstruction.shape == (2, 3, 32, 32)
    assert [c.shape for c in out.codes] == [(2, 4, 4), (2, 8, 8)]
    assert len(out.perplexity) == 2 and len(model.quantizers) == 2


def test_vqgan_seed_001_ddconfig_shapes():
    model = VQGAN(SEED_001_DDCONFIG, num_codes=64, embed_dim=3)
    assert model.downsample_factor == 4
    x = torch.randn(1, 1, 64, 64)
    z = model.encoder(x)
    assert z.shape == (1, 3, 16, 16)
    assert model.decoder(z).shape == x.shape
    assert model.tokenize(x).shape == (1, 16, 16)


def test_vqgan_imagenet_f16_1024():
    model = VQGAN(DDConfig(), num_codes=1024, embed_dim=256).eval()
    assert count_parameters(model) == 72_141_699
    assert len(model.state_dict()) == 343
    x = torch.randn(1, 3, 256, 256)
    z = model.quant_conv(model.encoder(x))
    assert z.shape == (1, 256, 16, 16)
    codes = model.tokenize(x)
    assert codes.shape == (1, 16, 16)
    assert model.detokenize(codes).shape == x.shape


def test_vqgan_decoder_options():
    config = dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1, give_pre_end=True)
    model = VQGAN(config, num_codes=8, embed_dim=3)
    assert model.decoder(torch.randn(1, 3, 16, 16)).shape == (1, 32, 64, 64)  # before norm_out/conv_out
    tanh = VQGAN(dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1, tanh_out=True), num_codes=8, embed_dim=3)
    assert tanh.decoder(100 * torch.randn(1, 3, 16, 16)).abs().max() <= 1.0
    double = VQGAN(dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1, double_z=True), num_codes=8, embed_dim=3)
    assert double.encoder(torch.randn(1, 1, 64, 64)).shape == (1, 6, 16, 16)


@pytest.mark.parametrize("attn_type", ["vanilla", "linear", "none"])
def test_vqgan_attention_types(attn_type):
    config = dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1, attn_resolutions=[16], attn_type=attn_type)
    model = VQGAN(config, num_codes=8, embed_dim=3)
    assert model(torch.randn(1, 1, 64, 64)).reconstruction.shape == (1, 1, 64, 64)


def test_vqgan_group_count_is_configurable_and_checked():
    config = dict(SEED_001_DDCONFIG, ch=24, num_res_blocks=1)
    with pytest.raises(ValueError, match="num_groups"):
        VQGAN(config, num_codes=8, embed_dim=3)
    VQGAN(dict(config, num_groups=8), num_codes=8, embed_dim=3)


def test_vqgan_rejects_unknown_ddconfig_keys():
    with pytest.raises(ValueError, match="unknown ddconfig key.*chmult"):
        VQGAN(dict(SEED_001_DDCONFIG, chmult=[1, 2]))


@pytest.mark.parametrize(
    "model,shape",
    [
        (VQVAE(in_channels=1, dim=16, num_codes=8), (1, 1, 30, 28)),
        (VQVAE2(channel=32, n_res_channel=8, embed_dim=8, num_codes=16), (1, 3, 36, 32)),
        (VQGAN(dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1), num_codes=8, embed_dim=3), (1, 1, 62, 64)),
    ],
)
def test_image_size_must_be_divisible_by_downsampling(model, shape):
    with pytest.raises(ValueError, match=r"`x` is \d+x\d+.*multiples of"):
        model.tokenize(torch.randn(shape))


@pytest.mark.parametrize(
    "model,channels",
    [
        (VQVAE(in_channels=1, dim=16, num_codes=8), 3),
        (VQVAE2(channel=32, n_res_channel=8, embed_dim=8, num_codes=16), 1),
        (VQGAN(dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1), num_codes=8, embed_dim=3), 3),
    ],
)
def test_wrong_number_of_channels(model, channels):
    with pytest.raises(ValueError, match=f"`x` has {channels} channels.*in_channels="):
        model(torch.randn(1, channels, 32, 32))


def test_non_image_input_is_rejected():
    with pytest.raises(ValueError, match="4-D image batch"):
        VQVAE(in_channels=1, dim=16, num_codes=8).tokenize(torch.randn(28, 28))


def test_detokenize_rejects_out_of_range_codes():
    model = VQVAE(in_channels=1, dim=16, num_codes=8)
    with pytest.raises(ValueError, match=r"codes.*\[0, 7\]"):
        model.detokenize(torch.full((1, 7, 7), 8))
    model2 = VQVAE2(channel=32, n_res_channel=8, embed_dim=8, num_codes=16)
    with pytest.raises(ValueError, match="codes"):
        model2.detokenize((torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 8, 8), -1)))
    with pytest.raises(ValueError, match="twice"):
        model2.detokenize((torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long)))


@pytest.mark.parametrize("kind", ["vq", "ema"])
def test_every_family_accepts_either_codebook(kind):
    models = [
        VQVAE(in_channels=1, dim=16, num_codes=8, quantizer=kind),
        VQVAE2(channel=32, n_res_channel=8, embed_dim=8, num_codes=16, quantizer=kind),
        VQGAN(dict(SEED_001_DDCONFIG, ch=32, num_res_blocks=1), num_codes=8, embed_dim=3, quantizer=kind),
    ]
    for model in models:
        x = torch.randn(2, model.in_channels, 32, 32)
        out = model(x)
        out.reconstruction.mean().add(out.quant_loss).backward()
        assert model.get_last_layer().grad is not None


def test_tokenize_round_trip_is_deterministic_in_eval():
    torch.manual_seed(0)
    model = VQVAE(in_channels=1, dim=16, num_codes=8).eval()
    x = torch.randn(2, 1, 16, 16)
    codes = model.tokenize(x)
    assert torch.equal(model.tokenize(x), codes)
    assert torch.allclose(model.reconstruct(x), model.detokenize(codes))


class PytorchVqvaeResBlock(nn.Module):
    """pytorch-vqvae's ResBlock as written (seed 000 §1): the first ReLU is in-place,
    so ``x + self.block(x)`` adds the ReLU'd ``x``."""

    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(dim, dim, 3, 1, 1), nn.BatchNorm2d(dim),
            nn.ReLU(True), nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim),
        )

    def forward(self, x):
        return x + self.block(x)


def test_inplace_relu_skip_computes_what_pytorch_vqvae_computes():
    torch.manual_seed(0)
    ours, plain = ResBlock(8, inplace_relu_skip=True), ResBlock(8)
    reference = PytorchVqvaeResBlock(8)
    assert list(ours.state_dict()) == list(plain.state_dict()) == list(reference.state_dict())
    plain.load_state_dict(ours.state_dict())
    reference.load_state_dict(ours.state_dict())

    x = torch.randn(2, 8, 5, 5)  # about half negative: ReLU(x) != x
    got = ours(x)
    expected = reference(x.clone())  # the in-place ReLU overwrites its input
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(plain(x), expected)  # the plain skip adds the untouched x
    torch.testing.assert_close(got, plain(x) + torch.relu(x) - x)

    # The same gradients too (train mode: BatchNorm on batch statistics in both).
    got.square().sum().backward()
    reference(x.clone()).square().sum().backward()
    for (name, a), b in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_vqvae_passes_inplace_relu_skip_to_every_resblock():
    model = VQVAE(in_channels=1, dim=16, num_codes=8, inplace_relu_skip=True)
    blocks = [m for m in model.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == 4 and all(b.inplace_relu_skip for b in blocks)
    assert model.state_dict().keys() == VQVAE(in_channels=1, dim=16, num_codes=8).state_dict().keys()


def test_conv_receptive_field_is_what_autograd_finds():
    """The formula's box equals the support of one latent's input gradient for a conv-only stack."""
    from vqlearn.trace import conv_receptive_field

    torch.manual_seed(0)
    encoder = VQVAE(in_channels=1, dim=8, num_codes=16).encoder  # 4x4/s2, 4x4/s2, then residual 3x3 and 1x1 convs
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    encoder.eval()(x)[0, :, 3, 3].sum().backward()
    support = (x.grad[0, 0] != 0).nonzero()
    measured = int(support[:, 0].max() - support[:, 0].min() + 1)
    assert conv_receptive_field(encoder, torch.zeros(1, 1, 28, 28)) == (measured, 4) == (26, 4)
