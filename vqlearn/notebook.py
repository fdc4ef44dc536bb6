"""Helpers the book's chapters use to show vqlearn's own code and results.

Nothing in the package depends on this module; it imports IPython lazily.
"""

from __future__ import annotations

import inspect


def show_source(obj, *, lines: tuple[int, int] | None = None):
    """Display the source of a vqlearn function or class with syntax highlighting.

    Chapters call this instead of pasting code, so the book always shows what
    the package really runs. ``lines=(first, last)`` (1-based, inclusive)
    shows only part of it.
    """
    from IPython.display import Code

    source = inspect.getsource(obj)
    if lines is not None:
        first, last = lines
        source = "\n".join(source.splitlines()[first - 1 : last])
    return Code(source, language="python")
