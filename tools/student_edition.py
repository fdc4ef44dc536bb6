"""Write the student edition of the book: the chapters with every solution replaced by a stub.

    python tools/student_edition.py            # book/*.ipynb -> student/*.ipynb  (what `make student` runs)
    python tools/student_edition.py --book book --out /tmp/student

What changes, per chapter (the exercise convention: README, "Adding an exercise to a chapter"):

- each gated solution -- the markdown cell ```{solution-start} ex-CC-K```, every cell after it, and the markdown
  cell ```{solution-end}``` -- becomes ONE code cell, the stub. The stub keeps every top-level ``def`` of the
  solution's code (signature and docstring) with the body ``raise NotImplementedError("Exercise C.K: <hint>")``,
  where <hint> is the exercise's ``**Hint.**`` paragraph; a solution without a top-level def becomes that one
  ``raise``;
- every cell's outputs and execution count are cleared (and the run's timing metadata and saved widget state);
- everything else is unchanged, so the self-check cell below each coding exercise raises the stub's
  NotImplementedError until the student writes the function.

The chapters find their data and configs through the installed package (``Path(vqlearn.__file__)``), so the
student notebooks run from any folder in an environment where ``vqlearn`` is installed (``pip install -e .``).

Malformed chapters are refused with an error naming the notebook and the cell (:class:`ConventionError`).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# ```{exercise} Title   or   :::{exercise} Title   (any fence of 3+ backticks or colons)
EXERCISE_RE = re.compile(r"^(`{3,}|:{3,})\{exercise\}", re.MULTILINE)
LABEL_RE = re.compile(r"^:label:\s*(\S+)\s*$", re.MULTILINE)
SOLUTION_START_RE = re.compile(r"^(`{3,}|:{3,})\{solution-start\}[ \t]*(\S*)")
SOLUTION_END_RE = re.compile(r"^(`{3,}|:{3,})\{solution-end\}")
HINT_RE = re.compile(r"^\*\*Hint\.\*\*[ \t]*(.*(?:\n(?![ \t]*\n)(?![ \t]*(?:`{3,}|:{3,})[ \t]*$).*)*)", re.MULTILINE)
# ex-03-2 (chapter 03, exercise 2), ex-a1-1 (appendix a1, exercise 1)
EXERCISE_LABEL_RE = re.compile(r"^ex-(\d\d|a\d)-(\d+)$")
CHAPTER_PREFIX_RE = re.compile(r"^(\d\d|a\d)_")


class ConventionError(ValueError):
    """A chapter does not follow the exercise convention; the message names the notebook and the cell."""


@dataclass
class Exercise:
    label: str  # ex-03-2
    name: str  # 3.2, the name the stub and the HTML use ("Exercise 3.2")
    hint: str  # the **Hint.** paragraph, as one line
    cell: int  # index of the exercise's markdown cell in the notebook


@dataclass
class Solution:
    label: str
    start: int  # index of the solution-start cell
    end: int  # index of the solution-end cell
    cells: list = field(default_factory=list)  # the cells strictly between start and end


def exercise_name(label: str) -> str:
    """``ex-03-2`` -> ``3.2``; ``ex-a1-1`` -> ``A1.1``; raise ValueError for any other label."""
    match = EXERCISE_LABEL_RE.match(label)
    if match is None:
        raise ValueError(f"exercise label {label!r} does not read ex-CC-K (chapter CC as two digits or a1, "
                         f"exercise K), e.g. ex-03-2")
    chapter, number = match.groups()
    chapter = chapter.upper() if chapter.startswith("a") else str(int(chapter))
    return f"{chapter}.{int(number)}"


def _where(path: Path | str, index: int, cell) -> str:
    return f"{path}, cell {index} (id {cell.get('id', '?')})"


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def find_exercises(nb, path: Path | str) -> tuple[list[Exercise], list[Solution]]:
    """The exercises and gated solutions of a notebook, in order, checked against the convention.

    Raises ConventionError (naming ``path`` and the cell) for: a solution-start without a solution-end (or one
    that is not alone in its cell), a solution-end without a start, a solution whose label is not the label
    of an exercise above it, an exercise without a label of the form ex-CC-K of this chapter, an exercise
    without exactly one ``**Hint.**`` paragraph, and an exercise without a solution.
    """
    chapter = CHAPTER_PREFIX_RE.match(Path(path).name)
    exercises: dict[str, Exercise] = {}
    solutions: list[Solution] = []
    open_solution: Solution | None = None
    for index, cell in enumerate(nb.cells):
        text = _source(cell).strip()
        if cell.cell_type != "markdown":
            if open_solution is not None:
                open_solution.cells.append(cell)
            continue
        start = SOLUTION_START_RE.match(text)
        if start:
            if open_solution is not None:
                raise ConventionError(f"{_where(path, open_solution.start, nb.cells[open_solution.start])}: "
                                      f"solution-start {open_solution.label} has no solution-end before the next "
                                      f"solution-start (cell {index}); add a markdown cell ```{{solution-end}}```")
            fence, label = start.groups()
            lines = text.splitlines()
            if not label:
                raise ConventionError(f"{_where(path, index, cell)}: solution-start names no exercise; "
                                      f"write ```{{solution-start}} ex-CC-K```")
            if lines[-1].strip() != fence or any(not line.startswith(":") for line in lines[1:-1]):
                raise ConventionError(f"{_where(path, index, cell)}: the solution-start cell of {label} must hold "
                                      f"only the directive (```{{solution-start}} {label}```, :class: dropdown, ```); "
                                      f"move the rest into a cell of its own")
            if label not in exercises:
                known = ", ".join(exercises) or "none"
                raise ConventionError(f"{_where(path, index, cell)}: solution-start {label} matches no exercise above "
                                      f"it (exercise labels so far: {known}); use the :label: of its exercise")
            if any(solution.label == label for solution in solutions):
                raise ConventionError(f"{_where(path, index, cell)}: a second solution of {label}; "
                                      f"an exercise has one gated solution")
            open_solution = Solution(label, start=index, end=-1)
            continue
        if SOLUTION_END_RE.match(text):
            if open_solution is None:
                raise ConventionError(f"{_where(path, index, cell)}: solution-end without a solution-start above it")
            open_solution.end = index
            solutions.append(open_solution)
            open_solution = None
            continue
        if open_solution is not None:
            if EXERCISE_RE.search(text):
                raise ConventionError(f"{_where(path, open_solution.start, nb.cells[open_solution.start])}: "
                                      f"solution-start {open_solution.label} has no solution-end before the next "
                                      f"exercise (cell {index}); add a markdown cell ```{{solution-end}}```")
            open_solution.cells.append(cell)
            continue
        if EXERCISE_RE.search(text):
            exercise = _parse_exercise(text, path, index, cell, chapter.group(1) if chapter else None)
            if exercise.label in exercises:
                raise ConventionError(f"{_where(path, index, cell)}: exercise label {exercise.label} is used twice")
            exercises[exercise.label] = exercise
    if open_solution is not None:
        raise ConventionError(f"{_where(path, open_solution.start, nb.cells[open_solution.start])}: "
                              f"solution-start {open_solution.label} has no solution-end (the notebook ends first); "
                              f"add a markdown cell ```{{solution-end}}``` after the solution")
    solved = {solution.label for solution in solutions}
    for exercise in exercises.values():
        if exercise.label not in solved:
            raise ConventionError(f"{_where(path, exercise.cell, nb.cells[exercise.cell])}: exercise {exercise.label} "
                                  f"has no gated solution (```{{solution-start}} {exercise.label}``` ... "
                                  f"```{{solution-end}}```)")
    return list(exercises.values()), solutions


def _parse_exercise(text: str, path, index: int, cell, chapter: str | None) -> Exercise:
    label = LABEL_RE.search(text)
    if label is None:
        raise ConventionError(f"{_where(path, index, cell)}: the exercise has no :label: (ex-CC-K, e.g. ex-03-2)")
    label = label.group(1)
    try:
        name = exercise_name(label)
    except ValueError as error:
        raise ConventionError(f"{_where(path, index, cell)}: {error}") from None
    if chapter is not None and EXERCISE_LABEL_RE.match(label).group(1) != chapter:
        raise ConventionError(f"{_where(path, index, cell)}: exercise label {label} names chapter "
                              f"{EXERCISE_LABEL_RE.match(label).group(1)}, but the notebook is chapter {chapter}; "
                              f"use ex-{chapter}-K")
    hints = HINT_RE.findall(text)
    if len(hints) != 1:
        raise ConventionError(f"{_where(path, index, cell)}: exercise {label} has {len(hints)} paragraphs starting "
                              f"with **Hint.**; write exactly one (the student edition's stub quotes it)")
    hint = " ".join(line.strip() for line in hints[0].splitlines()).strip()
    if not hint:
        raise ConventionError(f"{_where(path, index, cell)}: exercise {label}'s **Hint.** paragraph is empty")
    return Exercise(label, name, hint, index)


def make_stub(exercise: Exercise, solution_cells) -> str:
    """The stub's source: each top-level def of the solution's code cells, signature and docstring kept, body
    ``raise NotImplementedError("Exercise C.K: <hint>")``, then that raise at the top level."""
    message = f"Exercise {exercise.name}: {exercise.hint}"
    raise_node = ast.Raise(exc=ast.Call(func=ast.Name("NotImplementedError", ast.Load()),
                                        args=[ast.Constant(message)], keywords=[]), cause=None)
    defs = []
    for cell in solution_cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:  # IPython magics: such a cell defines nothing the stub keeps
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = [raise_node]
                docstring = ast.get_docstring(node, clean=False)
                if docstring is not None:
                    body = [ast.Expr(ast.Constant(docstring)), raise_node]
                stub = copy.copy(node)
                stub.body, stub.decorator_list = body, []
                defs.append(ast.unparse(ast.fix_missing_locations(stub)))
    header = (f"# Exercise {exercise.name}: the student edition replaced the solution by this stub. "
              f"Write your answer here.\n")
    # The cell itself always ends with the raise, so every stub stops the run with its exercise's name, also
    # when nothing calls its defs (a worked answer that defined a helper).
    return header + "".join(d + "\n\n\n" for d in defs) + ast.unparse(raise_node)


def student_notebook(nb, path: Path | str):
    """A new notebook: ``nb`` with each gated solution replaced by its stub and every output cleared."""
    exercises, solutions = find_exercises(nb, path)
    by_label = {exercise.label: exercise for exercise in exercises}
    starts = {solution.start: solution for solution in solutions}
    out = nbformat.v4.new_notebook(metadata={key: value for key, value in nb.metadata.items() if key != "widgets"})
    out.nbformat, out.nbformat_minor = nb.nbformat, nb.nbformat_minor
    index = 0
    while index < len(nb.cells):
        if index in starts:
            solution = starts[index]
            stub = nbformat.v4.new_code_cell(make_stub(by_label[solution.label], solution.cells))
            stub.id = f"stub-{solution.label}"
            stub.metadata = {"tags": ["student-stub"]}
            out.cells.append(stub)
            index = solution.end + 1
            continue
        cell = nbformat.from_dict(dict(nb.cells[index]))
        cell.metadata = nbformat.from_dict({key: value for key, value in cell.metadata.items() if key != "execution"})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        out.cells.append(cell)
        index += 1
    return out


def write_student_edition(book: Path, out: Path) -> list[Path]:
    """Write ``out``/<chapter>.ipynb for every ``book``/*.ipynb; return the written paths.

    Every chapter is checked before anything is written, so a malformed chapter leaves ``out`` untouched.
    """
    book, out = Path(book), Path(out)
    chapters = sorted(book.glob("*.ipynb"))
    if not chapters:
        raise ConventionError(f"no notebooks in {book}; pass the folder that holds the chapters (--book)")
    editions = [(chapter, student_notebook(nbformat.read(chapter, as_version=4), chapter)) for chapter in chapters]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for chapter, nb in editions:
        nbformat.validate(nb)
        nbformat.write(nb, out / chapter.name)
        written.append(out / chapter.name)
    (out / "README.md").write_text(STUDENT_README)
    return written


STUDENT_README = """\
# vqlearn: the student edition

Each exercise's solution is replaced by a stub cell that raises `NotImplementedError("Exercise C.K: <hint>")`.
Replace the `raise` with your code and run the cell below it: for a coding exercise it compares your function with
vqlearn's on random inputs and says exactly what differs.

Run the notebooks in an environment where the vqlearn package is installed (from the repository:
`pip install -r requirements.txt && pip install -e .`); they find their data and configs through the package, so
any working folder will do.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book", type=Path, default=Path("book"), help="folder of the chapters (default: book)")
    parser.add_argument("--out", type=Path, default=Path("student"), help="folder to write (default: student; "
                        "replaced)")
    args = parser.parse_args(argv)
    try:
        written = write_student_edition(args.book, args.out)
    except ConventionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    stubs = sum(cell.get("id", "").startswith("stub-") for path in written
                for cell in nbformat.read(path, as_version=4).cells)
    print(f"wrote {len(written)} notebooks with {stubs} exercise stubs to {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
