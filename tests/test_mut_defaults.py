"""Every default the seeds set, held against the seeds' tables (mutation testing, issue 16).

One row per default: what is built with its defaults, the value it must have, and where the seeds (or the
reference code they quote) say so. Changing a default makes a row fail, so it is a conscious decision:
change the row and say why. Values are read from objects built with their defaults (not from signatures),
so what is checked is what a user gets. Seeds: /work/shared/seeds/000_*.txt ("000") and 001_*.txt ("001").
"""

import pytest
import torch
import torch.nn as nn

import vqlearn.perceptual
from vqlearn.blocks import Downsample, Normalize, ResnetBlock, Upsample, make_attn
from vqlearn.config import Config, QuantizerConfig, TrainConfig, VQGANModel, VQVAE2Model, VQVAEModel
from vqlearn.discriminator import ActNorm, NLayerDiscriminator
from vqlearn.losses import VQLoss, VQLPIPSWithDiscriminator, adopt_weight, calculate_adaptive_weight
from vqlearn.quantize import EMAVectorQuantizer, GumbelQuantizer, VectorQuantizer, make_codebook


def vqgan_loss_defaults(monkeypatch):
    """VQLPIPSWithDiscriminator(disc_start=0) with every other argument at its default (LPIPS stubbed)."""
    calls = []
    monkeypatch.setattr(vqlearn.perceptual, "load_lpips",
                        lambda net="vgg", download=False: calls.append((net, download)) or nn.Identity())
    loss = VQLPIPSWithDiscriminator(disc_start=0)
    return loss, calls


def adaptive_weight_constants():
    """(epsilon, clamp) of eq. 7 read back from two gradients: ||a|| = 1, ||b|| = 0, then ||a|| = 1e9."""
    w = torch.zeros(1, requires_grad=True)
    eps = 1 / calculate_adaptive_weight((1e-3 * w).sum(), (0 * w).sum(), w).item() * 1e-3
    clamp = calculate_adaptive_weight((1e9 * w).sum(), (1.0 * w).sum(), w).item()
    return round(eps, 10), clamp


def layers_of(d):
    convs = [m for m in d.main if isinstance(m, nn.Conv2d)]
    return [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]


