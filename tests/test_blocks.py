"""VQ-GAN building blocks: attention forms, resampling, GroupNorm checks."""

import pytest
import torch

from vqlearn.blocks import (
    AttnBlock,
    Downsample,
    LinAttnBlock,
    Normalize,
    ResnetBlock,
    Upsample,
    attention_bmm,
    attention_sdpa,
    make_attn,
)


def test_sdpa_attention_equals_the_seeds_bmm_form():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 16, 5, 7) for _ in range(3))
    assert torch.allclose(attention_sdpa(q, k, v), attention_bmm(q, k, v), atol=1e-5)


def test_attention_is_over_spatial_positions_not_channels():
    """Moving one spatial position's key/value changes every output position:
    the weights are (HW x HW). Permuting positions permutes the output."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 8, 4, 4) for _ in range(3))
    out = attention_sdpa(q, k, v)
    perm = torch.randperm(16)

    def shuffle(t):
        return t.flatten(2)[:, :, perm].reshape(t.shape)

    assert torch.allclose(attention_sdpa(shuffle(q), shuffle(k), shuffle(v)), shuffle(out), atol=1e-5)


@pytest.mark.parametrize("attn_type,cls", [("vanilla", AttnBlock), ("linear", LinAttnBlock), ("none", torch.nn.Identity)])
def test_make_attn_types_preserve_shape(attn_type, cls):
    block = make_attn(64, attn_type)
    assert isinstance(block, cls)
    x = torch.randn(2, 64, 8, 8)
    assert block(x).shape == x.shape


def test_make_attn_rejects_unknown_type():
    with pytest.raises(ValueError, match="attn_type"):
        make_attn(64, "flash")


def test_attn_block_with_zero_output_projection_is_identity():
    block = AttnBlock(32)
    torch.nn.init.zeros_(block.proj_out.weight)
    torch.nn.init.zeros_(block.proj_out.bias)
    x = torch.randn(1, 32, 4, 4)
    assert torch.equal(block(x), x)


def test_downsample_conv_uses_asymmetric_padding():
    down = Downsample(1, with_conv=True)
    with torch.no_grad():
        down.conv.weight.zero_()
        down.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left input of each window
        down.conv.bias.zero_()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # pad (0,1,0,1) -> windows start at rows/cols 0 and 2: outputs x[0,0], x[0,2], x[2,0], x[2,2]
    assert down(x).flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_downsample_pool_and_upsample_shapes():
    x = torch.randn(2, 8, 16, 16)
    assert Downsample(8, with_conv=False)(x).shape == (2, 8, 8, 8)
    assert torch.allclose(Downsample(8, with_conv=False)(x), torch.nn.functional.avg_pool2d(x, 2))
    assert Upsample(8, with_conv=True)(x).shape == (2, 8, 32, 32)
    nearest = Upsample(8, with_conv=False)(x)
    assert torch.equal(nearest[:, :, ::2, ::2], x) and torch.equal(nearest[:, :, 1::2, 1::2], x)


def test_resnet_block_shortcuts_and_time_embedding():
    x = torch.randn(2, 32, 8, 8)
    assert ResnetBlock(in_channels=32, out_channels=64)(x).shape == (2, 64, 8, 8)
    assert hasattr(ResnetBlock(in_channels=32, out_channels=64), "nin_shortcut")
    assert hasattr(ResnetBlock(in_channels=32, out_channels=64, conv_shortcut=True), "conv_shortcut")
    with_temb = ResnetBlock(in_channels=32, temb_channels=16)
    assert with_temb(x, torch.randn(2, 16)).shape == x.shape
    with pytest.raises(ValueError, match="temb_channels=0"):
        ResnetBlock(in_channels=32)(x, torch.randn(2, 16))


def test_group_norm_channel_check_names_both_numbers():
    with pytest.raises(ValueError, match=r"in_channels=48 and num_groups=32"):
        Normalize(48)
    assert Normalize(48, num_groups=16).num_groups == 16
    with pytest.raises(ValueError, match="num_groups"):
        ResnetBlock(in_channels=40)
