"""A GAN on 2-D points, small enough to train in seconds: the test bench for GAN losses.

The data is a mixture of Gaussians with equal weights and means evenly spaced on a
circle (by default 8 modes on a ring of radius 2: the ring of Metz et al. 2017,
"Unrolled GANs", §3.1). Mode collapse is easy to see and to count there. The two
numbers measured are those of Srivastava et al. 2017 ("VEEGAN", §5.1):

* high-quality samples: the share of generated points within 3 standard
  deviations of the nearest mode's mean;
* modes covered: the modes that receive at least ``min_share`` of all samples
  as high-quality points.

:func:`train_toy_gans` trains MLP generators against MLP discriminators with one of
vqlearn's discriminator losses (``hinge``, ``vanilla``) and one generator loss
(``hinge``: taming's ``-mean(D(G(z)))``; ``non_saturating``; ``minimax``),
alternating one discriminator step and one generator step like VQ-GAN's trainer.
To be cheap on a CPU it trains many independent runs at once: run ``r``'s weights
are slice ``r`` of stacked tensors (:class:`StackedLinear`), and the loss summed over
runs gives each run exactly its own gradient.

Book: chapter "Hinge and vanilla GAN losses".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from vqlearn.losses import hinge_d_loss, hinge_g_loss, minimax_g_loss, non_saturating_g_loss, vanilla_d_loss

D_LOSSES = {"hinge": hinge_d_loss, "vanilla": vanilla_d_loss}
G_LOSSES = {"hinge": hinge_g_loss, "non_saturating": non_saturating_g_loss, "minimax": minimax_g_loss}


def ring_modes(num_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The means ``(num_modes, 2)``, evenly spaced on a circle, the first at angle 0."""
    angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float32) / num_modes
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def sample_ring(shape: tuple[int, ...], generator: torch.Generator, num_modes: int = 8, radius: float = 2.0,
                std: float = 0.1) -> torch.Tensor:
    """Points ``(*shape, 2)`` from the mixture: a uniformly chosen mode plus Gaussian noise of ``std``."""
    which = torch.randint(num_modes, shape, generator=generator)
    return ring_modes(num_modes, radius)[which] + std * torch.randn(*shape, 2, generator=generator)


def mode_stats(samples: torch.Tensor, modes: torch.Tensor, std: float, min_share: float = 0.02) -> dict:
    """Srivastava et al.'s measures of ``samples`` ``(N, 2)`` against the mixture's ``modes`` ``(M, 2)``.

    Returns ``high_quality`` (share of samples within ``3 * std`` of their nearest
    mode), ``counts`` (``(M,)`` high-quality samples per mode) and ``modes_covered``
    (modes whose count is at least ``min_share * N``).
    """
    distance, nearest = torch.cdist(samples, modes).min(dim=1)
    good = distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(modes))
    return {
        "high_quality": float(good.float().mean()),
        "counts": counts,
        "modes_covered": int((counts >= min_share * len(samples)).sum()),
    }


def disc_accuracy(logits_real: torch.Tensor, logits_fake: torch.Tensor, margin: float = 0.0) -> float:
    """Share of points on the right side of ``±margin`` (real > margin, fake < -margin), both halves weighted
    equally. ``margin=0``: the discriminator's accuracy; ``margin=1``: the share of points beyond the hinge
    loss's margin, where :func:`vqlearn.losses.hinge_d_loss` has zero gradient."""
    return 0.5 * (float((logits_real > margin).float().mean()) + float((logits_fake < -margin).float().mean()))


