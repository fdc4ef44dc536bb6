"""The package's imports respect its layers (vqlearn.layering.LAYERS) and form no cycle, and every
"Book: chapter ..." backlink in a docstring names a chapter of the book (or says it is planned)."""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from vqlearn.layering import import_cycles, module_imports, unplaced_modules, upward_imports

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    return module_imports()


def test_no_import_cycles(graph):
    assert import_cycles(graph) == []


def test_no_upward_imports(graph):
    assert upward_imports(graph) == []


def test_every_module_has_a_layer(graph):
    assert unplaced_modules(graph) == []


def test_evaluate_never_imports_train(graph):
    assert "train" not in graph["evaluate"]


def write_package(root: Path, sources: dict[str, str]) -> Path:
    package = root / "vqlearn"
    for name, source in sources.items():
        path = package / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


def test_the_checks_find_a_cycle_hidden_in_a_function_and_an_upward_import(tmp_path):
    """The same checks on a made-up package with the faults the old train <-> evaluate pair had."""
    package = write_package(tmp_path, {
        "__init__": "",
        "blocks": "from vqlearn.models import VQVAE\n",  # foundations importing a model: upward
        "models.__init__": "from vqlearn.models.vqvae import VQVAE\n",
        "models.vqvae": "import torch\n",
        "train": "from vqlearn.evaluate import evaluate_model\n",
        "evaluate": "def main():\n    from vqlearn.train import load_model\n",  # the cycle, inside a function
    })
    graph = module_imports(package)
    assert graph["models"] == {"models.vqvae"} and graph["evaluate"] == {"train"}
    assert import_cycles(graph) == [["evaluate", "train"]]
    assert upward_imports(graph) == [("blocks", "models")]


def chapter_titles() -> set[str]:
    """The first heading of every chapter listed in _toc.yml."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    titles = set()
    for file in files:
        path = REPO / f"{file}.ipynb"
        if not path.is_file():
            continue
        for cell in json.loads(path.read_text())["cells"]:
            heading = re.search(r"^# (.+)$", "".join(cell["source"]), re.M)
            if cell["cell_type"] == "markdown" and heading:
                titles.add(heading.group(1).strip())
                break
    return titles


def backlinks() -> list[tuple[str, str, bool]]:
    """``(module, chapter, planned)`` for each ``chapter "..."`` in a docstring's "Book:" paragraph."""
    found = []
    for path in sorted((REPO / "vqlearn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                doc = ast.get_docstring(node) or ""
                for paragraph in re.findall(r"Book:(.*?)(?:\n\s*\n|$)", doc, re.S):
                    for name, planned in re.findall(r'chapters? "([^"]+)"( \(planned\))?', paragraph):
                        found.append((path.name, name, bool(planned)))
    return found


def test_book_backlinks_name_real_chapters():
    titles = chapter_titles()
    links = backlinks()
    assert len(links) > 10 and "Training a VQ-VAE" in titles
    wrong = [(module, name) for module, name, planned in links if not planned and name not in titles]
    assert wrong == [], f"no such chapter in _toc.yml (add ' (planned)' if it is to come): {wrong}"
    stale = [(module, name) for module, name, planned in links if planned and name in titles]
    assert stale == [], f"these chapters exist now: drop ' (planned)': {stale}"
