"""Chapter 16's self-checks pass vqlearn's functions and the chapter's solutions, and name what is wrong in the
usual mistakes: R applied instead of its transpose, the scale left out or inverted; FSQ code numbers read with the
first channel most significant, or digits not centred."""

import math

import pytest
import torch
import torch.nn.functional as F

from vqlearn.exercises import ExerciseMismatch, check_fsq_codes, check_rotation_gradient
from vqlearn.exercises.chapter16 import reference_fsq_codes, reference_rotation_gradient


def rotation_gradient(z, z_q, g, transposed=True, scale="right"):
    """The chapter's solution, with switches for the usual mistakes."""
    u, q = F.normalize(z, dim=1), F.normalize(z_q, dim=1)
    r = F.normalize(u + q, dim=1)
    ratio = {"right": z_q.norm(dim=1, keepdim=True) / z.norm(dim=1, keepdim=True),
             "inverted": z.norm(dim=1, keepdim=True) / z_q.norm(dim=1, keepdim=True), "none": 1.0}[scale]
    a, b = (u, q) if transposed else (q, u)  # R^T g = g - 2 r (r.g) + 2 u (q.g);  R g = ... + 2 q (u.g)
    return ratio * (g - 2 * r * (r * g).sum(1, keepdim=True) + 2 * a * (b * g).sum(1, keepdim=True))


def fsq_codes(indices, levels, first_most_significant=False, centred=True):
    """The chapter's solution, with switches for the usual mistakes."""
    order = list(reversed(levels)) if first_most_significant else list(levels)
    place = torch.tensor([math.prod(order[:i]) for i in range(len(levels))])
    if first_most_significant:
        place = place.flip(0)
    digits = (indices[..., None] // place) % torch.tensor(levels)
    half = torch.tensor([level // 2 for level in levels])
    return (digits - half) / half if centred else digits / half


@pytest.mark.parametrize("fn", [reference_rotation_gradient, rotation_gradient])
def test_rotation_solutions_pass(fn, capsys):
    assert all(c.ok for c in check_rotation_gradient(fn))
    assert 'Exercise 16.1 (chapter "Quantizers after VQ-GAN")' in capsys.readouterr().out


def failure(check, fn):
    with pytest.raises(ExerciseMismatch) as error:
        check(fn)
    return str(error.value)


@pytest.mark.parametrize("mistake", [
    lambda z, z_q, g: rotation_gradient(z, z_q, g, transposed=False),
    lambda z, z_q, g: rotation_gradient(z, z_q, g, scale="none"),
    lambda z, z_q, g: rotation_gradient(z, z_q, g, scale="inverted"),
    lambda z, z_q, g: g,  # the straight-through estimator's gradient
])
def test_rotation_mistakes_differ(mistake):
    assert "output                 DIFFERS" in failure(check_rotation_gradient, mistake)


@pytest.mark.parametrize("fn", [reference_fsq_codes, fsq_codes])
def test_fsq_solutions_pass(fn, capsys):
    assert all(c.ok for c in check_fsq_codes(fn))
    assert "Exercise 16.2" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", [
    lambda indices, levels: fsq_codes(indices, levels, first_most_significant=True),
    lambda indices, levels: fsq_codes(indices, levels, centred=False),
])
def test_fsq_mistakes_differ(mistake):
    assert "output                 DIFFERS" in failure(check_fsq_codes, mistake)
