"""Every quantizer kind by name: what the model families build their bottleneck from.

    make_quantizer("vq", 1024, 64)                          # learned codebook (vqlearn.quantize)
    make_quantizer("vq", 1024, 64, rotation_trick=True)     # ... with the rotation trick's gradient
    make_quantizer("ema", 512, 64, decay=0.99)              # EMA codebook
    make_quantizer("fsq", 1000, 64, levels=[8, 5, 5, 5])    # finite scalar quantization
    make_quantizer("lfq", 1024, 64)                         # lookup-free, 10 bits
    make_quantizer("rvq", 256, 64, depth=4)                 # residual VQ, 4 codebooks of 256

This module sits above :mod:`vqlearn.quantize` (the VQ and EMA codebooks, whose
own ``make_codebook`` builds those two), :mod:`vqlearn.scalar_quantize` (FSQ,
LFQ) and :mod:`vqlearn.residual_quantize` (residual VQ), which import the
codebooks, so that no two of them import each other.

Book: chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

import torch.nn as nn

from vqlearn import quantize
from vqlearn.residual_quantize import ResidualVQ
from vqlearn.scalar_quantize import FSQ, FSQ_LEVELS, LFQ

QUANTIZER_KINDS = ("vq", "ema", "fsq", "lfq", "rvq")

# The options each kind takes (beyond num_codes, dim, beta); the config's quantizer keys of that kind.
QUANTIZER_OPTIONS = {
    "vq": ("legacy", "l2_normalize", "lookup_dim", "rotation_trick"),
    "ema": ("decay", "eps", "rotation_trick"),
    "fsq": ("levels",),
    "lfq": ("entropy_weight", "entropy_temperature"),
    "rvq": ("depth", "quantizer_dropout", "level_kind", "legacy", "decay", "eps"),
}

TAMING_OPTIONS = ("remap", "unknown_index", "sane_index_shape")  # VectorQuantizer's, for taming's checkpoints

# Kinds whose codebook is learned (vq, ema, and the levels of rvq): k-means initialisation and
# dead-code restarts apply to them; FSQ and LFQ have a fixed implicit codebook.
LEARNED_CODEBOOK_KINDS = ("vq", "ema", "rvq")


def fsq_levels(num_codes: int, levels=None) -> list[int]:
    """``levels`` if given, else the paper's recommended levels for ``num_codes`` (:data:`FSQ_LEVELS`)."""
    if levels is not None:
        return list(levels)
    if num_codes not in FSQ_LEVELS:
        sizes = ", ".join(f"{k}: {list(v)}" for k, v in FSQ_LEVELS.items())
        raise ValueError(f"FSQ needs `levels` (values per channel; prod(levels) codes): num_codes={num_codes} has "
                         f"no recommended levels; pass levels=[...] or a num_codes of the paper's table ({sizes})")
    return list(FSQ_LEVELS[num_codes])


def lfq_bits(num_codes: int) -> int:
    """``log2(num_codes)``, the bits of an LFQ code; ``num_codes`` must be a power of two."""
    bits = num_codes.bit_length() - 1
    if num_codes < 2 or 2**bits != num_codes:
        raise ValueError(f"LFQ has 2^bits codes, so `num_codes` must be a power of 2 >= 2, got {num_codes}; "
                         f"e.g. {2 ** max(1, bits)} or {2 ** (bits + 1)}")
    return bits


def make_quantizer(kind: str, num_codes: int, dim: int, beta: float = 0.25, **options) -> nn.Module:
    """A quantizer for latents ``(B, dim, h, w)``, by kind; every one returns a :class:`~vqlearn.quantize.Quantized`.

    * ``"vq"``, ``"ema"``: :func:`vqlearn.quantize.make_codebook` (options ``legacy``,
      ``l2_normalize``, ``lookup_dim``, ``rotation_trick``; ``decay``, ``eps``, ``rotation_trick``);
    * ``"fsq"``: :class:`~vqlearn.scalar_quantize.FSQ` with ``levels`` (default: the paper's
      levels for ``num_codes``, which must then be 256, 1024, 4096, 16384 or 65536);
      ``prod(levels)`` codes; ``beta`` is not used (FSQ has no loss);
    * ``"lfq"``: :class:`~vqlearn.scalar_quantize.LFQ` with ``log2(num_codes)`` bits
      (options ``entropy_weight``, ``entropy_temperature``);
    * ``"rvq"``: :class:`~vqlearn.residual_quantize.ResidualVQ`, ``depth`` levels of
      ``num_codes`` codes each (options ``depth``, ``quantizer_dropout``, ``level_kind``
      and the level kind's ``legacy`` / ``decay`` / ``eps``).

    ``num_indices`` of the result is how many values its codes take (per level for ``rvq``).
    """
    if kind not in QUANTIZER_KINDS:
        raise ValueError(f"quantizer kind must be one of {QUANTIZER_KINDS}, got {kind!r}")
    allowed = QUANTIZER_OPTIONS[kind] + (TAMING_OPTIONS if kind == "vq" else ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"a `{kind}` quantizer does not take the option(s) {', '.join(unknown)}; "
                         f"its options are {', '.join(allowed)}")
    if kind in ("vq", "ema"):
        return quantize.make_codebook(kind, num_codes, dim, beta, **options)
    if kind == "fsq":
        return FSQ(fsq_levels(num_codes, options.get("levels")), dim)
    if kind == "lfq":
        return LFQ(lfq_bits(num_codes), dim, beta, **options)
    return ResidualVQ(num_codes, dim, beta=beta, **options)
