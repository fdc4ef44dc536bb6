"""Which elements of a ``(N, C, H, W)`` tensor share one mean and variance, per normalisation layer.

BatchNorm, LayerNorm, InstanceNorm and GroupNorm all compute
``(x - mean) / sqrt(var + eps)``; they differ only in the set of elements each
mean and variance is taken over. Seen as a ``(N, C, L)`` block with
``L = H * W``:

* batch: one set per channel, over ``(N, L)`` (in training mode);
* layer: one set per sample, over ``(C, L)``;
* instance: one set per sample and channel, over ``L``;
* group: one set per sample and group of ``C / G`` consecutive channels, over ``(C / G, L)``.

:func:`statistics_sets` labels every element with its set from these reduction
dims, :func:`normalize_by_sets` normalises a tensor set by set (the four layers
without their affine part), and :func:`dependency_mask` asks autograd which
inputs one output of a real layer depends on, so the sets can be checked
against torch's layers instead of being taken on trust.

Book: chapter "GroupNorm".
"""

from __future__ import annotations

import torch
import torch.nn as nn

NORM_KINDS = ("batch", "layer", "instance", "group")


def group_view(kind: str, channels: int, num_groups: int | None = None) -> tuple[int, tuple[int, ...]]:
    """``(G, reduced)``: view ``(N, C, L)`` as ``(N, G, C // G, L)`` and reduce over the dims ``reduced``.

    batch: ``G = C``, reduce ``(0, 2, 3)``; layer: ``G = 1``; instance: ``G = C``;
    group: ``G = num_groups``; the last three reduce ``(2, 3)``.
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")
    if kind == "group":
        if num_groups is None or num_groups < 1 or channels % num_groups != 0:
            raise ValueError(
                f"group norm needs num_groups dividing channels, got channels={channels}, num_groups={num_groups}"
            )
        return num_groups, (2, 3)
    groups = {"batch": channels, "layer": 1, "instance": channels}[kind]
    return groups, ((0, 2, 3) if kind == "batch" else (2, 3))


def statistics_sets(kind: str, shape: tuple[int, int, int], num_groups: int | None = None) -> torch.Tensor:
    """Label each element of an ``(N, C, L)`` tensor with the index of the set it is normalised with.

    ``shape = (N, C, L)`` -> ``(N, C, L)`` long tensor; two elements share a mean
    and a variance exactly when their labels are equal. Labels run from 0 to
    the number of sets minus 1 (``C`` for batch, ``N`` for layer, ``N * C`` for
    instance, ``N * G`` for group).
    """
    n, c, length = shape
    groups, reduced = group_view(kind, c, num_groups)
    view = (n, groups, c // groups, length)
    labels = torch.zeros(view, dtype=torch.long)
    stride = 1
    for dim in reversed([d for d in range(4) if d not in reduced]):
        index_shape = [1, 1, 1, 1]
        index_shape[dim] = view[dim]
        labels = labels + stride * torch.arange(view[dim]).view(index_shape)
        stride *= view[dim]
    return labels.reshape(n, c, length)


def normalize_by_sets(x: torch.Tensor, sets: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` with mean and (biased) variance taken over each set.

    ``x: (N, C, H, W)``, ``sets: (N, C, H * W)`` labels from :func:`statistics_sets`
    -> ``(N, C, H, W)``. This is the normalisation of all four layers, with no
    affine scale and shift, computed in float64 so that it can serve as a reference.
    """
    flat = x.reshape(-1).double()
    labels = sets.reshape(-1).to(x.device)
    count = torch.bincount(labels).double()
    mean = torch.zeros_like(count).index_add_(0, labels, flat) / count
    centred = flat - mean[labels]
    var = torch.zeros_like(count).index_add_(0, labels, centred**2) / count
    return (centred / torch.sqrt(var[labels] + eps)).reshape(x.shape).to(x.dtype)


def dependency_mask(layer: nn.Module, x: torch.Tensor, index: tuple[int, int, int, int]) -> torch.Tensor:
    """Which inputs the output element ``layer(x)[index]`` depends on, by autograd.

    ``x: (N, C, H, W)``, ``index = (n, c, h, w)`` -> bool ``(N, C, H * W)``. For a
    normalisation layer (in the mode it is in: BatchNorm in training mode uses
    the batch) the mask is the set of elements that share the output's mean and
    variance; the gradient of an output with respect to another element of its
    set is ``-(1 + x_hat_i x_hat_j) / (M sigma)``, zero only if
    ``x_hat_i x_hat_j = -1``, which random inputs never hit.
    """
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(layer(x)[index], x)
    return (grad != 0).reshape(x.shape[0], x.shape[1], -1)


def torch_layer(kind: str, channels: int, spatial: tuple[int, int], num_groups: int | None = None) -> nn.Module:
    """The torch layer for ``kind`` on ``(N, channels, *spatial)`` inputs, without affine parameters.

    batch: ``BatchNorm2d`` (use it in training mode), layer: ``LayerNorm((C, H, W))``,
    instance: ``InstanceNorm2d``, group: ``GroupNorm(num_groups, C)``.
    """
    group_view(kind, channels, num_groups)  # validates kind and num_groups
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "layer":
        return nn.LayerNorm((channels, *spatial), elementwise_affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.GroupNorm(num_groups, channels, affine=False)
