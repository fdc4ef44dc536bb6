"""Chapter 10's self-check (exercise 10.2, the window of one PatchGAN logit): passes the chapter's solution and
vqlearn's function, and says what differs for the usual mistakes (padding counted in the layers' own positions
instead of input pixels, no padding offset at all, the window as wide as the strides' product)."""

import pytest
import torch

from vqlearn.discriminator import NLayerDiscriminator, conv_strides, patch_window, receptive_field
from vqlearn.exercises import ExerciseMismatch, check_patch_window
from vqlearn.exercises.chapter10 import patch_window_inputs


def my_patch_window(index, n_layers):  # the chapter's solution
    jump, offset = 1, 0
    for stride in conv_strides(n_layers):
        offset += 1 * jump  # each layer pads 1 of its own input positions, `jump` input pixels apart
        jump *= stride
    start = index * jump - offset
    return start, start + receptive_field(n_layers)


def test_solution_and_vqlearn_pass(capsys):
    comparisons = check_patch_window(my_patch_window)
    assert [(c.name, c.status) for c in comparisons] == [("output[0]", "exact"), ("output[1]", "exact")]
    out = capsys.readouterr().out
    assert "Exercise 10.2 (chapter \"The PatchGAN discriminator\"): 8 random trials" in out
    assert "✓ my_patch_window agrees with vqlearn.discriminator.patch_window" in out
    check_patch_window(patch_window)


def test_inputs_cover_every_depth_and_the_border():
    generator = torch.Generator().manual_seed(0)
    drawn = [patch_window_inputs(generator) for _ in range(8)]
    assert {d["n_layers"] for d in drawn} == {1, 2, 3, 4} and any(d["index"] == 0 for d in drawn)


def test_the_reference_is_what_autograd_finds():
    # logit (4, 4) of a 2-layer discriminator on 40x40: the gradient reaches exactly the rows of patch_window(4, 2)
    torch.manual_seed(0)
    disc = NLayerDiscriminator(input_nc=1, ndf=4, n_layers=2).double().eval()
    x = torch.randn(1, 1, 40, 40, dtype=torch.double, requires_grad=True)
    disc(x)[0, 0, 4, 4].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    assert (int(rows.min()), int(rows.max()) + 1) == patch_window(4, 2) == (5, 39)


def test_padding_in_layer_positions_differs():
    def padding_per_layer(index, n_layers):  # one pixel of padding per layer, not `jump` input pixels
        start = index * 2 ** n_layers - len(conv_strides(n_layers))
        return start, start + receptive_field(n_layers)

    with pytest.raises(ExerciseMismatch) as error:
        check_patch_window(padding_per_layer)
    message = str(error.value)
    assert "output[0]              DIFFERS    1 of 1 entries differ; first at (): got 75, expected 73 (trial 0)" in message
    assert "✗ padding_per_layer differs from vqlearn.discriminator.patch_window in 2 value(s)" in message


def test_no_padding_offset_differs():
    def no_offset(index, n_layers):  # the window starts at the logit's position times the jump
        start = index * 2 ** n_layers
        return start, start + receptive_field(n_layers)

    with pytest.raises(ExerciseMismatch) as error:
        check_patch_window(no_offset)
    assert "got 78, expected 73" in str(error.value)


def test_window_as_wide_as_the_jump_differs_only_in_stop():
    def tiling(index, n_layers):  # patches as a tiling: each logit sees its own 2**n_layers rows
        start, _ = patch_window(index, n_layers)
        return start, start + 2 ** n_layers

    with pytest.raises(ExerciseMismatch) as error:
        check_patch_window(tiling)
    message = str(error.value)
    assert "output[0]              exact" in message and "output[1]              DIFFERS" in message
    assert "in 1 value(s)" in message
