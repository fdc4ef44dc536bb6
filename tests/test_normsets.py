"""vqlearn.normsets: the statistics sets of Batch/Layer/Instance/GroupNorm agree with torch's layers."""

import pytest
import torch

from vqlearn.normsets import NORM_KINDS, dependency_mask, normalize_by_sets, statistics_sets, torch_layer

N, C, H, W, G = 3, 6, 2, 3, 3


def test_set_counts_and_sizes():
    counts = {"batch": C, "layer": N, "instance": N * C, "group": N * G}
    sizes = {"batch": N * H * W, "layer": C * H * W, "instance": H * W, "group": C // G * H * W}
    for kind in NORM_KINDS:
        sets = statistics_sets(kind, (N, C, H * W), num_groups=G)
        assert sets.shape == (N, C, H * W)
        assert torch.equal(torch.bincount(sets.flatten()), torch.full((counts[kind],), sizes[kind]))


def test_group_sets_are_consecutive_channels_of_one_sample():
    sets = statistics_sets("group", (2, 4, 1), num_groups=2)[:, :, 0]
    assert sets.tolist() == [[0, 0, 1, 1], [2, 2, 3, 3]]


@pytest.mark.parametrize("kind", NORM_KINDS)
def test_sets_reproduce_torch_layers(kind):
    torch.manual_seed(0)
    x = torch.randn(N, C, H, W)
    layer = torch_layer(kind, C, (H, W), num_groups=G).train()
    sets = statistics_sets(kind, (N, C, H * W), num_groups=G)
    assert torch.allclose(normalize_by_sets(x, sets), layer(x), atol=1e-5)


@pytest.mark.parametrize("kind", NORM_KINDS)
@pytest.mark.parametrize("index", [(0, 0, 0, 0), (2, 5, 1, 2), (1, 2, 0, 1)])
def test_autograd_dependencies_are_the_sets(kind, index):
    torch.manual_seed(1)
    x = torch.randn(N, C, H, W)
    layer = torch_layer(kind, C, (H, W), num_groups=G).train()
    sets = statistics_sets(kind, (N, C, H * W), num_groups=G)
    n, c, h, w = index
    assert torch.equal(dependency_mask(layer, x, index), sets == sets[n, c, h * W + w])


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="kind must be one of"):
        statistics_sets("weight", (1, 4, 1))
    with pytest.raises(ValueError, match="channels=6, num_groups=4"):
        statistics_sets("group", (1, 6, 1), num_groups=4)
