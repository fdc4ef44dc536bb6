"""The package's layers, and the checks that its imports respect them.

vqlearn is built in layers: each module imports only from its own layer and
the layers above it in :data:`LAYERS`, and no two modules import each other,
directly or in a ring. :func:`module_imports` reads every ``import`` of the
package's source files (those inside functions too: an import placed in a
function to dodge a cycle is still a cycle), :func:`upward_imports` and
:func:`import_cycles` find what breaks the rules. ``tests/test_layering.py``
asserts that they find nothing; the preface prints the same layers.

Book: chapter "vqlearn: vector-quantized image autoencoders, by running them" (the preface's map of vqlearn).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

# Top to bottom. A name covers its submodules ("data" covers "data.registry").
LAYERS: dict[str, list[str]] = {
    "foundations: errors, images, tensors in and out": [
        "errors", "images", "runtime", "blocks", "attention", "quantize", "scalar_quantize", "residual_quantize",
        "quantizers", "codebook", "discriminator", "perceptual", "losses",
        "metrics", "checkpoint", "profile", "trace", "viz", "spectral",
    ],
    "models: the three families": ["models"],
    "data and configuration": ["data", "config"],
    "training: config -> objects, the loop, evaluation, reference checkpoints": [
        "build", "history", "evaluate", "trainer", "train", "pretrained", "prior", "race",
    ],
    "book helpers: what the chapters use to show things": [
        "notebook", "plots", "layering", "diagram", "normsets", "toygan", "exercises",
    ],
}


def package_dir() -> Path:
    """The folder of the installed ``vqlearn`` package."""
    return Path(importlib.util.find_spec("vqlearn").origin).parent


def module_name(path: Path, root: Path) -> str:
    """``root/data/registry.py -> "data.registry"``; ``root/models/__init__.py -> "models"``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(root: Path | None = None, package: str = "vqlearn") -> dict[str, set[str]]:
    """For each module of the package under ``root``: the package's modules it imports (names without
    the ``vqlearn.`` prefix; the package itself, ``vqlearn/__init__.py``, is ``""``)."""
    root = root or package_dir()
    modules = {module_name(path, root) for path in root.rglob("*.py")}
    graph = {}
    for path in sorted(root.rglob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from vqlearn.data import files` imports the module vqlearn.data.files;
                # `from vqlearn.data import build_dataset` imports vqlearn.data.
                submodules = [f"{node.module}.{alias.name}" for alias in node.names]
                names = [sub if sub[len(package) + 1 :] in modules else node.module for sub in submodules]
            else:
                continue
            for name in names:
                if name.startswith(package + "."):
                    inner = name[len(package) + 1 :]
                    if inner in modules:
                        imported.add(inner)
        name = module_name(path, root)
        imported.discard(name)
        graph[name] = imported
    return graph


def layer_of(name: str) -> int | None:
    """The index of ``name``'s layer in :data:`LAYERS` (longest matching prefix), or None."""
    best, best_len = None, -1
    for index, members in enumerate(LAYERS.values()):
        for member in members:
            if (name == member or name.startswith(member + ".")) and len(member) > best_len:
                best, best_len = index, len(member)
    return best


def unplaced_modules(graph: dict[str, set[str]]) -> list[str]:
    """Modules that belong to no layer (the package root ``""`` needs none)."""
    return sorted(name for name in graph if name and layer_of(name) is None)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """``(module, imported)`` pairs where a module imports from a layer below its own."""
    return sorted(
        (name, imported)
        for name, imports in graph.items()
        for imported in imports
        if layer_of(name) is not None and layer_of(imported) is not None and layer_of(imported) > layer_of(name)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or in a ring (strongly connected components)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                lowlink[node] = min(lowlink[node], lowlink[child])
            elif child in on_stack:
                lowlink[node] = min(lowlink[node], index[child])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles
