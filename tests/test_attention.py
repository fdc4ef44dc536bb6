"""vqlearn.attention: the recomputed attention weights and the cost model of the three attention types."""

import pytest
import torch
from einops import rearrange
from torch.utils.flop_counter import FlopCounterMode

from vqlearn.attention import allocated_bytes, attention_cost, attention_weights
from vqlearn.blocks import AttnBlock, make_attn


def test_attention_weights_are_the_blocks_weights():
    """Mixing the block's own values with the recomputed weights reproduces the block's output."""
    torch.manual_seed(0)
    block = AttnBlock(32).eval()
    x = torch.randn(2, 32, 5, 7)
    weights = attention_weights(block, x)
    assert weights.shape == (2, 35, 35)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 35), atol=1e-6)
    assert (weights >= 0).all()
    v = rearrange(block.v(block.norm(x)), "b c h w -> b (h w) c")
    mixed = rearrange(weights @ v, "b (h w) c -> b c h w", h=5)
    with torch.no_grad():
        assert torch.allclose(x + block.proj_out(mixed), block(x), atol=1e-5)


def test_attention_weights_rows_follow_row_major_positions():
    """Row p = r * W + c belongs to the query at (r, c): a query whose key matches only one position attends there."""
    block = AttnBlock(32, num_groups=1)
    with torch.no_grad():
        for conv in (block.q, block.k):
            conv.weight.copy_(torch.eye(32)[:, :, None, None] * 30)
            conv.bias.zero_()
    x = torch.zeros(1, 32, 3, 4)
    x[0, 0] = -1.0
    x[0, 0, 1, 2] = 11.0  # one position (row 1, column 2) stands out in channel 0
    weights = attention_weights(block, x)
    assert weights[0, 1 * 4 + 2].argmax().item() == 1 * 4 + 2
    assert weights[0, 1 * 4 + 2, 1 * 4 + 2] > 0.99


@pytest.mark.parametrize("attn_type", ["vanilla", "linear", "none"])
def test_attention_cost_matches_torch_flop_counter(attn_type):
    torch.manual_seed(0)
    block = make_attn(32, attn_type)
    x = torch.randn(1, 32, 6, 8)
    with FlopCounterMode(display=False) as counter:
        block(x)
    cost = attention_cost(6, 8, 32, attn_type)
    assert counter.get_total_flops() == 2 * cost.multiply_adds


def test_attention_cost_matrix_sizes():
    assert attention_cost(16, 16, 512).matrix_bytes == 256 * 256 * 4
    assert attention_cost(16, 16, 512, "linear").matrix_elements == 512 * 512
    assert attention_cost(64, 64, 8, bytes_per_element=2).matrix_bytes == 4096**2 * 2
    assert attention_cost(16, 16, 512, "none").multiply_adds == 0


def test_attention_cost_names_a_bad_type():
    with pytest.raises(ValueError, match="attn_type must be one of"):
        attention_cost(16, 16, 64, "sparse")


def test_allocated_bytes_holds_the_attention_matrix_and_grows_quadratically():
    torch.manual_seed(0)
    block = make_attn(32, "vanilla").eval()
    small, large = (allocated_bytes(block, torch.randn(1, 32, side, side)) for side in (16, 32))
    assert small >= attention_cost(16, 16, 32).matrix_bytes
    assert large / small > 8  # 4x the positions: the (HW)^2 matrices dominate
    assert allocated_bytes(make_attn(32, "none"), torch.randn(1, 32, 16, 16)) == 0  # Identity allocates nothing
