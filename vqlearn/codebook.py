"""Codebook tools: usage statistics, data initialisation, dead-code restarts.

A codebook *collapses* when only a few of its K codes are ever chosen; the
rest receive no gradient (or no EMA update) and stay where they started.
This module measures that and offers the remedies of chapter 4:

* :class:`CodebookUsage` -- the histogram of chosen codes over a whole pass,
  and :func:`codebook_metrics`, the numbers the trainer logs and evaluation reports;
* :func:`init_codebook_from_data` -- start every code on an encoder output
  (random samples, or k-means; Lancucki et al. 2020);
* :func:`restart_dead_codes` -- move codes that went unused onto recent encoder
  outputs;
* :class:`QuantizerInputs` -- forward pre-hooks that keep each quantizer's
  input (the encoder output these tools need) while capturing.

They work with any quantizer of :mod:`vqlearn.quantize`, inside any model.
Random draws take a ``torch.Generator`` on the vectors' device, so a seeded run
draws the same numbers on CPU and on CUDA every time. Under
DistributedDataParallel, rank 0's draws are broadcast so codebooks stay identical.

Book: chapter "Codebook and commitment losses".
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
import torch.nn as nn

from vqlearn.quantize import EMAVectorQuantizer, VectorQuantizer, nearest_code
from vqlearn.runtime import is_distributed

INIT_METHODS = ("kmeans", "samples")  # how init_codebook_from_data places the codes

# ---------------------------------------------------------------------------
# Codebook statistics over a whole pass
# ---------------------------------------------------------------------------


class CodebookUsage:
    """Histogram of code indices accumulated over many batches, on the codes' device.

    ``update(indices)`` after each batch; then ``fraction_used`` (distinct codes
    seen / K) and ``perplexity`` describe the whole pass, not one batch --
    per-batch numbers understate usage when a batch holds fewer vectors than K.

    ``counts: (K,)`` int64 lives on ``device``, or on the device of the first
    codes it sees, and ``update`` never waits for the device: only reading
    ``codes_used``, ``fraction_used`` or ``perplexity`` copies to the host.
    Under DDP call :meth:`all_reduce` before reading.

    ``num_codes``: how many index values the codes take, a quantizer's
    ``num_indices`` (its ``num_codes`` unless a ``remap`` compacts the indices).
    """

    def __init__(self, num_codes: int, device: str | torch.device = "cpu"):
        self.num_codes = num_codes
        self.counts = torch.zeros(num_codes, dtype=torch.long, device=device)

    def update(self, indices: torch.Tensor) -> None:
        """Add ``indices`` (any shape, values in ``[0, K)``) to the histogram."""
        if self.counts.device != indices.device:
            self.counts = self.counts.to(indices.device)
        # scatter_add_, not bincount: CUDA bincount reads min and max on the host to size its output.
        indices = indices.reshape(-1).long()
        self.counts.scatter_add_(0, indices, torch.ones_like(indices))

    def reset(self) -> None:
        self.counts.zero_()

    def all_reduce(self) -> None:
        """Sum the histogram over ranks (nccl reduces on the GPU, gloo on the CPU)."""
        if is_distributed():
            device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            counts = self.counts.to(device)
            dist.all_reduce(counts)
            self.counts = counts.to(self.counts.device)

    @property
    def codes_used(self) -> int:
        return int((self.counts > 0).sum())

    @property
    def fraction_used(self) -> float:
        return self.codes_used / self.num_codes

    @property
    def perplexity(self) -> float:
        """``exp(entropy)`` of the histogram: 1 if one code is used, K if all are used equally."""
        probs = self.counts.double() / self.counts.sum().clamp(min=1)
        return float(torch.exp(-(probs * torch.log(probs + 1e-12)).sum()))


def level_names(levels: int, bottleneck: str = "") -> list[str]:
    """Metric-name suffixes of one bottleneck's ``levels`` codebooks: ``[bottleneck]`` for one codebook, else
    ``[bottleneck + "_0", bottleneck + "_1", ...]`` (a residual quantizer's levels). ``bottleneck``: ``""`` for
    a model with one bottleneck, ``"_top"`` / ``"_bottom"`` for VQ-VAE-2's."""
    return [bottleneck] if levels == 1 else [f"{bottleneck}_{i}" for i in range(levels)]


def codebook_metrics(usage: list[CodebookUsage], names: list[str], prefix: str = "") -> dict:
    """``{prefix}codebook_usage``, ``codes_used`` and ``perplexity`` for each level (one
    :class:`CodebookUsage` per quantizer), suffixed by ``names`` (a model's ``level_names``,
    see :func:`level_names`); with several levels also the mean ``codebook_usage`` and
    ``perplexity`` under the plain names.

    Reads the histograms as they are: under DDP call ``all_reduce`` on each first.
    """
    result = {}
    for name, acc in zip(names, usage, strict=True):
        result[f"{prefix}codebook_usage{name}"] = acc.fraction_used
        result[f"{prefix}codes_used{name}"] = acc.codes_used
        result[f"{prefix}perplexity{name}"] = acc.perplexity
    if len(usage) > 1:
        result[f"{prefix}codebook_usage"] = sum(acc.fraction_used for acc in usage) / len(usage)
        result[f"{prefix}perplexity"] = sum(acc.perplexity for acc in usage) / len(usage)
    return result


# ---------------------------------------------------------------------------
# The quantizers' inputs: what initialisation and restarts draw from
# ---------------------------------------------------------------------------


class QuantizerInputs:
    """Forward pre-hooks that keep each quantizer's input while capturing.

    ``captured[i]`` is quantizer ``i``'s latest input ``(B, C, h, w)`` (the
    encoder output, detached), or ``None`` if none was captured since
    :meth:`clear`. Outside :meth:`capture` the hooks do nothing.

        inputs = QuantizerInputs(model.quantizers)
        with inputs.capture():
            model(x)
        z = inputs.captured[0]
        inputs.remove()   # the model is left with no hooks
    """

    def __init__(self, quantizers: list[nn.Module]):
        self.captured: list[torch.Tensor | None] = [None] * len(quantizers)
        self.capturing = False
        self.handles = [q.register_forward_pre_hook(self._hook(i)) for i, q in enumerate(quantizers)]

    def _hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if self.capturing:
                self.captured[index] = inputs[0].detach()

        return hook

    @contextmanager
    def capture(self, enabled: bool = True) -> Iterator[list[torch.Tensor | None]]:
        """Capture the quantizers' inputs in the enclosed block (if ``enabled``); yields ``captured``."""
        self.capturing = enabled
        try:
            yield self.captured
        finally:
            self.capturing = False

    def clear(self) -> None:
        self.captured[:] = [None] * len(self.captured)

    def remove(self) -> None:
        """Remove the hooks and drop what was captured."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.clear()


# ---------------------------------------------------------------------------
# Anti-collapse tools
# ---------------------------------------------------------------------------


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is not None and generator.device.type != device.type:
        raise ValueError(
            f"`generator` is on {generator.device} but the vectors are on {device}; "
            f"pass torch.Generator(device={str(device)!r}).manual_seed(seed)"
        )


def _check_learned_codebook(quantizer: nn.Module, what: str) -> None:
    """FSQ and LFQ have a fixed implicit codebook, and a ResidualVQ is several: refuse them by name."""
    if not hasattr(quantizer, "replace_codes"):
        raise ValueError(f"{what} needs a learned codebook (a VectorQuantizer, an EMAVectorQuantizer, or one level "
                         f"of a ResidualVQ, rvq.quantizers[i]), got a {type(quantizer).__name__}")


def _broadcast_from_rank0(tensor: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def kmeans_plus_plus(vectors: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``(N, D) -> (k, D)``.

    Each new center is drawn with probability proportional to the squared
    distance to the nearest center so far, so the seeds spread over the data.
    ``generator``: on ``vectors``' device (``None``: that device's default generator).
    """
    _check_generator(generator, vectors.device)
    first = torch.randint(0, len(vectors), (1,), generator=generator, device=vectors.device)
    centers = [vectors[first]]
    closest = ((vectors - centers[0]) ** 2).sum(1)  # (N,) squared distance to nearest center
    for _ in range(1, k):
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)
        pick = torch.multinomial(weights, 1, generator=generator)
        centers.append(vectors[pick])
        closest = torch.minimum(closest, ((vectors - centers[-1]) ** 2).sum(1))
    return torch.cat(centers)


