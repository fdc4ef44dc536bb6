"""Build the class edition of the book: the HTML without the exercises' solutions (`make book-class`).

    python tools/build_class.py                 # -> _build/class/html

It is `jupyter-book build .` with the book's own _config.yml and _toc.yml and these overrides:

- ``hide_solutions = True`` (sphinx-exercise; book/_ext/exercise_numbers.py removes the gated solutions' cells
  too), so no solution is in the pages or in the search index, not even collapsed;
- no copy of the source notebooks (``html_copy_source``) and no download button: those would carry the solutions;
- the execution cache of `make book` (_build/.jupyter_cache): the chapters are not executed again when
  `make book` has run on the same chapters (otherwise they are executed, with their solutions, and the cache is
  filled for the next `make book`).

The build fails on any warning, like `make book`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def class_overrides(source: Path, cache: Path) -> dict:
    """The Sphinx settings that turn the book's build into the class build."""
    return {
        "external_toc_path": (source / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        "hide_solutions": True,
        "html_copy_source": False,
        "html_theme_options": {"use_download_button": False},
        "nb_execution_cache_path": str(cache),
        "html_title": "vqlearn (class edition, without solutions)",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO,
                        help="the book's folder, with _config.yml and _toc.yml (default: the repository)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the build (default: SOURCE/_build/class; the pages go to OUT/html)")
    parser.add_argument("--cache", type=Path, default=None, help="jupyter-cache folder shared with `make book` "
                        "(default: SOURCE/_build/.jupyter_cache)")
    args = parser.parse_args(argv)
    source = args.source.resolve()
    out = (args.out or source / "_build" / "class").resolve()
    cache = (args.cache or source / "_build" / ".jupyter_cache").resolve()

    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(source, out / "html", doctreedir=out / ".doctrees",
                          noconfig=True, path_config=str(source / "_config.yml"),
                          confoverrides=class_overrides(source, cache),
                          warningiserror=True, keep_going=True)
    if result != 0:
        print(f"error: the class build failed ({result}); see the messages above", file=sys.stderr)
        return 1
    print(f"class edition (no solutions): {out / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
