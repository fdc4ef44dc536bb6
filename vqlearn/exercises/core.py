"""Self-checks for the book's coding exercises, in the spirit of karpathy's ``cmp()``.

A self-check runs the reader's function and vqlearn's on the same random inputs and says exactly what
differs: for every output and every gradient, ``exact``, ``close`` (with the tolerance), or what is wrong —
the largest difference and where it is, two shapes that do not match, a gradient that never arrived.

- :func:`compare` compares one value with the expected one (tensors, numbers, ``None``, and tuples, lists or
  dicts of them) and returns :class:`Comparison` lines.
- :func:`check_function` is what every exercise's checker calls: it draws inputs, runs both functions, sends
  the same random upstream gradient back through both outputs, compares, prints a report and raises
  :class:`ExerciseMismatch` when anything differs (so a solution that stops passing fails the chapter's test).

The per-exercise checkers live next to this module, one module per chapter (``chapter03.py`` ...).

Book: every chapter's "Exercises" section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


class ExerciseMismatch(AssertionError):
    """The reader's function differs from vqlearn's; the message lists every difference."""


@dataclass
class Comparison:
    """One compared value: ``status`` is one of ``exact``, ``close``, ``differs``, ``shape``, ``dtype``,
    ``missing``, ``unexpected`` or ``type``; ``detail`` says what was found."""

    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("exact", "close")

    def line(self) -> str:
        label = self.status if self.ok else self.status.upper()
        return f"  {self.name:<22} {label:<10} {self.detail}".rstrip()


def _position(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major position of ``flat_index`` in a tensor of ``shape``."""
    position = []
    for size in reversed(shape):
        position.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(position))


