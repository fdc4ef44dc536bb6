"""The student edition (tools/student_edition.py, `make student`): every solution becomes a stub that raises
NotImplementedError("Exercise C.K: <hint>"), no solution text survives, everything else is unchanged, malformed
chapters are refused, and (slow) every student notebook runs with only the stubs and self-checks raising.

The convention it checks is the README's "Adding an exercise to a chapter".
"""

from __future__ import annotations

import ast
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import student_edition as se  # noqa: E402

BOOK = REPO / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))
# Chapters that end with exercises (the convention): all but the preface.
EXERCISE_CHAPTERS = [path for path in CHAPTERS if se.CHAPTER_PREFIX_RE.match(path.name) and path.name[:2] != "00"]


# ---------------------------------------------------------------------------------------------- a synthetic chapter

def exercise_cell(label: str, title: str, hint: str) -> str:
    return (f"````{{exercise}} {title}\n:label: {label}\n\nWrite it, then run the check below the solution.\n\n"
            f"**Hint.** {hint}\n````")


def solution_start(label: str) -> str:
    return f"```{{solution-start}} {label}\n:class: dropdown\n```"


SOLUTION_END = "```{solution-end}\n```"

DOUBLE_SOLUTION = '''\
class _Doubler:
    """A helper class the solution needs; the stub drops it."""
    factor = 2


def my_double(x, *, scale: float = 1.0):
    """Return 2 * scale * x.

    x: a tensor of any shape (B, D).
    """
    secret_intermediate_value = x * _Doubler.factor
    return secret_intermediate_value * scale
'''


