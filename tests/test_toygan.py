import pytest
import torch
import torch.nn.functional as F

from vqlearn.losses import hinge_d_loss, vanilla_d_loss
from vqlearn.toygan import (
    StackedLinear,
    ToyGANConfig,
    disc_accuracy,
    mode_stats,
    ring_modes,
    sample_ring,
    summed_loss,
    train_toy_gans,
)


def test_ring_modes_and_samples():
    modes = ring_modes(8, radius=2.0)
    assert modes.shape == (8, 2)
    assert torch.allclose(modes.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(modes[0], torch.tensor([2.0, 0.0]))
    points = sample_ring((4000,), torch.Generator().manual_seed(0), std=0.1)
    assert points.shape == (4000, 2)
    distance, nearest = torch.cdist(points, modes).min(dim=1)
    assert distance.max() < 0.6  # 6 std
    counts = torch.bincount(nearest, minlength=8)
    assert counts.min() > 400 and counts.max() < 600  # 500 expected per mode


def test_mode_stats_by_hand():
    modes = ring_modes(4, radius=1.0)  # (1, 0), (0, 1), (-1, 0), (0, -1)
    samples = torch.tensor([[1.0, 0.0], [1.05, 0.0], [0.0, 1.2], [0.0, 0.0], [-1.0, 0.05]] + [[1.0, 0.0]] * 5)
    stats = mode_stats(samples, modes, std=0.1, min_share=0.15)
    # within 0.3 of a mode: all but (0, 0), which is 1.0 away from every mode
    assert stats["high_quality"] == pytest.approx(0.9)
    assert stats["counts"].tolist() == [7, 1, 1, 0]
    assert stats["modes_covered"] == 1  # only mode 0 has >= 1.5 of the 10 samples
    assert mode_stats(samples, modes, std=0.1, min_share=0.1)["modes_covered"] == 3


def test_disc_accuracy_by_hand():
    real = torch.tensor([1.0, -0.5, 2.0, 0.1])  # 3 of 4 right
    fake = torch.tensor([-1.0, 0.5])  # 1 of 2 right
    assert disc_accuracy(real, fake) == pytest.approx(0.5 * (0.75 + 0.5))
    assert disc_accuracy(real, fake, margin=1.0) == pytest.approx(0.5 * (0.25 + 0.0))  # 2.0 > 1; -1.0 is not < -1


def test_stacked_linear_is_independent_linear_layers():
    generators = [torch.Generator().manual_seed(s) for s in (0, 1, 0)]
    layer = StackedLinear(5, 3, generators)
    assert layer.weight.shape == (3, 5, 3) and layer.bias.shape == (3, 1, 3)
    assert torch.equal(layer.weight[0], layer.weight[2]) and not torch.equal(layer.weight[0], layer.weight[1])
    assert layer.weight.abs().max() <= 5**-0.5
    x = torch.randn(3, 7, 5)
    y = layer(x)
    for r in range(3):
        assert torch.allclose(y[r], F.linear(x[r], layer.weight[r].T, layer.bias[r, 0]), atol=1e-6)


def test_summed_loss_gives_each_run_its_own_gradient():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 16, 1), torch.randn(4, 16, 1)
    names = ["hinge", "vanilla", "vanilla", "hinge"]
    losses = {"hinge": hinge_d_loss, "vanilla": vanilla_d_loss}
    fake = fake.requires_grad_(True)
    total = summed_loss(losses, names, real, fake)
    expected = sum(losses[n](real[r], fake[r]) for r, n in enumerate(names))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(total, fake)
    for r, n in enumerate(names):
        one = fake[r].detach().clone().requires_grad_(True)
        (alone,) = torch.autograd.grad(losses[n](real[r], one), one)
        assert torch.allclose(grad[r], alone, atol=1e-7)


def test_a_run_is_the_same_alone_and_among_others():
    config = ToyGANConfig(steps=30, eval_every=10, snapshot_steps=(0, 30))
    alone = train_toy_gans(config, [("vanilla", "non_saturating", 1)])[0]
    together = train_toy_gans(config, [("hinge", "hinge", 0), ("vanilla", "non_saturating", 1), ("hinge", "minimax", 1)])
    assert torch.allclose(alone.snapshots[30], together[1].snapshots[30], atol=1e-5)
    assert torch.equal(alone.snapshots[0], together[1].snapshots[0])
    # same seed: same initial generator, different losses: different training
    assert torch.equal(together[1].snapshots[0], together[2].snapshots[0])
    assert not torch.allclose(together[1].snapshots[30], together[2].snapshots[30])
    assert [h["step"] for h in alone.history] == [10, 20, 30]
    assert set(alone.history[0]) == {"step", "d_loss", "g_loss", "d_accuracy", "beyond_margin", "logits_real", "logits_fake",
                                     "high_quality", "modes_covered"}
    assert set(alone.final) == {"high_quality", "counts", "modes_covered"}


def test_bad_loss_names():
    with pytest.raises(ValueError, match="disc_loss"):
        train_toy_gans(ToyGANConfig(steps=1), [("wgan", "hinge", 0)])
    with pytest.raises(ValueError, match="gen_loss"):
        train_toy_gans(ToyGANConfig(steps=1), [("hinge", "wgan", 0)])