ROWS = [
    # (what, how to read it, expected, where the seeds say so)
    ("VQ-VAE dim", lambda: VQVAEModel().dim, 256, "000 §1 table: Embedding Dimension 256"),
    ("VQ-VAE codebook size", lambda: VQVAEModel().num_codes, 512, "000 §1 table: Codebook Size 512"),
    ("VQ-VAE BatchNorm", lambda: VQVAEModel().batchnorm, True, "000 §1: BatchNorm is necessary on MNIST"),
    ("VQ-VAE learning rate", lambda: TrainConfig().lr, 3e-4, "000 §1 table: Learning Rate 3e-4"),
    ("VQ-VAE batch size", lambda: TrainConfig().batch_size, 32, "000 §1 table: Batch Size 32"),
    ("default family", lambda: Config().family, "vqvae", "000 §1, the first model"),
    ("VQ-VAE-2 hidden units", lambda: VQVAE2Model().channel, 128, "000 §2 table: Hidden units 128"),
    ("VQ-VAE-2 residual layers", lambda: VQVAE2Model().n_res_block, 2, "000 §2 table: Layers 2"),
    ("VQ-VAE-2 residual units", lambda: VQVAE2Model().n_res_channel, 64, "000 §2 table: Residual units 64"),
    ("VQ-VAE-2 codebook dimension", lambda: VQVAE2Model().embed_dim, 64, "000 §2 table: Codebook dimension 64"),
    ("VQ-VAE-2 codebook size", lambda: VQVAE2Model().num_codes, 512, "000 §2 table: Codebook size 512"),
    ("VQ-VAE-2 quantizer", lambda: Config(model=VQVAE2Model()).resolved_quantizer_kind(), "ema",
     "000 §2: VQ-VAE-2 updates its codebook by EMA"),
    ("config beta", lambda: QuantizerConfig().beta, 0.25, "000 §2 table: beta 0.25"),
    ("VectorQuantizer beta", lambda: VectorQuantizer(8, 2).beta, 0.25, "000 §2 table: beta 0.25"),
    ("EMA beta", lambda: EMAVectorQuantizer(8, 2).beta, 0.25, "000 §2 table: beta 0.25"),
    ("make_codebook beta", lambda: make_codebook("vq", 8, 2).beta, 0.25, "000 §2 table: beta 0.25"),
    ("EMA decay, eps", lambda: (EMAVectorQuantizer(8, 2).decay, EMAVectorQuantizer(8, 2).eps), (0.99, 1e-5),
     "VQ-VAE appendix A.1 / rosinality's Quantize(decay=0.99, eps=1e-5)"),
    ("VectorQuantizer legacy", lambda: VectorQuantizer(8, 2).legacy, False,
     "001 §VectorQuantizer2: legacy=True is the beta bug; ours defaults to the paper's loss (README)"),
    ("VectorQuantizer index shape", lambda: VectorQuantizer(8, 2).sane_index_shape, True,
     "001: taming defaults to False; ours returns (B, h, w) (README)"),
    ("VectorQuantizer other options", lambda: (VectorQuantizer(8, 2).remap, VectorQuantizer(8, 2).l2_normalize,
                                               VectorQuantizer(8, 2).lookup_dim), (None, False, None),
     "001 §VectorQuantizer2: remap=None"),
    ("VQ-GAN codebook size", lambda: VQGANModel().num_codes, 1024, "000 §VQ-GAN table: Codebook Size 1024"),
    ("VQ-GAN embedding size", lambda: VQGANModel().embed_dim, 256, "000 §VQ-GAN table: Embedding Dimension 256"),
    ("VQ-GAN loss", lambda: Config(model=VQGANModel()).resolved_loss_kind(), "vqgan", "000 §Total loss"),
    ("Down/Upsample with convs", lambda: (Downsample(4).with_conv, Upsample(4).with_conv), (True, True),
     "000 §VQ-GAN Encoder: resamp_with_conv=True"),
    ("GroupNorm", lambda: (Normalize(64).num_groups, Normalize(64).eps, Normalize(64).affine), (32, 1e-6, True),
     "001 Normalize: GroupNorm(num_groups=32, eps=1e-6, affine=True)"),
    ("ResnetBlock", lambda: (ResnetBlock(in_channels=32).dropout.p, ResnetBlock(in_channels=32).out_channels,
                             ResnetBlock(in_channels=32).use_conv_shortcut,
                             hasattr(ResnetBlock(in_channels=32), "temb_proj")), (0.0, 32, False, False),
     "000 §VQ-GAN Encoder: dropout=0.0, temb_ch = 0"),
    ("attention type", lambda: type(make_attn(32)).__name__, "AttnBlock", "001 AttnBlock (vanilla)"),
    ("discriminator layers", lambda: layers_of(NLayerDiscriminator()),
     [(64, 4, 2, 1), (128, 4, 2, 1), (256, 4, 2, 1), (512, 4, 1, 1), (1, 4, 1, 1)],
     "000 §Discriminator: input_nc=3, ndf=64, n_layers=3, kw=4, padw=1"),
    ("discriminator input and norm", lambda: (NLayerDiscriminator().input_nc,
                                              type(NLayerDiscriminator().main[3]).__name__), (3, "BatchNorm2d"),
     "000 §Discriminator: use_actnorm=False -> BatchNorm2d"),
    ("discriminator slope", lambda: NLayerDiscriminator().main[1].negative_slope, 0.2,
     "000 §Discriminator: LeakyReLU(0.2, True)"),
    ("ActNorm eps", lambda: ActNorm(4).eps, 1e-6, "taming ActNorm: 1 / (std + 1e-6)"),
    ("adaptive weight eps, clamp", adaptive_weight_constants, (1e-4, 1e4), "001 l.984-985: + 1e-4, clamp(0, 1e4)"),
    ("adopt_weight before the start", lambda: adopt_weight(1.0, global_step=-1), 0.0, "001: disc_factor 0 before"),
    ("VQLoss", lambda: (VQLoss().rec_loss, VQLoss().codebook_weight), ("mse", 1.0),
     "000 §1 (pytorch-vqvae: MSE reconstruction + VQ loss)"),
    ("Gumbel", lambda: (GumbelQuantizer(8, 2).temperature, GumbelQuantizer(8, 2).kl_weight,
                        GumbelQuantizer(8, 2).straight_through), (1.0, 5e-4, True),
     "taming GumbelQuantize: temp_init=1.0, kl_weight=5e-4, straight_through=True"),
]


@pytest.mark.parametrize("what, read, expected, source", ROWS, ids=[row[0] for row in ROWS])
def test_default_matches_the_seeds(what, read, expected, source):
    torch.manual_seed(0)
    assert read() == expected, f"{what}: the seeds say {expected!r} ({source})"


VQGAN_LOSS_DEFAULTS = {
    # attribute: (expected, 000 §Total loss / 001 l.948 argument)
    "codebook_weight": (1.0, "codebook_weight=1.0"),
    "pixel_weight": (1.0, "pixelloss_weight=1.0"),
    "perceptual_weight": (1.0, "perceptual_weight=1.0"),
    "disc_factor": (1.0, "disc_factor=1.0"),
    "discriminator_weight": (1.0, "disc_weight=1.0"),
    "disc_conditional": (False, "disc_conditional=False"),
    "disc_loss_name": ("hinge", "disc_loss='hinge'"),
    "feature_matching_weight": (0.0, "not in the seed: off"),
}


def test_vqgan_loss_defaults_match_the_seed(monkeypatch):
    loss, calls = vqgan_loss_defaults(monkeypatch)
    for name, (expected, source) in VQGAN_LOSS_DEFAULTS.items():
        assert getattr(loss, name) == expected, f"{name}: the seed says {source}"
    assert calls == [("vgg", False)]  # LPIPS with the VGG trunk, never downloaded unless asked
    d = loss.discriminator
    assert (d.input_nc, d.n_layers, d.main[0].out_channels) == (3, 3, 64)  # disc_in_channels, num_layers, ndf
    assert isinstance(d.main[3], nn.BatchNorm2d)  # use_actnorm=False
