"""Chapter 12's self-checks: one layer of LPIPS by hand, and HiFi-GAN's feature matching loss.

Book: chapter "Perceptual loss".
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from vqlearn.exercises.core import Comparison, check_function
from vqlearn.losses import feature_matching_loss

CHAPTER = "Perceptual loss"

# Shapes of a small PatchGAN's features (ndf 8, n_layers 2, 16x16 input, batch 2): three activations, then the logits.
_FEATURE_SHAPES = ((2, 8, 8, 8), (2, 16, 4, 4), (2, 32, 3, 3), (2, 1, 2, 2))


def lpips_layer_reference(features_x: torch.Tensor, features_y: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """One layer's LPIPS term, computed with the ``lpips`` package's own pieces (Zhang et al. 2018, §3, Eq. 1).

    ``features_x, features_y: (B, C, H, W)`` (a trunk layer's activations of two images), ``head: (1, C, 1, 1)``
    (the layer's non-negative linear head) -> ``(B,)``: ``lpips.normalize_tensor`` unit-normalises each
    position's feature vector along the channels (with ``eps = 1e-10`` added to the norm), the squared difference
    goes through the 1x1 convolution ``head``, and ``lpips.spatial_average`` averages over positions, as in
    ``lpips.LPIPS.forward``. Summed over layers, these terms are LPIPS.
    """
    import lpips  # imported here: vqlearn imports lpips only where LPIPS is needed

    difference = (lpips.normalize_tensor(features_x) - lpips.normalize_tensor(features_y)) ** 2
    return lpips.spatial_average(F.conv2d(difference, head), keepdim=False)[:, 0]


def lpips_layer_inputs(generator: torch.Generator) -> dict:
    """Post-ReLU features ``(2, 8, 5, 5)`` of two images and a non-negative head ``(1, 8, 1, 1)``."""
    return {"features_x": torch.randn(2, 8, 5, 5, generator=generator).relu(),
            "features_y": torch.randn(2, 8, 5, 5, generator=generator).relu(),
            "head": torch.rand(1, 8, 1, 1, generator=generator)}


def check_lpips_layer(my_lpips_layer: Callable) -> list[Comparison]:
    """Exercise 12.1: compare ``my_lpips_layer(features_x, features_y, head)`` with :func:`lpips_layer_reference`.

    ``features_x, features_y: (2, 8, 5, 5)``, ``head: (1, 8, 1, 1)`` -> ``(2,)``, one LPIPS term per image pair.
    The values and the gradients with respect to all three inputs are compared on three random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Perceptual loss".
    """
    return check_function("12.1", CHAPTER, my_lpips_layer, lpips_layer_reference, lpips_layer_inputs,
                          grad_wrt=("features_x", "features_y", "head"))


def feature_inputs(generator: torch.Generator) -> dict:
    """Discriminator features of real images (``real0``..``real3``) and of reconstructions (``fake0``..``fake3``),
    in the shapes of ``_FEATURE_SHAPES``."""
    inputs = {}
    for side in ("real", "fake"):
        for index, shape in enumerate(_FEATURE_SHAPES):
            inputs[f"{side}{index}"] = torch.randn(shape, generator=generator)
    return inputs


def _as_lists(fn: Callable, name: str, module: str | None = None) -> Callable:
    """``fn(features_real, features_fake)`` called with the tensors of :func:`feature_inputs` as keywords."""
    def call(**tensors):
        count = len(_FEATURE_SHAPES)
        return fn([tensors[f"real{i}"] for i in range(count)], [tensors[f"fake{i}"] for i in range(count)])

    call.__name__ = call.__qualname__ = name
    if module is not None:
        call.__module__ = module
    return call


def check_feature_matching_loss(my_feature_matching_loss: Callable) -> list[Comparison]:
    """Exercise 12.2: compare ``my_feature_matching_loss(features_real, features_fake)`` with
    :func:`vqlearn.losses.feature_matching_loss`.

    ``features_real, features_fake``: lists of four tensors of the shapes of a small PatchGAN's features,
    ``(2, 8, 8, 8), (2, 16, 4, 4), (2, 32, 3, 3), (2, 1, 2, 2)`` (the last one the logits) -> a scalar,
    ``sum_l mean(|D_l(x) - D_l(x_hat)|)``. The value and the gradients with respect to the reconstruction's
    features (``grad fake0`` .. ``grad fake3``) are compared on three random trials. Raises
    :class:`~vqlearn.exercises.ExerciseMismatch` on a difference.

    Book: chapter "Perceptual loss".
    """
    mine = _as_lists(my_feature_matching_loss, getattr(my_feature_matching_loss, "__name__", "your function"))
    reference = _as_lists(feature_matching_loss, feature_matching_loss.__qualname__, feature_matching_loss.__module__)
    return check_function("12.2", CHAPTER, mine, reference, feature_inputs,
                          grad_wrt=tuple(f"fake{i}" for i in range(len(_FEATURE_SHAPES))))
