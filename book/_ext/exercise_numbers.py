"""Sphinx extension: the book's exercises are numbered by chapter, and the class build drops their solutions.

Numbers. sphinx-exercise numbers exercises through the whole book (the 7th exercise of the book is "Exercise
7"). The book's convention names an exercise by its label instead: ``ex-03-2`` is "Exercise 3.2" (chapter 3,
exercise 2; ``ex-a1-1`` is "Exercise A1.1"), the name the student edition's stub raises and the self-check
prints. After Sphinx has numbered the figures, this sets each exercise's number from its label, so the title,
the "Solution to Exercise 3.2" heading and every ``{numref}`` agree. A label that does not read ex-CC-K is a
warning (so ``--warningiserror`` fails the build).

Class build. With sphinx-exercise's ``hide_solutions = True`` (``make book-class``), sphinx-exercise drops a
``solution`` directive but not what stands between ``solution-start`` and ``solution-end`` (the solution's code
cells and markdown): this extension removes that too, so no solution reaches the pages or the search index.
"""

import re

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node

logger = logging.getLogger(__name__)

LABEL_RE = re.compile(r"^ex-(\d\d|a\d)-(\d+)$")


def number_from_label(label):
    """``ex-03-2`` -> (3, 2); ``ex-a1-1`` -> ("A1", 1); None for any other label."""
    match = LABEL_RE.match(label)
    if match is None:
        return None
    chapter, number = match.groups()
    return (chapter.upper() if chapter.startswith("a") else int(chapter), int(number))


def number_exercises_by_chapter(app, env):
    """Replace sphinx-exercise's book-wide numbers with the chapter.number read from each label."""
    for docname, fignumbers in env.toc_fignumbers.items():
        for label in list(fignumbers.get("exercise", {})):
            number = number_from_label(label)
            if number is None:
                logger.warning(f"exercise label {label!r} does not read ex-CC-K (chapter as two digits or a1, "
                               f"exercise number), e.g. ex-03-2; the exercise keeps sphinx-exercise's number",
                               location=docname)
                continue
            fignumbers["exercise"][label] = number
    return []


class hidden_solution_marker(nodes.Element):
    """Where a gated solution starts in the class build; removed with the solution by RemoveGatedSolutions."""


class ClassSolutionStartDirective(SolutionStartDirective):
    """``solution-start`` that, with hide_solutions, leaves a marker for RemoveGatedSolutions."""

    def run(self):
        result = super().run()
        if self.config.hide_solutions:
            return [hidden_solution_marker(label=self.arguments[0])]
        return result


class RemoveGatedSolutions(SphinxTransform):
    """With hide_solutions, remove each gated solution: the marker, every node after it up to the solution-end,
    and the solution-end."""

    default_priority = 5  # before sphinx-exercise merges gated solutions (10)

    def apply(self):
        if not self.config.hide_solutions:
            return
        for marker in list(self.document.findall(hidden_solution_marker)):
            parent = marker.parent
            start = parent.index(marker)
            end = next((index for index in range(start, len(parent.children))
                        if isinstance(parent.children[index], solution_end_node)), None)
            if end is None:
                logger.warning(f"solution-start {marker['label']}: no solution-end after it in the same section "
                               f"(a heading inside a solution?); the class build cannot hide it",
                               location=marker)
                parent.remove(marker)
                continue
            for child in parent.children[start:end + 1]:
                parent.remove(child)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.add_directive("solution-start", ClassSolutionStartDirective, override=True)
    app.add_node(hidden_solution_marker)
    app.add_transform(RemoveGatedSolutions)
    # After Sphinx's TocTreeCollector has numbered the figures (priority 500).
    app.connect("env-get-updated", number_exercises_by_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