class StackedLinear(nn.Module):
    """``R`` independent linear layers: ``(R, B, in_dim) -> (R, B, out_dim)``, ``y[r] = x[r] @ W[r] + b[r]``.

    Layer ``r`` is initialised like ``nn.Linear`` (uniform in ``±1/sqrt(in_dim)``) from
    ``generators[r]``, so a run's initial weights depend only on its own generator.
    """

    def __init__(self, in_dim: int, out_dim: int, generators: list[torch.Generator]):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        uniform = lambda shape, g: (2 * torch.rand(shape, generator=g) - 1) * bound  # noqa: E731
        self.weight = nn.Parameter(torch.stack([uniform((in_dim, out_dim), g) for g in generators]))
        self.bias = nn.Parameter(torch.stack([uniform((1, out_dim), g) for g in generators]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def stacked_mlp(in_dim: int, hidden: int, out_dim: int, generators: list[torch.Generator],
                depth: int = 2) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with LeakyReLU(0.2): ``R = len(generators)`` MLPs,
    each initialised from its own random-number generator, ``(R, B, in_dim) -> (R, B, out_dim)``."""
    layers, width = [], in_dim
    for _ in range(depth):
        layers += [StackedLinear(width, hidden, generators), nn.LeakyReLU(0.2)]
        width = hidden
    layers.append(StackedLinear(width, out_dim, generators))
    return nn.Sequential(*layers)


@dataclass
class ToyGANConfig:
    """What every run of one :func:`train_toy_gans` call shares. ``lr``, ``betas``: Adam's, for both
    networks (``betas`` are taming's). ``snapshot_steps``: steps after which to keep generated points
    (0 = before training)."""

    steps: int = 2000
    batch_size: int = 256
    latent_dim: int = 8
    hidden: int = 32
    depth: int = 2
    lr: float = 2e-3
    betas: tuple[float, float] = (0.5, 0.9)
    num_modes: int = 8
    radius: float = 2.0
    std: float = 0.1
    eval_every: int = 50
    eval_samples: int = 2000
    min_share: float = 0.02
    snapshot_steps: tuple[int, ...] = ()


@dataclass
class ToyGANRun:
    """One run's result. ``history``: one dict per evaluation, measured on the fixed evaluation
    points: ``step``, the run's ``d_loss`` and ``g_loss``, ``d_accuracy`` and ``beyond_margin``
    (:func:`disc_accuracy` with margin 0 and 1), the mean ``logits_real`` and ``logits_fake``
    (taming's log keys), ``high_quality`` and ``modes_covered`` (:func:`mode_stats`); ``snapshots``: step -> generated points
    ``(eval_samples, 2)``; ``final``: :func:`mode_stats` after the last step."""

    disc_loss: str
    gen_loss: str
    seed: int
    history: list[dict] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    final: dict = field(default_factory=dict)


def summed_loss(losses: dict, names: list[str], *logits: torch.Tensor) -> torch.Tensor:
    """The sum over runs of each run's own loss ``losses[names[r]](*(l[r] for l in logits))``.

    ``logits``: ``(R, B, 1)`` tensors. The vqlearn losses are means over their input, so
    the runs that share a loss go through it in one call on their stacked logits: that
    mean times their number is the sum of their own means (all runs have the same ``B``).
    """
    total = logits[0].new_zeros(())
    for name in sorted(set(names)):
        idx = torch.tensor([r for r, n in enumerate(names) if n == name])
        total = total + len(idx) * losses[name](*(l[idx] for l in logits))
    return total


def train_toy_gans(config: ToyGANConfig, runs: list[tuple[str, str, int]]) -> list[ToyGANRun]:
    """Train one GAN per ``(disc_loss, gen_loss, seed)`` in ``runs``, all at once; returns their results.

    Generators ``(R, B, latent_dim) -> (R, B, 2)``, discriminators ``(R, B, 2) -> (R, B, 1)``.
    Each step: one discriminator step on a real batch and detached ``G(z)``, then one
    generator step on ``G(z')``. A run's initial weights, real batches and latents depend
    only on its seed: a run gives the same result alone or among others, and runs with the
    same seed differ only in their losses. Every
    ``eval_every`` steps each run is measured on the same fixed latents and real points.
    """
    for disc_loss, gen_loss, seed in runs:
        if disc_loss not in D_LOSSES:
            raise ValueError(f"disc_loss must be one of {tuple(D_LOSSES)}, got {disc_loss!r}")
        if gen_loss not in G_LOSSES:
            raise ValueError(f"gen_loss must be one of {tuple(G_LOSSES)}, got {gen_loss!r}")
    d_names, g_names = [r[0] for r in runs], [r[1] for r in runs]
    seeds = sorted({r[2] for r in runs})
    of_run = torch.tensor([seeds.index(r[2]) for r in runs])  # each run's row among the per-seed draws

    def generators(offset):
        return [torch.Generator().manual_seed(offset + seeds[i]) for i in of_run.tolist()]

    G = stacked_mlp(config.latent_dim, config.hidden, 2, generators(0), config.depth)
    D = stacked_mlp(2, config.hidden, 1, generators(1_000), config.depth)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=config.betas)

    data = [torch.Generator().manual_seed(2_000 + seed) for seed in seeds]  # one stream of batches per seed
    modes = ring_modes(config.num_modes, config.radius)

    def real_batch():  # (R, batch_size, 2)
        which = torch.stack([torch.randint(config.num_modes, (config.batch_size,), generator=g) for g in data])
        noise = torch.stack([torch.randn(config.batch_size, 2, generator=g) for g in data])
        return (modes[which] + config.std * noise)[of_run]

    def latent_batch():  # (R, batch_size, latent_dim)
        return torch.stack([torch.randn(config.batch_size, config.latent_dim, generator=g) for g in data])[of_run]

    evaluation = torch.Generator().manual_seed(3_000)
    ring = dict(num_modes=config.num_modes, radius=config.radius, std=config.std)
    real_eval = sample_ring((config.eval_samples,), evaluation, **ring).expand(len(runs), -1, -1)
    z_eval = torch.randn(config.eval_samples, config.latent_dim, generator=evaluation).expand(len(runs), -1, -1)
    results = [ToyGANRun(*run) for run in runs]

    def evaluate(step):
        with torch.no_grad():
            fake = G(z_eval)
            logits_real, logits_fake = D(real_eval), D(fake)
        for r, result in enumerate(results):
            result.final = mode_stats(fake[r], modes, config.std, config.min_share)
            if step in config.snapshot_steps:
                result.snapshots[step] = fake[r]
            if step > 0 and (step % config.eval_every == 0 or step == config.steps):
                result.history.append({
                    "step": step,
                    "d_loss": float(D_LOSSES[d_names[r]](logits_real[r], logits_fake[r])),
                    "g_loss": float(G_LOSSES[g_names[r]](logits_fake[r])),
                    "d_accuracy": disc_accuracy(logits_real[r], logits_fake[r]),
                    "beyond_margin": disc_accuracy(logits_real[r], logits_fake[r], margin=1.0),
                    "logits_real": float(logits_real[r].mean()),
                    "logits_fake": float(logits_fake[r].mean()),
                    "high_quality": result.final["high_quality"],
                    "modes_covered": result.final["modes_covered"],
                })

    evaluate(0)
    for step in range(1, config.steps + 1):
        d_loss = summed_loss(D_LOSSES, d_names, D(real_batch()), D(G(latent_batch()).detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        g_loss = summed_loss(G_LOSSES, g_names, D(G(latent_batch())))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if step % config.eval_every == 0 or step == config.steps or step in config.snapshot_steps:
            evaluate(step)
    return results