def kmeans(vectors: torch.Tensor, k: int, iters: int = 10, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means from k-means++ seeds: ``vectors (N, D) -> centers (k, D)``, float32.

    Needs ``N >= k``; an empty cluster keeps its previous center.
    ``generator``: on ``vectors``' device.
    """
    vectors = vectors.float()
    if len(vectors) < k:
        raise ValueError(f"k-means needs at least k={k} vectors to start from, got {len(vectors)}; pass more data")
    centers = kmeans_plus_plus(vectors, k, generator)
    for _ in range(iters):
        assign = nearest_code(vectors, centers)
        sums = torch.zeros_like(centers).index_add_(0, assign, vectors)
        counts = torch.bincount(assign, minlength=k).float()
        nonempty = counts > 0
        centers[nonempty] = sums[nonempty] / counts[nonempty, None]
    return centers


@torch.no_grad()
def init_codebook_from_data(
    quantizer: VectorQuantizer | EMAVectorQuantizer,
    z: torch.Tensor,
    method: str = "kmeans",
    iters: int = 10,
    generator: torch.Generator | None = None,
) -> None:
    """Initialise every code from encoder outputs ``z (B, C, h, w)``.

    ``method="samples"`` copies K random encoder vectors; ``"kmeans"`` runs k-means
    on them (Lancucki et al. 2020). Codes then start where the data is, so none
    begins dead. ``generator``: on ``z``'s device. Under DDP rank 0's result is broadcast.
    """
    if method not in INIT_METHODS:
        raise ValueError(f"method must be one of {INIT_METHODS}, got {method!r}")
    _check_learned_codebook(quantizer, "init_codebook_from_data")
    _check_generator(generator, z.device)
    vectors = quantizer.to_lookup_space(z).float()
    k = quantizer.codebook.shape[0]
    if len(vectors) < k:
        raise ValueError(
            f"init_codebook_from_data needs at least num_codes={k} encoder vectors (one per code), "
            f"got {len(vectors)} (from z of shape {tuple(z.shape)}); pass a larger batch"
        )
    if method == "samples":
        centers = vectors[torch.randperm(len(vectors), generator=generator, device=vectors.device)[:k]]
    else:
        centers = kmeans(vectors, k, iters, generator)
    centers = _broadcast_from_rank0(centers.to(quantizer.codebook.device).contiguous())
    quantizer.replace_codes(torch.arange(k, device=centers.device), centers)


@torch.no_grad()
def restart_dead_codes(
    quantizer: VectorQuantizer | EMAVectorQuantizer,
    z: torch.Tensor,
    counts: torch.Tensor,
    min_count: int = 1,
    generator: torch.Generator | None = None,
) -> int:
    """Move codes used fewer than ``min_count`` times onto random encoder vectors.

    ``z: (B, C, h, w)`` a recent batch of encoder outputs, ``counts: (K,)`` how
    often each code was chosen since the last restart (e.g. ``CodebookUsage.counts``,
    summed over ranks). ``generator``: on ``z``'s device. Returns the number of
    codes restarted. Under DDP rank 0's choice of replacement vectors is
    broadcast, so codebooks stay identical.
    """
    _check_generator(generator, z.device)
    _check_learned_codebook(quantizer, "restart_dead_codes")
    dead = torch.nonzero(counts < min_count).flatten()
    if len(dead) == 0:
        return 0
    vectors = quantizer.to_lookup_space(z).float()
    picks = torch.randint(0, len(vectors), (len(dead),), generator=generator, device=vectors.device)
    replacement = _broadcast_from_rank0(vectors[picks].contiguous())
    quantizer.replace_codes(dead.to(replacement.device), replacement)
    return len(dead)
