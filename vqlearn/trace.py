"""Live shape traces in the seed notebooks' ``ic`` style, through forward hooks.

Library code never prints. The book calls :func:`trace_shapes`, which runs a
forward pass with hooks on a model's submodules and reports, for each one that
ran, its name, type and output shape through icecream::

    >>> trace_shapes(VQVAE(), torch.randn(2, 1, 28, 28), depth=1)
    ic| 'encoder': 'Sequential', (2, 1, 28, 28) -> (2, 256, 7, 7)
    ...

:func:`conv_receptive_field` reads the same records to compute a network's
receptive field. Book: every chapter's shape traces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from icecream import IceCreamDebugger


def _shape(value) -> tuple | str:
    if torch.is_tensor(value):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        shapes = [_shape(v) for v in value if torch.is_tensor(v) or isinstance(v, (tuple, list))]
        return shapes[0] if len(shapes) == 1 else tuple(shapes)
    return type(value).__name__


@dataclass
class ShapeRecord:
    """One submodule call: ``name`` (dotted path), ``kind`` (class name), input and output shapes."""

    name: str
    kind: str
    input_shape: tuple | str
    output_shape: tuple | str


def make_ic() -> IceCreamDebugger:
    """An icecream debugger writing to stdout (so notebooks and nbval see it)."""
    return IceCreamDebugger(outputFunction=print)


def emit(ic: IceCreamDebugger, message: str) -> None:
    """Print ``message`` through ``ic``'s prefix and output function: ``ic| message``."""
    ic.outputFunction(ic.prefix + message)


def trace_shapes(
    model: nn.Module,
    *inputs,
    depth: int = 1,
    method: str = "forward",
    show: bool = True,
) -> list[ShapeRecord]:
    """Run ``model.<method>(*inputs)`` without gradients and record every submodule call.

    Args:
        depth: how deep in the module tree to hook (1 = direct children,
            2 = grandchildren too, ...). Containers are reported after their children.
        method: which method to call (``"forward"``, ``"tokenize"``, ``"encode"`` ...).
        show: print each record with icecream as it happens.

    Returns the records in call order.
    """
    records: list[ShapeRecord] = []
    ic = make_ic()
    handles = []

    def hook_for(name: str):
        def hook(module, args, output):
            record = ShapeRecord(name, type(module).__name__, _shape(args), _shape(output))
            records.append(record)
            if show:
                emit(ic, f"{name}: {record.kind}  {record.input_shape} -> {record.output_shape}")

        return hook

    for name, module in model.named_modules():
        if name and name.count(".") < depth:
            handles.append(module.register_forward_hook(hook_for(name)))
    try:
        with torch.no_grad():
            getattr(model, method)(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return records


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as EMA codebooks are not parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_receptive_field(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """``(field, jump)`` of the convolutions of ``model``, taken in the order a forward pass on ``example`` calls them.

    ``field = 1 + sum_k (kernel_k - 1) * jump_k``, where ``jump_k`` is the product of the
    strides before conv ``k``: the side, in input pixels, of the square one output position
    can depend on through the convolutions alone (padding, normalisation and attention
    ignored), and ``jump``, the input distance between neighbouring output positions.
    Call order matters where it differs from registration order (a decoder registered
    bottom-up); skip paths are ignored, so this is the longest path of a residual network.
    """
    field, jump = 1, 1
    for record in trace_shapes(model, example, depth=99, show=False):
        if record.kind == "Conv2d":
            conv = model.get_submodule(record.name)
            field += (conv.kernel_size[0] - 1) * jump
            jump *= conv.stride[0]
    return field, jump
