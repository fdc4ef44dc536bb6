"""Chapter 12's self-checks: exercise 12.1 (one layer of LPIPS by hand) and exercise 12.2 (HiFi-GAN's feature
matching loss). Each passes the chapter's solution and says what differs for the usual mistakes (the paper's w
applied before squaring, normalising over positions instead of channels, a sum over positions; one mean over all
layers together, squared differences)."""

import lpips
import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_feature_matching_loss, check_lpips_layer
from vqlearn.exercises.chapter12 import lpips_layer_reference
from vqlearn.losses import feature_matching_loss


def unit(features, dim=1):
    return features / (features.pow(2).sum(dim, keepdim=True).sqrt() + 1e-10)


def my_lpips_layer(features_x, features_y, head):  # the chapter's solution
    return ((unit(features_x) - unit(features_y)) ** 2 * head).sum(1).mean(dim=(1, 2))


def my_feature_matching_loss(features_real, features_fake):  # the chapter's solution
    return sum((real - fake).abs().mean() for real, fake in zip(features_real, features_fake))


def test_lpips_solution_passes(capsys):
    comparisons = check_lpips_layer(my_lpips_layer)
    assert [c.name for c in comparisons] == ["output", "grad features_x", "grad features_y", "grad head"]
    assert all(c.ok for c in comparisons)
    assert "✓ my_lpips_layer agrees with vqlearn.exercises.chapter12.lpips_layer_reference" in capsys.readouterr().out


def test_the_reference_is_one_term_of_the_lpips_module():
    # lpips.LPIPS(lpips=True) with a random trunk: its per-layer results are the reference applied to its features
    torch.manual_seed(0)
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        total, per_layer = model(x, y, retPerLayer=True)
        fx, fy = model.net(model.scaling_layer(x)), model.net(model.scaling_layer(y))
        for layer, (a, b, lin) in enumerate(zip(fx, fy, model.lins)):
            assert torch.allclose(lpips_layer_reference(a, b, lin.model[-1].weight), per_layer[layer].flatten(),
                                  rtol=1e-5, atol=1e-8)


def test_paper_weight_before_squaring_differs():
    def paper_w(features_x, features_y, head):  # ||w * (a - b)||^2: the head squared
        return (((unit(features_x) - unit(features_y)) * head) ** 2).sum(1).mean(dim=(1, 2))

    with pytest.raises(ExerciseMismatch) as error:
        check_lpips_layer(paper_w)
    message = str(error.value)
    assert "output                 DIFFERS    max |diff|" in message and "grad head              DIFFERS" in message
    assert "✗ paper_w differs from vqlearn.exercises.chapter12.lpips_layer_reference in 4 value(s)" in message


def test_normalising_over_positions_differs():
    def over_positions(features_x, features_y, head):
        x = features_x / (features_x.pow(2).sum((2, 3), keepdim=True).sqrt() + 1e-10)
        y = features_y / (features_y.pow(2).sum((2, 3), keepdim=True).sqrt() + 1e-10)
        return ((x - y) ** 2 * head).sum(1).mean(dim=(1, 2))

    with pytest.raises(ExerciseMismatch) as error:
        check_lpips_layer(over_positions)
    assert "output                 DIFFERS" in str(error.value)


def test_output_kept_as_b_1_reports_both_shapes():
    def keepdim(features_x, features_y, head):
        return my_lpips_layer(features_x, features_y, head)[:, None]

    with pytest.raises(ExerciseMismatch) as error:
        check_lpips_layer(keepdim)
    assert "output                 SHAPE      got shape (2, 1), expected (2,)" in str(error.value)


def test_feature_matching_solution_passes(capsys):
    comparisons = check_feature_matching_loss(my_feature_matching_loss)
    assert [c.name for c in comparisons] == ["output", "grad fake0", "grad fake1", "grad fake2", "grad fake3"]
    out = capsys.readouterr().out
    assert "Exercise 12.2 (chapter \"Perceptual loss\"): 3 random trials" in out
    assert "✓ my_feature_matching_loss agrees with vqlearn.losses.feature_matching_loss" in out
    check_feature_matching_loss(feature_matching_loss)


def test_one_mean_over_all_layers_differs():
    def one_mean(features_real, features_fake):  # weighs each layer by its size
        return torch.cat([(r - f).abs().flatten() for r, f in zip(features_real, features_fake)]).mean()

    with pytest.raises(ExerciseMismatch) as error:
        check_feature_matching_loss(one_mean)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "grad fake3             DIFFERS" in message
    assert "✗ one_mean differs from vqlearn.losses.feature_matching_loss in 5 value(s)" in message


def test_squared_differences_differ():
    def squared(features_real, features_fake):
        return sum((r - f).pow(2).mean() for r, f in zip(features_real, features_fake))

    with pytest.raises(ExerciseMismatch) as error:
        check_feature_matching_loss(squared)
    assert "grad fake0             DIFFERS" in str(error.value)


def test_logits_left_out_differs_only_there():
    def without_logits(features_real, features_fake):
        return sum((r - f).abs().mean() for r, f in zip(features_real[:-1], features_fake[:-1]))

    with pytest.raises(ExerciseMismatch) as error:
        check_feature_matching_loss(without_logits)
    message = str(error.value)
    assert "grad fake0             exact" in message
    assert "grad fake3             MISSING    got None (trial 0): no gradient reached this input" in message
