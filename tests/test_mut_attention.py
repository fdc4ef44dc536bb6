"""vqlearn.attention against numbers computed here (mutation testing, issue 16)."""

import pytest
import torch
import torch.nn.functional as F

from vqlearn.attention import AttentionCost, attention_cost, attention_weights
from vqlearn.blocks import AttnBlock


def test_attention_weights_equal_an_explicit_softmax():
    torch.manual_seed(0)
    block = AttnBlock(4, num_groups=2).double()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p))
    x = torch.randn(2, 4, 2, 3, dtype=torch.double)
    h = F.group_norm(x, 2, block.norm.weight, block.norm.bias, eps=1e-6)
    q = F.conv2d(h, block.q.weight, block.q.bias).reshape(2, 4, 6)
    k = F.conv2d(h, block.k.weight, block.k.bias).reshape(2, 4, 6)
    expected = torch.zeros(2, 6, 6, dtype=torch.double)
    for b in range(2):
        for i in range(6):
            scores = torch.tensor([(q[b, :, i] @ k[b, :, j]).item() / 2.0 for j in range(6)])  # sqrt(C) = 2
            expected[b, i] = torch.exp(scores) / torch.exp(scores).sum()
    assert torch.allclose(attention_weights(block, x), expected.double(), atol=1e-10)


@pytest.mark.parametrize(
    "attn_type, macs, elements",
    [
        ("vanilla", 4 * 12 * 5 * 5 + 2 * 12 * 12 * 5, 12 * 12),
        ("linear", 4 * 12 * 5 * 5 + 2 * 12 * 5 * 5, 5 * 5),
        ("none", 0, 0),
    ],
)
def test_attention_cost_by_hand(attn_type, macs, elements):
    cost = attention_cost(3, 4, 5, attn_type, bytes_per_element=2)  # N = 12 positions, C = 5 channels
    assert cost == AttentionCost(attn_type, 12, 5, macs, elements, 2)
    assert cost.matrix_bytes == 2 * elements
    assert attention_cost(3, 4, 5, attn_type).bytes_per_element == 4


def test_attention_cost_defaults_to_vanilla_and_names_the_choices():
    assert attention_cost(2, 2, 3).attn_type == "vanilla"
    with pytest.raises(ValueError, match=r"attn_type must be one of \('vanilla', 'linear', 'none'\), got 'x'"):
        attention_cost(2, 2, 3, "x")
