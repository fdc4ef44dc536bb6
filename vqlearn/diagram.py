"""Architecture diagrams drawn from a model's real forward pass.

:func:`architecture_graph` runs one forward pass with forward hooks on a
model's submodules and records, for each one that ran, its name, class and
output shape, and which earlier submodules its input came from. The data flow
is read from the autograd graph (each submodule's input is walked back through
``grad_fn`` nodes until it reaches the output of an earlier submodule), so
concatenations and skip paths -- VQ-VAE-2's bottom quantizer reading both the
bottom encoder and the decoded top codes -- appear as edges without any
drawing code knowing the model. :func:`draw_architecture` draws that graph:
one box per submodule, in call order from top to bottom, placed in the column
of its output's spatial size, with the output shape inside the box::

    >>> draw_architecture(VQVAE(dim=64), torch.randn(2, 1, 28, 28), depth=2)
    >>> draw_architecture(VQVAE2(), torch.randn(1, 3, 64, 64), depth=1)

Book: chapter "The VQ-VAE", chapter "VQ-VAE-2: a hierarchy of codes".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

INPUT = "input"


@dataclass
class Node:
    """One drawn submodule call (or the model's input).

    name: dotted module path (``"encoder.0"``), or ``"input"``.
    kind: class name (``"Conv2d"``).
    shape: shape of the call's first floating-point output tensor, e.g. ``(B, C, H, W)``.
    codes_shape: shape of an integer output tensor (a quantizer's code indices), or None.
    inputs: indices (into the graph's node list) of the nodes this call's input came from.
    """

    name: str
    kind: str
    shape: tuple
    codes_shape: tuple | None = None
    inputs: list[int] = field(default_factory=list)


def _tensors(value) -> list[torch.Tensor]:
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def architecture_graph(model: nn.Module, example_input: torch.Tensor, depth: int = 1) -> list[Node]:
    """The model's submodule calls and their data flow, from one forward pass on ``example_input``.

    A submodule is drawn if it sits at most ``depth`` levels deep (1 = the model's
    direct children) and none of its own submodules at those depths ran (so a
    ``Sequential`` at depth 1 is replaced by its layers at depth 2). The model runs
    in eval mode (so BatchNorm statistics and EMA codebooks are untouched) with
    gradients on, then gets its training mode back. Returns the nodes in call
    order, ``nodes[0]`` being the input; ``(B, C, H, W) -> list[Node]``.
    """
    calls: list[tuple[str, nn.Module, tuple, object]] = []
    handles = []
    for name, module in model.named_modules():
        if name and name.count(".") < depth:
            handles.append(module.register_forward_hook(
                lambda module, args, output, name=name: calls.append((name, module, args, output))))
    x = example_input.detach().clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    called = {name for name, *_ in calls}
    calls = [c for c in calls if not any(other.startswith(c[0] + ".") for other in called)]

    nodes = [Node(INPUT, "image", tuple(x.shape))]
    producers: dict[object, list[int]] = {}  # autograd node -> indices of the drawn nodes that output it

    def walk(tensors: list[torch.Tensor], before: int) -> list[int]:
        """Indices (< before) of the drawn nodes whose outputs these tensors were computed from."""
        found, seen = set(), set()
        if any(t is x for t in tensors):
            found.add(0)
        stack = [t.grad_fn for t in tensors if t.grad_fn is not None]
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            earlier = [i for i in producers.get(node, []) if i < before]
            if earlier:
                found.add(max(earlier))
                continue
            variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf (a parameter, or the input)
            if variable is not None:
                if variable is x:
                    found.add(0)
                continue
            stack.extend(next_node for next_node, _ in node.next_functions)
        return sorted(found)

    for name, module, args, output in calls:
        index = len(nodes)
        outputs = _tensors(output)
        floats = [t for t in outputs if t.is_floating_point() and t.dim() > 0]
        ints = [t for t in outputs if not t.is_floating_point() and t.dim() > 0]
        if not floats:
            continue
        node = Node(name, type(module).__name__, tuple(floats[0].shape),
                    tuple(ints[0].shape) if ints else None, walk(_tensors(args), index))
        nodes.append(node)
        if floats[0].grad_fn is not None:
            producers.setdefault(floats[0].grad_fn, []).append(index)
    return nodes


def _size(shape: tuple) -> str:
    return "x".join(str(s) for s in shape[-2:]) if len(shape) >= 3 else "x".join(map(str, shape))


def draw_architecture(model: nn.Module, example_input: torch.Tensor, ax=None, depth: int = 1,
                      title: str | None = None, figsize: tuple | None = None):
    """Draw ``model`` as labelled boxes with the tensor shape after each, from a real forward pass.

    ``example_input``: an image batch ``(B, C, H, W)`` the model accepts. Each box is one
    submodule call (see :func:`architecture_graph` for ``depth``), labelled with its name,
    class and output shape (a quantizer's box also gives its code indices' shape).
    Boxes run top to bottom in call order, in columns by output resolution (``H x W``),
    so the encoder walks down the resolutions and the decoder back up; arrows follow the
    data flow, including skips and concatenations (VQ-VAE-2's top and bottom paths).
    Returns the matplotlib Axes.
    """
    nodes = architecture_graph(model, example_input, depth=depth)
    sizes = sorted({n.shape[-2:] for n in nodes if len(n.shape) >= 3}, key=lambda s: -s[0] * s[1])
    column = {size: i for i, size in enumerate(sizes)}
    if ax is None:
        _, ax = plt.subplots(figsize=figsize or (3.2 * max(len(sizes), 2), 0.62 * len(nodes) + 1.2))
    box_w, box_h = 0.86, 0.8
    centres = []
    for row, node in enumerate(nodes):
        col = column.get(node.shape[-2:], 0)
        cx, cy = col + 0.5, -row
        centres.append((cx, cy))
        quantizer = node.codes_shape is not None
        colour = "#fde2b8" if quantizer else ("#dfe9f5" if node.name == INPUT else "#eef3ea")
        ax.add_patch(FancyBboxPatch((cx - box_w / 2, cy - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.0,rounding_size=0.08",
                                    facecolor=colour, edgecolor="0.3", linewidth=0.8))
        label = f"{node.name}: {node.kind}" if node.name != INPUT else "input image"
        lines = [f"-> {tuple(node.shape)}"] + ([f"codes {tuple(node.codes_shape)}"] if quantizer else [])
        top = cy + (0.24 if quantizer else 0.13)
        ax.text(cx, top, label, ha="center", va="center", fontsize=7.5, fontweight="bold")
        for i, line in enumerate(lines):
            ax.text(cx, top - 0.22 * (i + 1) - 0.02, line, ha="center", va="center", fontsize=7, family="monospace")
    for row, node in enumerate(nodes):
        for source in node.inputs:
            (x0, y0), (x1, y1) = centres[source], centres[row]
            if row - source == 1 and x0 == x1:  # the next layer: straight down
                start, end, bend, colour = (x0, y0 - box_h / 2), (x1, y1 + box_h / 2), 0.0, "0.25"
            elif x0 == x1:  # a skip within one column: around the boxes' left side
                start, end, bend, colour = (x0 - box_w / 2, y0), (x1 - box_w / 2, y1), 0.35, "#c0392b"
            else:  # to another resolution: from the facing sides, through the gap between columns
                side = 1 if x1 > x0 else -1
                start, end = (x0 + side * box_w / 2, y0), (x1 - side * box_w / 2, y1)
                bend, colour = 0.0, "0.25" if row - source == 1 else "#c0392b"
            ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={bend}", arrowstyle="-|>",
                                         mutation_scale=9, color=colour, linewidth=0.9, shrinkA=0, shrinkB=0))
    for size, col in column.items():
        ax.text(col + 0.5, 0.75, f"{_size(size)}", ha="center", va="bottom", fontsize=9, color="0.2")
    ax.text(len(sizes) / 2, 1.25, "columns: spatial size H x W of each output (from the forward pass)",
            ha="center", va="bottom", fontsize=8, color="0.35")
    skips = any(row - source > 1 for row, node in enumerate(nodes) for source in node.inputs)
    if skips:
        ax.text(len(sizes) / 2, -len(nodes) + 0.35, "red arrows: skips and concatenations (from the autograd graph)",
                ha="center", va="top", fontsize=8, color="#c0392b")
    ax.set_xlim(-0.25, len(sizes) + 0.05)
    ax.set_ylim(-len(nodes) + 0.1, 1.7)
    ax.set_axis_off()
    ax.set_title(title or f"{type(model).__name__}: submodules at depth {depth}, shapes from one forward pass",
                 fontsize=10)
    return ax
