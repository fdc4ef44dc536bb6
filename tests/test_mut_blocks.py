"""vqlearn.blocks against computations written out here (mutation testing, issue 16).

Every block's output is compared with the same formula computed independently from the block's own layers:
attention as an explicit softmax over positions, the ResnetBlock and resampling step by step. Shapes alone
pass when q and k are swapped or a softmax runs over the wrong axis; these values do not.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

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
    swish,
)


def explicit_attention(q, k, v):
    """out[b, :, i] = sum_j softmax_j(<q_i, k_j> / sqrt(C)) v[b, :, j], positions i = row * W + col."""
    b, c, h, w = q.shape
    out = torch.zeros(b, c, h * w, dtype=q.dtype)
    qf, kf, vf = (t.reshape(b, c, h * w) for t in (q, k, v))
    for n in range(b):
        for i in range(h * w):
            scores = torch.stack([(qf[n, :, i] * kf[n, :, j]).sum() / c**0.5 for j in range(h * w)])
            weights = torch.exp(scores - scores.max())
            weights = weights / weights.sum()
            out[n, :, i] = (vf[n] * weights[None, :]).sum(1)
    return out.reshape(b, c, h, w)


@pytest.fixture
def qkv():
    torch.manual_seed(0)
    return [torch.randn(2, 3, 2, 5, dtype=torch.double) for _ in range(3)]  # C=3, H != W, HW=10


@pytest.mark.parametrize("attention", [attention_bmm, attention_sdpa])
def test_attention_equals_an_explicit_softmax_over_positions(attention, qkv):
    q, k, v = qkv
    assert torch.allclose(attention(q, k, v), explicit_attention(q, k, v), atol=1e-10)
    # not symmetric in q and k: swapping them transposes the attention matrix and changes the output
    assert not torch.allclose(attention(k, q, v), attention(q, k, v), atol=1e-3)


def _randomize(module, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return module


def test_attn_block_equals_the_explicit_computation():
    block = _randomize(AttnBlock(4, num_groups=2)).double()
    assert block.in_channels == 4 and block.norm.num_groups == 2
    x = torch.randn(2, 4, 3, 2, dtype=torch.double)
    h = F.group_norm(x, 2, block.norm.weight, block.norm.bias, eps=1e-6)
    q, k, v = (F.conv2d(h, conv.weight, conv.bias) for conv in (block.q, block.k, block.v))
    expected = x + F.conv2d(explicit_attention(q, k, v), block.proj_out.weight, block.proj_out.bias)
    with torch.no_grad():
        assert torch.allclose(block(x), expected, atol=1e-10)
    for conv in (block.q, block.k, block.v, block.proj_out):
        assert conv.weight.shape == (4, 4, 1, 1)


def test_linear_attention_block_equals_the_explicit_computation():
    block = _randomize(LinAttnBlock(4, num_groups=2)).double()
    assert block.norm.num_groups == 2 and block.to_qkv.bias is None and block.to_qkv.weight.shape == (12, 4, 1, 1)
    x = torch.randn(2, 4, 3, 2, dtype=torch.double)
    h = F.group_norm(x, 2, block.norm.weight, block.norm.bias, eps=1e-6)
    qkv = F.conv2d(h, block.to_qkv.weight).reshape(2, 12, 6)
    q, k, v = qkv[:, 0:4], qkv[:, 4:8], qkv[:, 8:12]  # (B, C, N) each
    k = torch.exp(k) / torch.exp(k).sum(-1, keepdim=True)  # keys: softmax over the N positions
    out = torch.zeros(2, 4, 6, dtype=torch.double)
    for b in range(2):
        context = sum(torch.outer(k[b, :, n], v[b, :, n]) for n in range(6))  # (C, C): sum_n k_n v_n^T
        out[b] = context.t() @ q[b]  # out[e, n] = sum_d context[d, e] q[d, n]
    expected = x + F.conv2d(out.reshape(2, 4, 3, 2), block.to_out.weight, block.to_out.bias)
    with torch.no_grad():
        assert torch.allclose(block(x), expected, atol=1e-10)


def test_attention_blocks_default_to_32_groups():
    assert AttnBlock(64).norm.num_groups == LinAttnBlock(64).norm.num_groups == 32


def test_make_attn_passes_the_group_count():
    assert make_attn(8, "vanilla", num_groups=4).norm.num_groups == 4
    assert make_attn(8, "linear", num_groups=2).norm.num_groups == 2
    assert make_attn(64).norm.num_groups == 32 and isinstance(make_attn(64), AttnBlock)
    with pytest.raises(ValueError, match=r"attn_type must be one of \('vanilla', 'linear', 'none'\), got 'flash'"):
        make_attn(8, "flash")


def test_normalize_and_swish():
    norm = Normalize(8, num_groups=4)
    assert (norm.num_groups, norm.num_channels, norm.eps, norm.affine) == (4, 8, 1e-6, True)
    assert Normalize(64).num_groups == 32
    with pytest.raises(ValueError) as error:
        Normalize(12, num_groups=8)
    assert "in_channels=12 and num_groups=8" in str(error.value) and "divisor of 12" in str(error.value)
    x = torch.linspace(-4, 4, 9)
    assert torch.allclose(swish(x), x * torch.sigmoid(x))


@pytest.mark.parametrize("out_channels, conv_shortcut", [(None, False), (8, False), (8, True)])
def test_resnet_block_equals_the_explicit_computation(out_channels, conv_shortcut):
    block = _randomize(ResnetBlock(in_channels=4, out_channels=out_channels, conv_shortcut=conv_shortcut,
                                   temb_channels=3, num_groups=2)).double().eval()
    c_out = out_channels or 4
    assert (block.in_channels, block.out_channels, block.use_conv_shortcut) == (4, c_out, conv_shortcut)
    assert block.norm1.num_groups == block.norm2.num_groups == 2
    assert block.conv1.weight.shape == (c_out, 4, 3, 3) and block.conv2.weight.shape == (c_out, c_out, 3, 3)
    x, temb = torch.randn(2, 4, 5, 3, dtype=torch.double), torch.randn(2, 3, dtype=torch.double)

    def gn_silu(t, norm):
        return F.silu(F.group_norm(t, 2, norm.weight, norm.bias, eps=1e-6))

    h = F.conv2d(gn_silu(x, block.norm1), block.conv1.weight, block.conv1.bias, padding=1)
    h = h + F.linear(F.silu(temb), block.temb_proj.weight, block.temb_proj.bias)[:, :, None, None]
    h = F.conv2d(gn_silu(h, block.norm2), block.conv2.weight, block.conv2.bias, padding=1)
    if out_channels is None:
        shortcut = x
        assert not hasattr(block, "nin_shortcut") and not hasattr(block, "conv_shortcut")
    elif conv_shortcut:
        assert block.conv_shortcut.weight.shape == (8, 4, 3, 3)
        shortcut = F.conv2d(x, block.conv_shortcut.weight, block.conv_shortcut.bias, padding=1)
    else:
        assert block.nin_shortcut.weight.shape == (8, 4, 1, 1)
        shortcut = F.conv2d(x, block.nin_shortcut.weight, block.nin_shortcut.bias)
    with torch.no_grad():
        assert torch.allclose(block(x, temb), shortcut + h, atol=1e-10)
        without_temb = block(x)
    assert not torch.allclose(without_temb, shortcut + h, atol=1e-6)  # the time embedding was added


def test_resnet_block_dropout_sits_before_the_second_conv_and_only_trains():
    block = ResnetBlock(in_channels=4, dropout=0.5, num_groups=2)
    assert block.dropout.p == 0.5 and ResnetBlock(in_channels=4, num_groups=2).dropout.p == 0.0
    assert not hasattr(ResnetBlock(in_channels=4, num_groups=2), "temb_proj")
    x = torch.randn(1, 4, 4, 4)
    block.eval()
    assert torch.equal(block(x), block(x))
    block.train()
    torch.manual_seed(0)
    first = block(x)
    torch.manual_seed(1)
    assert not torch.allclose(first, block(x))


def test_downsample_with_conv_is_a_stride_2_conv_on_bottom_right_padding():
    down = _randomize(Downsample(3, with_conv=True)).double()
    assert down.with_conv and down.conv.weight.shape == (3, 3, 3, 3)
    x = torch.randn(2, 3, 6, 4, dtype=torch.double)
    padded = torch.zeros(2, 3, 7, 5, dtype=torch.double)
    padded[:, :, :6, :4] = x
    expected = F.conv2d(padded, down.conv.weight, down.conv.bias, stride=2)
    with torch.no_grad():
        assert torch.allclose(down(x), expected, atol=1e-12)
    pool = Downsample(3, with_conv=False)
    assert not pool.with_conv and not hasattr(pool, "conv")
    assert torch.allclose(pool(x), (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2]
                                    + x[:, :, 1::2, 1::2]) / 4)


def test_upsample_repeats_each_pixel_then_convolves():
    up = _randomize(Upsample(3, with_conv=True)).double()
    assert up.with_conv and up.conv.weight.shape == (3, 3, 3, 3)
    x = torch.randn(1, 3, 2, 3, dtype=torch.double)
    nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    with torch.no_grad():
        assert torch.allclose(up(x), F.conv2d(nearest, up.conv.weight, up.conv.bias, padding=1), atol=1e-12)
    plain = Upsample(3, with_conv=False)
    assert not hasattr(plain, "conv") and torch.equal(plain(x), nearest)


def test_taming_parameter_names_load():
    names = set(AttnBlock(32).state_dict())
    assert names == {f"{m}.{p}" for m in ("norm", "q", "k", "v", "proj_out") for p in ("weight", "bias")}
    assert isinstance(make_attn(32, "none"), nn.Identity)


def test_downsample_of_an_odd_size_pads_one_row_and_one_column():
    down = _randomize(Downsample(2, with_conv=True)).double()
    x = torch.randn(1, 2, 7, 5, dtype=torch.double)
    padded = torch.zeros(1, 2, 8, 6, dtype=torch.double)
    padded[:, :, :7, :5] = x
    with torch.no_grad():
        out = down(x)
    assert out.shape == (1, 2, 3, 2)
    assert torch.allclose(out, F.conv2d(padded, down.conv.weight, down.conv.bias, stride=2), atol=1e-12)


def test_resnet_block_time_embedding_of_one_channel_and_its_error():
    assert hasattr(ResnetBlock(in_channels=4, temb_channels=1, num_groups=2), "temb_proj")
    with pytest.raises(ValueError) as error:
        ResnetBlock(in_channels=4, num_groups=2)(torch.randn(1, 4, 2, 2), torch.randn(1, 3))
    assert str(error.value) == "this ResnetBlock was built with temb_channels=0; pass temb=None"