def _compare_tensors(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> Comparison:
    if tuple(got.shape) != tuple(expected.shape):
        return Comparison(name, "shape", f"got shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if got.dtype.is_floating_point != expected.dtype.is_floating_point:
        return Comparison(name, "dtype", f"got {got.dtype}, expected {expected.dtype}")
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if torch.equal(got, expected):
        return Comparison(name, "exact")
    if not expected.dtype.is_floating_point:
        wrong = (got != expected).flatten().nonzero()[:, 0]
        first = int(wrong[0])
        where = _position(first, tuple(got.shape))
        return Comparison(name, "differs", f"{len(wrong)} of {got.numel()} entries differ; first at {where}: "
                                           f"got {got.flatten()[first].item()}, expected {expected.flatten()[first].item()}")
    got, expected = got.double(), expected.double()
    difference = (got - expected).abs()
    largest = int(difference.flatten().argmax())
    max_diff = difference.flatten()[largest].item()
    tolerance = f"atol {atol:g}, rtol {rtol:g}"
    if torch.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
        return Comparison(name, "close", f"max |diff| {max_diff:.2e} ({tolerance})")
    outside = ~torch.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    first = int(outside.flatten().nonzero()[0, 0])
    shape = tuple(got.shape)
    return Comparison(name, "differs",
                      f"max |diff| {max_diff:.3g} at {_position(largest, shape)} "
                      f"(got {got.flatten()[largest].item():.6g}, expected {expected.flatten()[largest].item():.6g}); "
                      f"{int(outside.sum())} of {got.numel()} entries outside {tolerance}, "
                      f"the first at {_position(first, shape)}")


def compare(got: Any, expected: Any, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4) -> list[Comparison]:
    """Compare ``got`` with ``expected``; one :class:`Comparison` per tensor or number found.

    Tensors are compared by shape, then exactly, then with ``torch.allclose(atol, rtol)``; numbers as 0-d
    tensors; ``None`` against a tensor is ``missing`` (e.g. a gradient that never arrived), a tensor against
    ``None`` is ``unexpected``; tuples, lists and dicts are compared item by item (``output[1]``,
    ``output['loss']``).
    """
    if expected is None and got is None:
        return [Comparison(name, "exact")]
    if expected is None:
        return [Comparison(name, "unexpected", f"got a {type(got).__name__}, expected None")]
    if got is None:
        return [Comparison(name, "missing", "got None")]
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            length = len(got) if isinstance(got, (tuple, list)) else "not a sequence"
            return [Comparison(name, "type", f"got {type(got).__name__} ({length}), "
                                             f"expected {type(expected).__name__} of {len(expected)}")]
        return [c for i, (g, e) in enumerate(zip(got, expected)) for c in compare(g, e, f"{name}[{i}]", atol, rtol)]
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            return [Comparison(name, "type", f"got keys {keys}, expected {sorted(expected)}")]
        return [c for key in expected for c in compare(got[key], expected[key], f"{name}[{key!r}]", atol, rtol)]
    if isinstance(expected, (int, float, bool)):
        expected = torch.tensor(expected)
    if isinstance(got, (int, float, bool)):
        got = torch.tensor(got)
    if not isinstance(got, torch.Tensor):
        return [Comparison(name, "type", f"got {type(got).__name__}, expected a tensor")]
    return [_compare_tensors(name, got, expected, atol, rtol)]


def _tensors(value: Any) -> list[torch.Tensor]:
    """The floating-point tensors in ``value`` (a tensor, or tuples/lists/dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        return [value] if value.dtype.is_floating_point else []
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for key in value for t in _tensors(value[key])]
    return []


def _clone_inputs(inputs: dict[str, Any], grad_wrt: Sequence[str]) -> dict[str, Any]:
    cloned = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().clone().requires_grad_(key in grad_wrt)
        cloned[key] = value
    return cloned


def check_function(exercise: str, chapter: str, mine: Callable, reference: Callable,
                   make_inputs: Callable[[torch.Generator], dict[str, Any]], grad_wrt: Sequence[str] = (),
                   trials: int = 3, atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> list[Comparison]:
    """Run ``mine`` and ``reference`` on ``trials`` random inputs and compare outputs and gradients.

    ``make_inputs(generator)`` returns the keyword arguments of both functions. For every name in
    ``grad_wrt`` the input requires a gradient; one random upstream gradient per output tensor (the same for
    both functions) is sent back, and the inputs' ``.grad`` are compared too (``grad z``). Prints one line
    per value (the worst trial), then a verdict; raises :class:`ExerciseMismatch` with the same text when
    anything differs. Exceptions raised by ``mine`` (e.g. the student edition's ``NotImplementedError``)
    propagate unchanged.
    """
    generator = torch.Generator().manual_seed(seed)
    worst: dict[str, tuple[int, Comparison]] = {}
    for trial in range(trials):
        inputs = make_inputs(generator)
        results = {}
        for who, function in (("mine", mine), ("reference", reference)):
            call_inputs = _clone_inputs(inputs, grad_wrt)
            with torch.enable_grad():
                output = function(**call_inputs)
                results[who] = (output, call_inputs)
        comparisons = compare(results["mine"][0], results["reference"][0], "output", atol, rtol)
        if grad_wrt:
            grads = {}
            upstream_generator = torch.Generator().manual_seed(seed + 1000 + trial)
            reference_outputs = _tensors(results["reference"][0])
            upstream = [torch.randn(t.shape, generator=upstream_generator, dtype=t.dtype) for t in reference_outputs]
            for who in ("mine", "reference"):
                output, call_inputs = results[who]
                pairs = [(t, u) for t, u in zip(_tensors(output), upstream) if t.requires_grad and t.shape == u.shape]
                if pairs:
                    torch.autograd.backward([t for t, _ in pairs], [u for _, u in pairs])
                grads[who] = {name: call_inputs[name].grad for name in grad_wrt}
            for name in grad_wrt:
                comparisons += compare(grads["mine"][name], grads["reference"][name], f"grad {name}", atol, rtol)
        for comparison in comparisons:
            known = worst.get(comparison.name)
            if known is None or (known[1].ok and not comparison.ok):
                worst[comparison.name] = (trial, comparison)
    failed = [(trial, c) for trial, c in worst.values() if not c.ok]
    lines = [f"Exercise {exercise} (chapter \"{chapter}\"): {trials} random trials"]
    for trial, comparison in worst.values():
        line = comparison.line()
        if not comparison.ok:
            line += f" (trial {trial})"
            if comparison.status == "missing" and comparison.name.startswith("grad"):
                line += ": no gradient reached this input; is the path cut by .detach(), argmin or round?"
            if comparison.status == "unexpected" and comparison.name.startswith("grad"):
                line += ": vqlearn's function sends no gradient to this input"
        lines.append(line)
    name = getattr(mine, "__name__", "your function")
    reference_name = f"{getattr(reference, '__module__', '')}.{getattr(reference, '__qualname__', 'reference')}".lstrip(".")
    if failed:
        lines.append(f"✗ {name} differs from {reference_name} in {len(failed)} value(s)")
    else:
        lines.append(f"✓ {name} agrees with {reference_name}")
    report = "\n".join(lines)
    print(report)
    if failed:
        raise ExerciseMismatch(report)
    return [c for _, c in worst.values()]