def synthetic_chapter() -> nbformat.NotebookNode:
    """Chapter 03's shape in miniature: prose, code, a coding exercise with a self-check, a question answered
    by a number, and the timing cell."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md("# A synthetic chapter\n\nSome prose with $x^2$ math."),
        code("import time\nchapter_start = time.time()\nvalue = 21"),
        md("## Exercises"),
        md(exercise_cell("ex-03-1", "Doubling", "Multiply by `2`, then by \"scale\" (a keyword-only argument).\n"
                                                 "A second line of the same hint.")),
        md(solution_start("ex-03-1")),
        code(DOUBLE_SOLUTION),
        md("The solution multiplies twice because the helper holds the factor of two."),
        code("print(my_double(3))  # the solution's own demonstration line"),
        md(SOLUTION_END),
        code("assert my_double(5) == 10, 'my_double(5) should be 10'\nprint('check passed')"),
        md(exercise_cell("ex-03-2", "How much is twice the value?", "Use `value` from the first cell.")),
        md(solution_start("ex-03-2")),
        code("answer_to_the_question = 2 * value\nprint(answer_to_the_question)\nassert answer_to_the_question == 42"),
        md("Twice the value is 42, printed by the cell above."),
        md(SOLUTION_END),
        code("print(f'chapter ran in {time.time() - chapter_start:.0f} s')"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="an old output\n")]
            cell.execution_count = 1
            cell.metadata["execution"] = {"iopub.status.busy": "2026-11-29T00:00:00Z"}
    return nb


SYNTHETIC = Path("book/03_synthetic.ipynb")


# ---------------------------------------------------------------------------------------------- checks used below

def cells_text(nb) -> str:
    return "\n".join(se._source(cell) for cell in nb.cells) + json.dumps(nb.metadata)


def stub_message(stub_source: str) -> list[str]:
    """The NotImplementedError messages a stub raises (one per def, then the top-level raise)."""
    messages = []
    for node in ast.walk(ast.parse(stub_source)):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            assert node.exc.func.id == "NotImplementedError"
            messages.append(node.exc.args[0].value)
    return messages


def kept_lines(solution_cells) -> set[int]:
    """(cell, line) positions of the solution that the stub keeps by design: top-level def signatures and their
    docstrings."""
    kept = set()
    for c, cell in enumerate(solution_cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(se._source(cell))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kept.update((c, line) for line in range(node.lineno, node.body[0].lineno))
                if ast.get_docstring(node, clean=False) is not None:
                    kept.update((c, line) for line in range(node.body[0].lineno, node.body[0].end_lineno + 1))
    return kept


def solution_texts(nb, solutions) -> list[str]:
    """Text of the solutions that must not reach the student: code lines of >= 20 characters (not signatures or
    docstrings, which the stub keeps) and markdown sentences of >= 20 characters, leaving out text that also
    appears outside the solutions (an import line the self-check repeats)."""
    inside = {id(cell) for solution in solutions for cell in solution.cells}
    outside = "\n".join(se._source(cell) for cell in nb.cells if id(cell) not in inside)
    texts = []
    for solution in solutions:
        kept = kept_lines(solution.cells)
        for c, cell in enumerate(solution.cells):
            source = se._source(cell)
            if cell.cell_type == "code":
                pieces = [line.strip() for number, line in enumerate(source.splitlines(), 1)
                          if (c, number) not in kept]
            else:
                pieces = [piece.strip() for piece in re.split(r"(?<=[.!?:])\s+|\n", source)]
            texts += [piece for piece in pieces if len(piece) >= 20 and piece not in outside]
    return texts


def check_student_notebook(nb, student, path) -> None:
    """All the fast checks of one chapter and its student edition."""
    exercises, solutions = se.find_exercises(nb, path)
    names = {exercise.label: exercise for exercise in exercises}
    # Every exercise has one stub, raising "Exercise C.K: <hint>" (every def of it, or the bare raise).
    stubs = {cell.id: cell for cell in student.cells if cell.get("id", "").startswith("stub-")}
    assert sorted(stubs) == sorted(f"stub-{label}" for label in names), f"{path}: stubs {sorted(stubs)}"
    for label, exercise in names.items():
        stub = stubs[f"stub-{label}"]
        assert stub.cell_type == "code" and stub.outputs == []
        messages = stub_message(stub.source)
        assert messages, f"{path}: the stub of {label} raises nothing"
        expected = f"Exercise {exercise.name}: {exercise.hint}"
        assert all(message == expected for message in messages), (path, messages, expected)
        assert re.match(r"^Exercise (\d+|A\d)\.\d+: \S", expected)
    # No solution text survives anywhere in the student notebook.
    text = cells_text(student)
    leaked = [piece for piece in solution_texts(nb, solutions) if piece in text]
    assert not leaked, f"{path}: solution text in the student edition: {leaked[:5]}"
    # Every other cell is unchanged apart from outputs (and the run's timing metadata).
    skipped = {index for solution in solutions for index in range(solution.start, solution.end + 1)}
    originals = [cell for index, cell in enumerate(nb.cells) if index not in skipped]
    kept = [cell for cell in student.cells if not cell.get("id", "").startswith("stub-")]
    assert len(kept) == len(originals), f"{path}: {len(kept)} cells kept of {len(originals)}"
    for original, copy in zip(originals, kept):
        assert (copy.cell_type, copy.get("id"), se._source(copy)) == \
               (original.cell_type, original.get("id"), se._source(original)), f"{path}: cell {original.get('id')}"
        assert {k: v for k, v in copy.metadata.items() if k != "execution"} == \
               {k: v for k, v in original.metadata.items() if k != "execution"}
        if copy.cell_type == "code":
            assert copy.outputs == [] and copy.execution_count is None, f"{path}: outputs of {copy.get('id')} kept"
    # The stub stands where the solution-start stood, in the right order.
    student_ids = [cell.get("id") for cell in student.cells]
    for solution in solutions:
        previous = nb.cells[solution.start - 1].get("id")
        assert student_ids[student_ids.index(previous) + 1] == f"stub-{solution.label}"


# ---------------------------------------------------------------------------------------------- the synthetic chapter

def test_synthetic_chapter_student_edition():
    nb = synthetic_chapter()
    student = se.student_notebook(nb, SYNTHETIC)
    check_student_notebook(nb, student, SYNTHETIC)
    stub = next(cell for cell in student.cells if cell.id == "stub-ex-03-1").source
    # The def's signature and docstring are kept, its body and the helper class are not.
    assert "def my_double(x, *, scale: float=1.0):" in stub
    assert "x: a tensor of any shape (B, D)." in stub
    assert "_Doubler" not in stub and "secret_intermediate_value" not in stub
    hint = 'Exercise 3.1: Multiply by `2`, then by "scale" (a keyword-only argument). A second line of the same hint.'
    assert stub_message(stub) == [hint, hint]  # in the def's body, then at the top level: the cell always raises
    assert stub.splitlines()[-1].startswith("raise NotImplementedError('Exercise 3.1:")
    bare = next(cell for cell in student.cells if cell.id == "stub-ex-03-2").source
    assert bare.splitlines()[-1] == "raise NotImplementedError('Exercise 3.2: Use `value` from the first cell.')"
    assert len(student.cells) == len(nb.cells) - 7
    nbformat.validate(student)


def test_the_leak_check_catches_a_leak():
    """The no-solution-text check fails when a solution line is left in a student notebook."""
    nb = synthetic_chapter()
    student = se.student_notebook(nb, SYNTHETIC)
    student.cells[1].source += "\nanswer_to_the_question = 2 * value"
    with pytest.raises(AssertionError, match="solution text in the student edition"):
        check_student_notebook(nb, student, SYNTHETIC)


def test_exercise_names():
    assert se.exercise_name("ex-03-2") == "3.2"
    assert se.exercise_name("ex-14-4") == "14.4"
    assert se.exercise_name("ex-a1-1") == "A1.1"
    with pytest.raises(ValueError, match="ex-CC-K"):
        se.exercise_name("ex-3-2")


def malformed(edit) -> nbformat.NotebookNode:
    nb = synthetic_chapter()
    edit(nb.cells)
    return nb


def set_source(index, source):
    def edit(cells):
        cells[index].source = source
    return edit


@pytest.mark.parametrize("edit, cell, message", [
    (lambda cells: cells.pop(8), 4, "solution-start ex-03-1 has no solution-end before the next exercise"),
    (lambda cells: cells.pop(14), 11, "solution-start ex-03-2 has no solution-end (the notebook ends first)"),
    (set_source(4, solution_start("ex-03-9")), 4, "solution-start ex-03-9 matches no exercise above it"),
    (set_source(11, solution_start("ex-03-1")), 11, "a second solution of ex-03-1"),
    (lambda cells: [cells.pop(11) for _ in range(4)], 10, "exercise ex-03-2 has no gated solution"),
    (lambda cells: cells.pop(4), 7, "solution-end without a solution-start"),
    (set_source(3, exercise_cell("ex-04-1", "Doubling", "x")), 3, "names chapter 04, but the notebook is chapter 03"),
    (set_source(3, exercise_cell("ex-3-1", "Doubling", "x")), 3, "does not read ex-CC-K"),
    (set_source(3, "````{exercise} Doubling\n:label: ex-03-1\n\nNo hint here.\n````"), 3, "0 paragraphs starting"),
    (set_source(3, "````{exercise} Doubling\n\nNo label.\n\n**Hint.** x\n````"), 3, "has no :label:"),
    (set_source(4, solution_start("ex-03-1") + "\nand a sentence after it"), 4, "must hold only the directive"),
])
def test_malformed_chapters_are_refused(edit, cell, message):
    nb = malformed(edit)
    with pytest.raises(se.ConventionError) as error:
        se.student_notebook(nb, SYNTHETIC)
    text = str(error.value)
    assert text.startswith(f"{SYNTHETIC}, cell {cell} (id "), text
    assert message in text, text


def test_a_malformed_chapter_writes_nothing(tmp_path, capsys):
    book, out = tmp_path / "book", tmp_path / "student"
    book.mkdir()
    nbformat.write(synthetic_chapter(), book / "03_synthetic.ipynb")
    nbformat.write(malformed(lambda cells: cells.pop(14)), book / "03_broken.ipynb")
    assert se.main(["--book", str(book), "--out", str(out)]) == 1
    assert not out.exists()
    assert "03_broken.ipynb, cell 11" in capsys.readouterr().err


def test_command_writes_the_edition(tmp_path, capsys):
    book, out = tmp_path / "book", tmp_path / "student"
    book.mkdir()
    nbformat.write(synthetic_chapter(), book / "03_synthetic.ipynb")
    (out / "stale").mkdir(parents=True)
    assert se.main(["--book", str(book), "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["03_synthetic.ipynb", "README.md"]
    assert "wrote 1 notebooks with 2 exercise stubs" in capsys.readouterr().out


def run_notebook(path: Path) -> nbformat.NotebookNode:
    """Execute a notebook in its folder, errors allowed (every cell runs), and return it executed."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def raised_only_in_stubs(nb, path) -> list[str]:
    """Problems with an executed student notebook: a cell that raised other than a stub or the self-check after
    it (which must raise the stub's NotImplementedError, naming its exercise), a stub that did not raise, a cell
    that did not run."""
    problems = []
    stub_name = None  # "Exercise 3.2" of the stub just above
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [output for output in cell.outputs if output.output_type == "error"]
        is_stub = cell.get("id", "").startswith("stub-")
        if is_stub:
            stub_name = "Exercise " + se.exercise_name(cell.id[len("stub-"):])
            if not errors:
                problems.append(f"{path} cell {index}: the stub of {stub_name} did not raise")
        if cell.execution_count is None:
            problems.append(f"{path} cell {index} ({cell.get('id')}) did not run")
        for error in errors:
            if stub_name is None:
                problems.append(f"{path} cell {index} ({cell.get('id')}) raised {error.ename}: {error.evalue[:200]}")
            elif error.ename != "NotImplementedError" or not error.evalue.startswith(stub_name + ":"):
                problems.append(f"{path} cell {index} ({cell.get('id')}), after the stub of {stub_name}, raised "
                                f"{error.ename}: {error.evalue[:200]}")
        if not is_stub:
            stub_name = None  # only the code cell right after a stub may raise its error
    return problems


