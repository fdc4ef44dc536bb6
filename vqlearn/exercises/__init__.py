"""The self-checks behind the book's exercises: a generic comparer (:mod:`vqlearn.exercises.core`) and one
checker per coding exercise, in one module per chapter (``chapter03.py`` holds chapter 3's).

A checker takes the reader's function, compares it with vqlearn's on random inputs, prints what agrees and
what differs, and raises :class:`ExerciseMismatch` on a difference.

Book: every chapter's "Exercises" section.
"""

from vqlearn.exercises.core import Comparison, ExerciseMismatch, check_function, compare

# One import line per chapter module, added by that chapter's author:
