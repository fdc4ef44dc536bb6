"""Vector quantizers: nearest-code lookup, the straight-through estimator, VQ and EMA codebooks.

The VQ bottleneck replaces each encoder vector ``z_e`` with its nearest
codebook entry ``e_k`` (van den Oord et al. 2017, eq. 1-3):

    k = argmin_j ||z_e - e_j||^2,      z_q = e_k
    L = ||sg[z_e] - e_k||^2  +  beta * ||z_e - sg[e_k]||^2
        (codebook term)          (commitment term)

and copies the decoder's gradient straight through the non-differentiable
``argmin`` (:func:`straight_through`), or, with ``rotation_trick=True``, turns
it with the rotation that takes ``z_e`` onto its code (:func:`rotation_trick`,
Fifty et al. 2025).

Two codebooks are provided:

* :class:`VectorQuantizer` -- learned by gradient descent, with the options of
  taming-transformers' ``VectorQuantizer2`` (``legacy``, ``remap``,
  ``sane_index_shape``, ``get_codebook_entry``) but two different defaults:
  ``legacy=False`` (the paper's loss; taming's default ``True`` puts beta on the
  codebook term) and ``sane_index_shape=True``; plus l2-normalised codes and a
  low-dimensional lookup space (Yu et al. 2022, "ViT-VQGAN").
* :class:`EMAVectorQuantizer` -- updated by exponential moving averages of the
  assigned encoder vectors (VQ-VAE paper, appendix A.1; used by VQ-VAE-2), with
  rosinality/vq-vae-2-pytorch's buffer names ``embed``, ``cluster_size``,
  ``embed_avg`` so its checkpoints load.

:class:`GumbelQuantizer` is the alternative to the straight-through estimator:
codes sampled with the Gumbel-softmax trick (taming's ``GumbelQuantize``, DALL·E's
dVAE). It is not a ``make_quantizer`` kind: training it needs a temperature
schedule, which the config and trainer do not have.

Distances and EMA updates always run in float32, also under autocast.
Usage statistics, data initialisation and dead-code restarts live in
:mod:`vqlearn.codebook`.

Book: chapter "Vector quantization and the straight-through estimator",
chapter "Codebook and commitment losses", chapter "Quantizers after VQ-GAN".
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from vqlearn.runtime import is_distributed

UNKNOWN_INDEX_CHOICES = ("random", "extra")


class Quantized(NamedTuple):
    """What a quantizer returns.

    z_q: ``(B, C, h, w)`` quantized latents; in training their gradient flows
        straight through to the encoder output.
    loss: scalar codebook + commitment loss (commitment only for EMA codebooks).
    indices: ``(B, h, w)`` LongTensor of code indices (``(B*h*w,)`` for a
        :class:`VectorQuantizer` built with ``sane_index_shape=False``).
    perplexity: scalar, ``exp(entropy)`` of this batch's code histogram.
    """

    z_q: torch.Tensor
    loss: torch.Tensor
    indices: torch.Tensor
    perplexity: torch.Tensor


@contextmanager
def full_precision(device_type: str):
    """Turn autocast off for the enclosed block, so the math runs in float32."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each row of ``z``, in float32.

    ``z: (N, D)``, ``codebook: (K, D) -> (N,)`` LongTensor. Uses the expanded
    square ``||z||^2 + ||e||^2 - 2 z.e`` (one matmul, no ``(N, K, D)`` tensor);
    ``torch.cdist`` gives the same indices up to float rounding ties.
    """
    with full_precision(z.device.type):
        z = z.float()
        codebook = codebook.float()
        distances = torch.addmm(
            z.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1)[None, :],  # (N, K)
            z,
            codebook.t(),
            beta=1.0,
            alpha=-2.0,
        )
        return distances.argmin(dim=1)


def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Straight-through estimator: the value of ``z_q`` with the gradient of ``z``.

    ``z + (z_q - z).detach()``: forward it equals ``z_q``; backward the
    upstream gradient reaches ``z`` unchanged (the Jacobian is the identity).
    """
    return z + (z_q - z).detach()


def rotation_trick(z: torch.Tensor, z_q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The rotation trick (Fifty et al. 2025, sec. 4.2): the value of ``z_q``, the gradient turned.

    ``z, z_q: (N, D) -> (N, D)``. For each row, with ``u = z/||z||``, ``q = z_q/||z_q||``,
    the rotation ``R`` that takes ``u`` onto ``q`` and the scale ``lambda = ||z_q|| / ||z||``,

        z_q  =  sg[lambda R] z,      R = I - 2 r r^T + 2 q u^T,   r = (u + q) / ||u + q||

    (two Householder reflections, never built as a ``(D, D)`` matrix: ``R z = z - 2 r (r.z) + 2 q (u.z)``).
    ``R`` and ``lambda`` are treated as constants, so the gradient that reaches ``z`` is
    ``lambda R^T g`` for the gradient ``g`` at ``z_q``: rotated from the code's frame back
    to the encoder output's, and scaled by the ratio of the norms. The
    straight-through estimator (:func:`straight_through`) passes ``g`` itself, the
    same for every ``z`` in a Voronoi cell; with the rotation, two encoder outputs on
    opposite sides of their code are pushed differently (the paper's fig. 3).
    The forward value is exactly ``z_q`` (the rounding of ``lambda R z`` is corrected
    by a detached difference). ``eps`` guards zero-length vectors.
    """
    z_norm = z.norm(dim=1, keepdim=True).clamp(min=eps)
    q_norm = z_q.norm(dim=1, keepdim=True)
    u = (z / z_norm).detach()
    q = (z_q / q_norm.clamp(min=eps)).detach()
    r = F.normalize(u + q, dim=1, eps=eps)
    scale = (q_norm / z_norm).detach()
    rotated = scale * (z - 2 * r * (r * z).sum(1, keepdim=True) + 2 * q * (u * z).sum(1, keepdim=True))
    return rotated + (z_q - rotated).detach()


def estimator_gradient(estimator, z: torch.Tensor, z_q: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The gradient an estimator sends to the encoder output: ``(N, D)`` for ``grad (N, D)`` at ``z_q``.

    ``estimator``: :func:`straight_through` (returns ``grad`` itself) or :func:`rotation_trick`
    (returns ``lambda R^T grad``). ``z, z_q``: ``(N, D)`` encoder outputs and their codes.
    Compare the two, e.g. the angle between them, on a real batch.
    """
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        estimator(z, z_q.detach()).backward(grad)
    return z.grad


def vq_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float, legacy: bool = False) -> torch.Tensor:
    """Codebook + commitment loss of the VQ-VAE paper, eq. 3 (mean over elements).

    ``legacy=False`` (correct): ``mean((sg[z] - z_q)^2) + beta * mean((z - sg[z_q])^2)``
    -- the codebook moves towards the encoder at full rate and the encoder is
    held to its code with weight beta.

    ``legacy=True`` reproduces taming-transformers' ``VectorQuantizer2`` default,
    where a bug put beta on the *codebook* term instead:
    ``mean((z - sg[z_q])^2) + beta * mean((sg[z] - z_q)^2)``.

    Both forms have the same *value*, ``(1 + beta) * mse(z, z_q)``; only the
    gradients differ: the encoder gets ``2 (z - z_q) / n`` under legacy and
    ``2 beta (z - z_q) / n`` in the correct form, the codebook the reverse.
    """
    commitment = torch.mean((z - z_q.detach()) ** 2)
    codebook = torch.mean((z.detach() - z_q) ** 2)
    if legacy:
        return commitment + beta * codebook
    return codebook + beta * commitment


def batch_perplexity(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """``exp(entropy)`` of the histogram of ``indices`` (any shape): 1 if one code
    is used, ``num_codes`` if all are used equally."""
    counts = torch.bincount(indices.reshape(-1), minlength=num_codes).float()
    probs = counts / counts.sum().clamp(min=1)
    return torch.exp(-(probs * torch.log(probs + 1e-10)).sum())


def check_indices(indices: torch.Tensor, num_codes: int, name: str = "codes") -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``indices`` are integers in ``[0, num_codes)``."""
    if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"`{name}` must be an integer tensor of code indices, got dtype {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= num_codes):
        raise ValueError(
            f"`{name}` must lie in [0, {num_codes - 1}] for a codebook of {num_codes} codes, "
            f"got values in [{int(indices.min())}, {int(indices.max())}]"
        )


class VectorQuantizer(nn.Module):
    """Codebook learned by gradient descent, with the options of taming's ``VectorQuantizer2``.

    Two defaults differ from taming's: ``legacy=False`` and ``sane_index_shape=True``
    (:func:`vqlearn.pretrained.load_taming_vqgan` sets ``legacy=True`` for taming's checkpoints).

    Args:
        num_codes: number of codes K, the rows of the codebook (taming: ``n_e``).
        dim: channels D of the latents it quantizes (taming: ``e_dim``).
        beta: commitment weight (0.25 in every paper of this family).
        legacy: ``True`` reproduces taming's beta-on-the-codebook-term bug (its
            default, and what its checkpoints were trained with); ``False`` (our
            default) is the paper's loss. See :func:`vq_loss`.
        remap: path to a ``.npy`` file of the code indices in use. Indices are then
            reported in the compact range ``[0, len(used))`` (+1 with ``extra``).
        unknown_index: what a code outside ``used`` maps to: ``"random"`` (a random
            used index), ``"extra"`` (one extra index ``len(used)``) or an int.
        sane_index_shape: return indices as ``(B, h, w)`` instead of ``(B*h*w,)``.
        l2_normalize: compare l2-normalised latents and codes (cosine similarity),
            a remedy for codebook collapse from ViT-VQGAN.
        lookup_dim: if set, project latents to this many channels before the
            lookup (1x1 convs ``project_in``/``project_out``); the codebook lives in
            that low-dimensional space (ViT-VQGAN's factorised codes).
        rotation_trick: pass the decoder's gradient to the encoder with the rotation
            trick (:func:`rotation_trick`, Fifty et al. 2025) instead of the
            straight-through estimator. The forward value and the loss do not change.

    Two sizes, which differ only with ``remap``: ``num_codes`` is the number of
    codebook rows, ``num_indices`` the number of index values ``forward`` can
    report and ``lookup`` accepts (taming's ``re_embed``: ``len(used)``, +1 with
    ``unknown_index="extra"``). Histograms of reported codes are ``num_indices`` long.

    ``forward: (B, dim, h, w) -> Quantized``.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        beta: float = 0.25,
        legacy: bool = False,
        remap: str | None = None,
        unknown_index: str | int = "random",
        sane_index_shape: bool = True,
        l2_normalize: bool = False,
        lookup_dim: int | None = None,
        rotation_trick: bool = False,
    ):
        super().__init__()
        self.num_codes = num_codes
        self.dim = dim
        self.beta = beta
        self.legacy = legacy
        self.rotation_trick = rotation_trick
        self.sane_index_shape = sane_index_shape
        self.l2_normalize = l2_normalize
        self.lookup_dim = lookup_dim
        code_dim = lookup_dim or dim
        if lookup_dim is not None:
            self.project_in = nn.Conv2d(dim, lookup_dim, kernel_size=1)
            self.project_out = nn.Conv2d(lookup_dim, dim, kernel_size=1)

        self.embedding = nn.Embedding(num_codes, code_dim)
        self.embedding.weight.data.uniform_(-1.0 / num_codes, 1.0 / num_codes)

        self.remap = remap
        if remap is not None:
            used = torch.as_tensor(np.load(remap)).long()
            check_indices(used, num_codes, name=f"remap file {remap}")
            self.register_buffer("used", used)
            self.num_indices = len(used)
            if unknown_index == "extra":
                unknown_index = self.num_indices
                self.num_indices += 1
            elif unknown_index != "random" and not isinstance(unknown_index, int):
                raise ValueError(f"unknown_index must be 'random', 'extra' or an int, got {unknown_index!r}")
            self.unknown_index = unknown_index
        else:
            self.num_indices = num_codes

    @property
    def codebook(self) -> torch.Tensor:
        """``(num_codes, code_dim)`` codebook in the lookup space (normalised if ``l2_normalize``)."""
        weight = self.embedding.weight
        return F.normalize(weight, dim=1) if self.l2_normalize else weight

    def to_lookup_space(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, dim, h, w) -> (B*h*w, code_dim)``: the vectors the codebook is compared with."""
        if self.lookup_dim is not None:
            z = self.project_in(z)
        z = rearrange(z, "b c h w -> (b h w) c")
        return F.normalize(z, dim=1) if self.l2_normalize else z

    def replace_codes(self, which: torch.Tensor, vectors: torch.Tensor) -> None:
        """Overwrite codes ``which`` (LongTensor ``(n,)``) with ``vectors (n, code_dim)``."""
        with torch.no_grad():
            self.embedding.weight[which] = vectors.to(self.embedding.weight.dtype)

    def forward(self, z: torch.Tensor) -> Quantized:
        b, _, h, w = z.shape
        z_flat = self.to_lookup_space(z)  # (N, code_dim)
        with full_precision(z.device.type):
            z_flat = z_flat.float()
            indices = nearest_code(z_flat, self.codebook)  # (N,)
            z_q = self.codebook.float()[indices]  # (N, code_dim)
            loss = vq_loss(z_flat, z_q, self.beta, self.legacy)
            z_q = rotation_trick(z_flat, z_q) if self.rotation_trick else straight_through(z_flat, z_q)
        z_q = rearrange(z_q, "(b h w) c -> b c h w", b=b, h=h, w=w)
        if self.lookup_dim is not None:
            z_q = self.project_out(z_q)
        perplexity = batch_perplexity(indices, self.num_codes)
        if self.remap is not None:
            indices = self.remap_to_used(indices)
        indices = indices.view(b, h, w) if self.sane_index_shape else indices
        return Quantized(z_q, loss, indices, perplexity)

    def remap_to_used(self, indices: torch.Tensor) -> torch.Tensor:
        """Full indices ``[0, num_codes)`` -> compact indices ``[0, num_indices)``."""
        lookup = torch.full((self.num_codes,), -1, dtype=torch.long, device=indices.device)
        lookup[self.used] = torch.arange(len(self.used), device=indices.device)
        compact = lookup[indices]
        unknown = compact < 0
        if self.unknown_index == "random":
            compact[unknown] = torch.randint(0, self.num_indices, (int(unknown.sum()),), device=indices.device)
        else:
            compact[unknown] = self.unknown_index
        return compact

    def unmap_to_all(self, indices: torch.Tensor) -> torch.Tensor:
        """Compact indices -> full indices; the extra "unknown" index maps to ``used[0]``."""
        indices = torch.where(indices >= len(self.used), torch.zeros_like(indices), indices)
        return self.used[indices]

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, h, w)`` LongTensor in ``[0, num_indices)`` -> ``(B, dim, h, w)``."""
        check_indices(indices, self.num_indices)
        if self.remap is not None:
            indices = self.unmap_to_all(indices)
        z_q = rearrange(self.codebook[indices], "b h w c -> b c h w")
        return self.project_out(z_q) if self.lookup_dim is not None else z_q

    def get_codebook_entry(self, indices: torch.Tensor, shape: tuple[int, int, int, int] | None) -> torch.Tensor:
        """taming's signature: flat ``indices`` and ``shape=(B, h, w, C)`` -> ``(B, C, h, w)``.

        With ``shape=None`` returns the ``(N, code_dim)`` code vectors unreshaped.
        """
        if shape is None:
            check_indices(indices, self.num_indices)
            full = self.unmap_to_all(indices) if self.remap is not None else indices
            return self.codebook[full]
        b, h, w, _ = shape
        return self.lookup(indices.reshape(b, h, w))


class EMAVectorQuantizer(nn.Module):
    """Codebook updated by exponential moving averages (VQ-VAE appendix A.1, VQ-VAE-2).

    Per code k, with ``n_k`` the number of vectors assigned in the batch and
    ``s_k`` their sum:

        N_k <- decay * N_k + (1 - decay) * n_k          (``cluster_size``)
        m_k <- decay * m_k + (1 - decay) * s_k          (``embed_avg``)
        e_k <- m_k / N~_k,   N~_k = (N_k + eps) / (sum N + K eps) * sum N

    The Laplace-smoothed ``N~_k`` keeps a code that is never chosen from
    dividing by zero. Only the commitment term ``beta * ||z - sg[e]||^2``
    remains in the loss. The update runs in training mode with gradients
    enabled, so ``tokenize`` (``no_grad``) never moves the codebook. Under
    DistributedDataParallel ``n_k`` and ``s_k`` are
    summed over all ranks, so every rank keeps the same codebook.

    Buffer names and the ``(dim, num_codes)`` layout of ``embed`` are
    rosinality/vq-vae-2-pytorch's, so its checkpoints load. The arguments are
    in :class:`VectorQuantizer`'s order, codebook size first (rosinality's
    ``Quantize(dim, n_embed)`` takes them the other way round).

    ``rotation_trick=True`` passes the gradient to the encoder with :func:`rotation_trick`
    instead of the straight-through estimator (the codebook, a buffer, gets none either way).

    ``forward: (B, dim, h, w) -> Quantized`` with ``(B, h, w)`` indices.
    """

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, eps: float = 1e-5, beta: float = 0.25,
                 rotation_trick: bool = False):
        super().__init__()
        self.num_codes = num_codes
        self.dim = dim
        self.decay = decay
        self.eps = eps
        self.beta = beta
        self.rotation_trick = rotation_trick
        # Every code starts as if it had been chosen once, by itself: N_k = 1, m_k = e_k.
        # (With N_k = 0 an unused code would be divided by ~eps on the first step.)
        embed = torch.randn(dim, num_codes)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_avg", embed.clone())

    @property
    def num_indices(self) -> int:
        """How many index values ``forward`` can report: every code (no remapping here)."""
        return self.num_codes

    @property
    def codebook(self) -> torch.Tensor:
        """``(num_codes, dim)`` view of the codebook."""
        return self.embed.t()

    def to_lookup_space(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, dim, h, w) -> (B*h*w, dim)``."""
        return rearrange(z, "b c h w -> (b h w) c")

    def replace_codes(self, which: torch.Tensor, vectors: torch.Tensor) -> None:
        """Overwrite codes ``which`` with ``vectors (n, dim)`` and restart their averages
        as if each had been chosen once by that vector."""
        with torch.no_grad():
            vectors = vectors.to(self.embed.dtype).t()
            self.embed[:, which] = vectors
            self.embed_avg[:, which] = vectors
            self.cluster_size[which] = 1.0

    @torch.no_grad()
    def ema_update(self, z_flat: torch.Tensor, indices: torch.Tensor) -> None:
        """One EMA step from ``z_flat (N, dim)`` float32 assigned to ``indices (N,)``."""
        onehot = F.one_hot(indices, self.num_codes).type(z_flat.dtype)  # (N, K)
        counts = onehot.sum(0)  # (K,)   n_k
        sums = z_flat.t() @ onehot  # (dim, K)   s_k
        if is_distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        # lerp_(y, 1 - decay) is decay * x + (1 - decay) * y; torch 2.14's inductor
        # miscompiled the mul_().add_() spelling of it, lerp_ compiles correctly.
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_avg.lerp_(sums, 1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed[None, :])

    def forward(self, z: torch.Tensor) -> Quantized:
        b, _, h, w = z.shape
        with full_precision(z.device.type):
            z_flat = self.to_lookup_space(z).float()
            indices = nearest_code(z_flat, self.codebook)
            if self.training and torch.is_grad_enabled():
                self.ema_update(z_flat.detach(), indices)
            z_q = self.codebook[indices]  # (N, dim), no gradient: a buffer
            loss = self.beta * torch.mean((z_flat - z_q) ** 2)
            z_q = rotation_trick(z_flat, z_q) if self.rotation_trick else straight_through(z_flat, z_q)
        z_q = rearrange(z_q, "(b h w) c -> b c h w", b=b, h=h, w=w)
        perplexity = batch_perplexity(indices, self.num_codes)
        return Quantized(z_q, loss, indices.view(b, h, w), perplexity)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, h, w)`` LongTensor -> ``(B, dim, h, w)``."""
        check_indices(indices, self.num_codes)
        return rearrange(self.codebook[indices], "b h w c -> b c h w")


class GumbelQuantizer(nn.Module):
    """Codes sampled with the Gumbel-softmax trick instead of found by a nearest-code search.

    taming-transformers' ``GumbelQuantize`` (``taming/modules/vqvae/quantize.py``, after
    karpathy's deep-vector-quantization), the estimator of Jang et al. 2017 and
    Maddison et al. 2017 ("Concrete"); DALL·E's dVAE (Ramesh et al. 2021, sec. 2.1)
    trains its tokenizer with the soft relaxation (``straight_through=False``; openai/DALL-E
    issue #1). Per position, with ``K = num_codes``:

        logits = proj(z)                                    1x1 conv, (B, C, h, w) -> (B, K, h, w)
        y      = softmax((logits + g) / tau),  g ~ Gumbel(0, 1) i.i.d.   (a relaxed one-hot sample)
        z_q    = sum_k y_k e_k                              (soft: a mixture of codes)
        loss   = kl_weight * mean_positions sum_k q_k log(q_k K),   q = softmax(logits)

    The loss is KL(q || uniform prior over the K codes). With ``straight_through``
    (taming's default) training uses the *hard* sample: the forward value is exactly
    the codebook row ``e_k`` of ``k = argmax_j y_j``, and the gradient reaches the
    logits through the soft ``y`` (the gradients equal taming's
    ``einsum(F.gumbel_softmax(logits, tau, hard=True), embed)``). Unlike the nearest-code
    quantizers there is no codebook or commitment loss: the codebook gets the
    decoder's gradient directly, because ``z_q`` is computed from it.

    In eval mode the code is ``argmax(logits)``, deterministic, as DALL·E
    tokenizes (sec. 2.2: "argmax sampling ... without adding any gumbel noise");
    taming keeps the Gumbel noise in eval (``sample_in_eval=True`` reproduces that).

    Args:
        num_codes: K, the rows of the codebook (taming: ``n_embed``).
        dim: channels D of the code vectors and of ``z_q`` (taming: ``embedding_dim``).
        in_channels: channels of the input ``z`` (taming: ``num_hiddens``); default ``dim``.
        temperature: tau, the Gumbel-softmax temperature (taming: ``temp_init``); an
            attribute, so a training loop can anneal it, or pass ``temperature=`` to forward.
        kl_weight: weight of the KL term (taming's ``GumbelQuantize`` default 5e-4).
        straight_through: hard one-hot samples in training (``True``) or the soft mixture.
        sample_in_eval: keep Gumbel noise in eval mode, as taming does.

    Parameter names ``proj`` and ``embed`` are taming's. There is no ``beta``.

    ``forward: (B, in_channels, h, w) -> Quantized`` with ``z_q (B, dim, h, w)`` and
    ``(B, h, w)`` indices.

    Book: chapter "Vector quantization and the straight-through estimator".
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        in_channels: int | None = None,
        temperature: float = 1.0,
        kl_weight: float = 5e-4,
        straight_through: bool = True,
        sample_in_eval: bool = False,
    ):
        super().__init__()
        self.num_codes = num_codes
        self.dim = dim
        self.temperature = temperature
        self.kl_weight = kl_weight
        self.straight_through = straight_through
        self.sample_in_eval = sample_in_eval
        self.proj = nn.Conv2d(in_channels or dim, num_codes, kernel_size=1)
        self.embed = nn.Embedding(num_codes, dim)

    @property
    def num_indices(self) -> int:
        """How many index values ``forward`` can report: every code."""
        return self.num_codes

    @property
    def codebook(self) -> torch.Tensor:
        """``(num_codes, dim)`` codebook."""
        return self.embed.weight

    def kl_to_uniform(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, K, h, w)`` logits -> scalar ``mean over positions of sum_k q_k log(q_k K)``, ``q = softmax``."""
        log_q = F.log_softmax(logits, dim=1)
        return (log_q.exp() * (log_q + np.log(self.num_codes))).sum(1).mean()

    def forward(self, z: torch.Tensor, temperature: float | None = None) -> Quantized:
        tau = self.temperature if temperature is None else temperature
        with full_precision(z.device.type):
            logits = self.proj(z.float())  # (B, K, h, w)
            loss = self.kl_weight * self.kl_to_uniform(logits)
            codebook = self.embed.weight.float()  # (K, D)
            if self.training or self.sample_in_eval:
                soft = F.gumbel_softmax(logits, tau=tau, hard=False, dim=1)  # (B, K, h, w), sums to 1 over K
                indices = soft.argmax(dim=1)  # (B, h, w)
                if self.straight_through or not self.training:
                    # value: the code e_k exactly; gradient: through the soft sample, as taming's hard=True
                    z_q = rearrange(codebook[indices], "b h w d -> b d h w")
                    z_q = z_q + torch.einsum("bkhw,kd->bdhw", soft - soft.detach(), codebook)
                else:
                    z_q = torch.einsum("bkhw,kd->bdhw", soft, codebook)
            else:
                indices = logits.argmax(dim=1)
                z_q = rearrange(codebook[indices], "b h w d -> b d h w")
        perplexity = batch_perplexity(indices, self.num_codes)
        return Quantized(z_q, loss, indices, perplexity)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes to latents: ``(B, h, w)`` LongTensor -> ``(B, dim, h, w)``."""
        check_indices(indices, self.num_codes)
        return rearrange(self.codebook[indices], "b h w d -> b d h w")


CODEBOOK_KINDS = ("vq", "ema")


def make_codebook(kind: str, num_codes: int, dim: int, beta: float = 0.25, **options) -> nn.Module:
    """The two nearest-code codebooks by name (every kind, FSQ/LFQ/RVQ too: :func:`vqlearn.quantizers.make_quantizer`).

    ``kind="vq"``: :class:`VectorQuantizer` (options: ``legacy``, ``l2_normalize``,
    ``lookup_dim``, ``rotation_trick``, ``remap``, ...); ``kind="ema"``: :class:`EMAVectorQuantizer`
    (options: ``decay``, ``eps``, ``rotation_trick``).

    Both have ``num_codes`` (codebook rows) and ``num_indices`` (how many index
    values their codes take: ``num_codes``, except for a remapped
    :class:`VectorQuantizer`); size histograms of their codes by ``num_indices``.
    """
    if kind == "vq":
        return VectorQuantizer(num_codes, dim, beta=beta, **options)
    if kind == "ema":
        return EMAVectorQuantizer(num_codes, dim, beta=beta, **options)
    raise ValueError(f"quantizer must be one of {CODEBOOK_KINDS}, got {kind!r}")