def test_synthetic_student_notebook_runs(tmp_path, monkeypatch):
    """The stub raises its exercise's NotImplementedError, the self-check cell after it too, the rest runs."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = tmp_path / "03_synthetic.ipynb"
    nbformat.write(se.student_notebook(synthetic_chapter(), SYNTHETIC), path)
    nb = run_notebook(path)
    assert raised_only_in_stubs(nb, path) == []
    errors = [(cell.id, output.ename, output.evalue) for cell in nb.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert [(ident, ename) for ident, ename, _ in errors] == [
        ("stub-ex-03-1", "NotImplementedError"), (nb.cells[5].id, "NotImplementedError"),
        ("stub-ex-03-2", "NotImplementedError")]
    assert errors[0][2].startswith("Exercise 3.1: Multiply by `2`") and errors[1][2] == errors[0][2]
    assert "chapter ran in" in nb.cells[-1].outputs[0].text
    # ... and the checker itself notices a cell that raised something else.
    nb.cells[1].outputs.append(nbformat.v4.new_output("error", ename="NameError", evalue="name 'x' is not defined",
                                                      traceback=[]))
    assert raised_only_in_stubs(nb, path) == [f"{path} cell 1 ({nb.cells[1].id}) raised NameError: name 'x' is not "
                                              f"defined"]


# ---------------------------------------------------------------------------------------------- every chapter

@pytest.mark.parametrize("path", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_student_edition(path):
    nb = nbformat.read(path, as_version=4)
    check_student_notebook(nb, se.student_notebook(nb, path), path.relative_to(REPO))


@pytest.mark.parametrize("path", EXERCISE_CHAPTERS, ids=[path.stem for path in EXERCISE_CHAPTERS])
def test_chapter_has_exercises(path):
    """2-4 exercises, at least one of them a coding exercise: its solution defines a top-level function and the
    code cell right after the solution-end calls it (the self-check)."""
    nb = nbformat.read(path, as_version=4)
    exercises, solutions = se.find_exercises(nb, path)
    assert 2 <= len(exercises) <= 4, f"{path.name}: {len(exercises)} exercises ({[e.label for e in exercises]})"
    coding = []
    for solution in solutions:
        defs = {node.name for cell in solution.cells if cell.cell_type == "code"
                for node in ast.parse(se._source(cell)).body if isinstance(node, ast.FunctionDef)}
        after = nb.cells[solution.end + 1] if solution.end + 1 < len(nb.cells) else None
        if defs and after is not None and after.cell_type == "code" and \
                any(re.search(rf"\b{name}\b", se._source(after)) for name in defs):
            coding.append(solution.label)
    assert coding, f"{path.name}: no coding exercise with a self-check cell after its solution"


@pytest.mark.slow
def test_student_chapters_run(tmp_path, monkeypatch):
    """Every chapter of the student edition runs (2 at a time) with only the stubs and self-checks raising,
    each with its exercise's NotImplementedError."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    written = se.write_student_edition(BOOK, tmp_path / "student")
    with ThreadPoolExecutor(max_workers=2) as pool:
        executed = list(pool.map(run_notebook, written))
    problems = [problem for path, nb in zip(written, executed) for problem in raised_only_in_stubs(nb, path.name)]
    assert not problems, "\n".join(problems)
