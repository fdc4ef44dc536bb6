"""The training objectives of VQ-VAE and VQ-GAN, with one interface for the trainer.

:class:`VQLoss` is VQ-VAE's; VQ-GAN's is :class:`VQLPIPSWithDiscriminator`, built from the
GAN losses and the adaptive weight defined here.

Both loss modules offer the trainer the same three methods:

* ``generator_loss(codebook_loss, inputs, reconstructions, global_step, last_layer) -> (loss, log)``,
  the autoencoder's loss;
* ``disc_active(global_step) -> bool``, whether the discriminator trains at this step
  (always False for :class:`VQLoss`, which has none);
* ``discriminator_loss(inputs, reconstructions, global_step) -> (loss, log)``, the discriminator's.

VQ-VAE (van den Oord et al. 2017, eq. 3; seed 000 §1) minimises ``rec_loss(x, x_hat) + L_VQ``.

For the autoencoder (encoder E, decoder G, codebook Z) VQ-GAN minimises
(Esser et al. 2021, "Taming Transformers", eq. 5-7; seed 001 §VQ-GAN loss)

    L = L_rec  +  lambda * disc_factor * L_GAN  +  codebook_weight * L_VQ
    L_rec = mean(|x - x_hat|) + perceptual_weight * LPIPS(x, x_hat)
    L_GAN = -mean(D(x_hat))
    lambda = ||grad_{G_L} L_rec|| / (||grad_{G_L} L_GAN|| + 1e-4)      (eq. 7)

where ``G_L`` is the decoder's last layer, and the discriminator D minimises
the hinge (or "vanilla", binary cross-entropy) loss on real and reconstructed images.
``L_GAN`` is the same for both choices (:func:`hinge_g_loss`); it is not Goodfellow et al.'s
non-saturating generator loss (:func:`non_saturating_g_loss`).
``disc_factor`` switches the GAN part on at step ``disc_start``.

Book: chapter "Codebook and commitment losses", chapter "Training a VQ-VAE";
chapter "Hinge and vanilla GAN losses", chapter "The adaptive weight λ",
chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vqlearn.discriminator import NLayerDiscriminator, weights_init
from vqlearn.images import grey_to_rgb

DISC_LOSSES = ("hinge", "vanilla")
REC_LOSSES = ("mse", "l1")


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss: ``0.5 * (mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat))))``.

    Logits of any shape -> scalar. A real patch stops contributing once its
    logit passes +1, a fake one once it drops below -1 (Lim & Ye 2017,
    "Geometric GAN"). The factor 1/2 (an average of the two terms) is
    taming-transformers'; seed 001 §5 writes the sum.
    """
    loss_real = F.relu(1.0 - logits_real).mean()
    loss_fake = F.relu(1.0 + logits_fake).mean()
    return 0.5 * (loss_real + loss_fake)


def vanilla_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits: ``0.5 * (mean(softplus(-D(x))) + mean(softplus(D(x_hat))))``.

    Logits of any shape -> scalar. ``softplus(-l) = -log sigmoid(l)`` and
    ``softplus(l) = -log(1 - sigmoid(l))``, so this is seed 001's
    ``-[log D(x) + log(1 - D(x_hat))]`` with D = sigmoid(logits), written in the
    numerically stable form and halved like :func:`hinge_d_loss`.
    """
    loss_real = F.softplus(-logits_real).mean()
    loss_fake = F.softplus(logits_fake).mean()
    return 0.5 * (loss_real + loss_fake)


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The generator loss of taming-transformers: ``-mean(D(x_hat))``. Logits of any shape -> scalar.

    The hinge GAN's generator loss (Lim & Ye 2017, "Geometric GAN"; also Miyato et al.
    2018, spectral normalisation). taming (``taming/modules/losses/vqperceptual.py``) uses it with *both*
    discriminator losses, and so does :class:`VQLPIPSWithDiscriminator` (its ``g_loss``).
    Its gradient is ``-1/N`` for every logit, however fake the sample looks.
    """
    return -logits_fake.mean()


def non_saturating_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Goodfellow et al.'s non-saturating generator loss ``mean(softplus(-D(x_hat)))``. Logits -> scalar.

    ``softplus(-l) = -log sigmoid(l)``: the generator maximises ``log D(G(z))``
    (Goodfellow et al. 2014, §3) instead of minimising ``log(1 - D(G(z)))``; the
    gradient ``-sigmoid(-l) / N`` is largest where the discriminator is sure the sample
    is fake. Not used by taming or by :class:`VQLPIPSWithDiscriminator`.
    """
    return F.softplus(-logits_fake).mean()


def minimax_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The generator's side of Goodfellow et al.'s minimax game: ``mean(log(1 - sigmoid(D(x_hat))))``.

    Written stably as ``-mean(softplus(D(x_hat)))``. Logits -> scalar. Its gradient
    ``-sigmoid(l) / N`` vanishes where the discriminator is sure the sample is fake
    (l very negative): the saturation that Goodfellow et al. 2014 (§3) avoid with
    :func:`non_saturating_g_loss`.
    """
    return -F.softplus(logits_fake).mean()


def feature_matching_loss(features_real: list[torch.Tensor], features_fake: list[torch.Tensor]) -> torch.Tensor:
    """``sum_l mean(|D_l(x) - D_l(x_hat)|)`` over the discriminator's layers ``l`` -> scalar.

    Two lists of the same shapes, e.g. :meth:`NLayerDiscriminator.features` of
    real and reconstructed images. This is HiFi-GAN's feature matching loss
    (Kong et al. 2020, section "Training Loss Terms"; after MelGAN, Kumar et al. 2019): an L1 distance
    measured in the discriminator's learned feature spaces instead of in pixels,
    a perceptual loss that needs no pretrained network.
    """
    if len(features_real) != len(features_fake):
        raise ValueError(f"got {len(features_real)} real and {len(features_fake)} fake feature maps")
    return sum((real - fake).abs().mean() for real, fake in zip(features_real, features_fake))


def adopt_weight(weight: float, global_step: int, threshold: int = 0, value: float = 0.0) -> float:
    """``value`` before step ``threshold``, ``weight`` from it on (the delayed discriminator start).

    VQ-GAN trains as a plain autoencoder for the first ``disc_start`` steps
    (``disc_factor = 0``) and switches the GAN terms on at
    ``global_step == disc_start`` (seed 001 §7).
    """
    return value if global_step < threshold else weight


def calculate_adaptive_weight(
    nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, disc_weight: float = 1.0
) -> torch.Tensor:
    """VQ-GAN eq. 7: ``disc_weight * ||d nll/d W|| / (||d g/d W|| + 1e-4)`` at ``W = last_layer``.

    ``nll_loss``, ``g_loss``: scalars in the same graph as ``last_layer`` (the
    decoder's last weight, ``model.get_last_layer()``). Returns a detached 0-dim
    tensor, clamped to ``[0, 1e4]`` before the ``disc_weight`` factor. It scales
    the GAN gradient at the decoder output to the size of the reconstruction
    gradient there: a loud discriminator is turned down, a quiet one up. The
    graph is kept (``retain_graph=True``) for the caller's ``backward``.
    """
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    d_weight = torch.linalg.vector_norm(nll_grad) / (torch.linalg.vector_norm(g_grad) + 1e-4)
    return torch.clamp(d_weight, 0.0, 1e4).detach() * disc_weight



class AdaptiveWeightRecorder:
    """Stands in for ``loss.calculate_adaptive_weight(nll_loss, g_loss, last_layer)`` and records the norms.

    Install it on one loss module (``loss.calculate_adaptive_weight = AdaptiveWeightRecorder(loss)``,
    an instance attribute: the class is untouched). ``fixed=None`` returns vqlearn's adaptive weight
    (:func:`calculate_adaptive_weight` with the loss's ``disc_weight``); a number returns that constant
    instead, the fixed weight that eq. 7 replaces. ``rows`` holds one ``(||grad nll||, ||grad g||, weight)``
    per call, i.e. per step with the GAN term on (norms at ``last_layer``).

    Book: chapter "The adaptive weight λ" (and ``bench/adaptive_weight.py``).
    """

    def __init__(self, loss: "VQLPIPSWithDiscriminator", fixed: float | None = None):
        self.loss, self.fixed, self.rows = loss, fixed, []

    def __call__(self, nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
        nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        if self.fixed is None:
            weight = calculate_adaptive_weight(nll_loss, g_loss, last_layer, self.loss.discriminator_weight)
        else:
            weight = torch.tensor(float(self.fixed), device=nll_loss.device)
        self.rows.append((float(nll_grad.norm()), float(g_grad.norm()), float(weight)))
        return weight


class VQLoss(nn.Module):
    """VQ-VAE's objective: ``rec_loss(x, x_hat) + codebook_weight * quant_loss`` (seed 000 §1).

    ``rec_loss="mse"`` is the pytorch-vqvae reproduction's; ``"l1"`` is VQ-GAN's pixel loss.
    The log holds the seed's keys that apply: ``{split}/total_loss``, ``quant_loss``,
    ``nll_loss`` and ``rec_loss`` (the last two are the same number here).
    """

    def __init__(self, rec_loss: str = "mse", codebook_weight: float = 1.0):
        super().__init__()
        if rec_loss not in REC_LOSSES:
            raise ValueError(f"rec_loss must be one of {REC_LOSSES}, got {rec_loss!r}")
        self.rec_loss = rec_loss
        self.codebook_weight = codebook_weight

    def forward(self, codebook_loss: torch.Tensor, inputs: torch.Tensor, reconstructions: torch.Tensor,
                split: str = "train") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``codebook_loss``: scalar; ``inputs``, ``reconstructions``: ``(B, C, H, W)`` -> ``(loss, log)``."""
        inputs, reconstructions = inputs.float(), reconstructions.float()
        if self.rec_loss == "mse":
            rec = F.mse_loss(reconstructions, inputs)
        else:
            rec = F.l1_loss(reconstructions, inputs)
        loss = rec + self.codebook_weight * codebook_loss.mean()
        log = {
            f"{split}/total_loss": loss.detach(),
            f"{split}/quant_loss": codebook_loss.detach().mean(),
            f"{split}/nll_loss": rec.detach(),
            f"{split}/rec_loss": rec.detach(),
        }
        return loss, log

    def generator_loss(self, codebook_loss, inputs, reconstructions, global_step: int = 0, last_layer=None,
                       split: str = "train"):
        """The trainer's call: :meth:`forward` (VQ-VAE's loss depends on neither the step nor the last layer)."""
        return self(codebook_loss, inputs, reconstructions, split)

    def disc_active(self, global_step: int) -> bool:
        """There is no discriminator."""
        return False

    def discriminator_loss(self, inputs, reconstructions, global_step: int, split: str = "train"):
        raise RuntimeError("VQLoss has no discriminator (disc_active() is always False); use loss.kind=vqgan")


class VQLPIPSWithDiscriminator(nn.Module):
    """L1 + LPIPS reconstruction, codebook loss and PatchGAN loss (seed 000 §Total loss).

    The constructor takes the seed's (taming-transformers') arguments; the
    submodules are named ``discriminator`` and ``perceptual_loss`` like taming's,
    so ``loss.*`` checkpoint keys load. ``perceptual_net`` picks the LPIPS trunk
    (taming: always ``"vgg"``) and ``download_perceptual`` allows
    :func:`vqlearn.perceptual.load_lpips` to fetch missing trunk weights.

    * :meth:`generator_loss` (taming: ``forward(..., optimizer_idx=0, ...)``), the
      autoencoder step: ``loss = nll_loss + d_weight * disc_factor * g_loss +
      codebook_weight * codebook_loss.mean()``;
    * :meth:`discriminator_loss` (taming: ``optimizer_idx=1``), the discriminator
      step: ``loss = disc_factor * disc_loss(D(inputs), D(reconstructions))`` on
      detached images;
    * :meth:`disc_active` says from which step the discriminator trains
      (``disc_start`` lives here only; the trainer asks).

    Each returns ``(loss, log)``; taming's ``forward(codebook_loss, inputs,
    reconstructions, optimizer_idx, global_step, last_layer=None, cond=None,
    split="train")`` calls the first two.

    ``inputs``, ``reconstructions``: ``(B, C, H, W)`` in [-1, 1]; ``cond``:
    ``(B, C', H, W)`` concatenated to the images along channels when
    ``disc_conditional=True``. ``log`` holds detached scalars under the seed's
    keys (``{split}/total_loss``, ``quant_loss``, ``nll_loss``, ``rec_loss``,
    ``p_loss``, ``d_weight``, ``disc_factor``, ``g_loss`` for step 0;
    ``{split}/disc_loss``, ``logits_real``, ``logits_fake`` for step 1).

    Where this differs from the seed:

    * No ``try/except`` around the adaptive weight. ``d_weight`` is computed
      only when the module is in training mode, autograd is enabled and the
      discriminator is on (``adopt_weight(disc_factor, global_step, disc_start)
      > 0``); otherwise it is 0. Before ``disc_start`` the GAN term is
      multiplied by 0 anyway, and in evaluation there is no graph to
      differentiate. When it is needed and ``last_layer`` is None, a
      ``ValueError`` asks for ``model.get_last_layer()``.
    * Bad arguments (``disc_loss``, ``optimizer_idx``, ``cond`` vs
      ``disc_conditional``) raise ``ValueError`` instead of failing an ``assert``.
    * ``perceptual_weight=0`` never builds LPIPS (``perceptual_loss`` is None and
      ``lpips`` is never imported); ``p_loss`` is then a zero tensor.
      With ``perceptual_weight > 0`` the LPIPS weights must be on disk (see
      :mod:`vqlearn.perceptual`): there is no random-feature fallback.
    * ``pixelloss_weight`` scales the L1 term (taming stores it and never uses
      it; the default 1.0 gives taming's loss).
    * LPIPS stays in eval mode when the module is put in training mode (in
      taming, ``.train()`` re-enables the dropout of LPIPS' linear heads).
      Its parameters are frozen; optimise ``loss.discriminator.parameters()``.
    * Single-channel images are repeated to 3 channels for LPIPS only.
    * The constructor prints nothing.
    * ``feature_matching_weight > 0`` adds ``disc_factor * feature_matching_weight *
      fm_loss`` to the autoencoder's loss, where ``fm_loss`` is
      :func:`feature_matching_loss` between the discriminator's features of the
      inputs (no gradient) and of the reconstructions, logged as
      ``{split}/fm_loss`` (HiFi-GAN uses a weight of 2). Like the GAN term it is
      off before ``disc_start``, when the discriminator is still untrained. The
      default 0 computes nothing and logs nothing: taming's loss, numbers and
      log keys are unchanged. (With BatchNorm, the extra forward pass of the
      discriminator on the inputs also updates its running statistics.)
    """

    def __init__(
        self,
        disc_start: int,
        codebook_weight: float = 1.0,
        pixelloss_weight: float = 1.0,
        disc_num_layers: int = 3,
        disc_in_channels: int = 3,
        disc_factor: float = 1.0,
        disc_weight: float = 1.0,
        perceptual_weight: float = 1.0,
        use_actnorm: bool = False,
        disc_conditional: bool = False,
        disc_ndf: int = 64,
        disc_loss: str = "hinge",
        perceptual_net: str = "vgg",
        download_perceptual: bool = False,
        feature_matching_weight: float = 0.0,
    ):
        super().__init__()
        if disc_loss not in DISC_LOSSES:
            raise ValueError(f"disc_loss must be one of {DISC_LOSSES}, got {disc_loss!r}")
        if perceptual_weight < 0:
            raise ValueError(f"perceptual_weight must be >= 0 (0 turns LPIPS off), got {perceptual_weight}")
        if feature_matching_weight < 0:
            raise ValueError(f"feature_matching_weight must be >= 0 (0 turns it off), got {feature_matching_weight}")
        self.feature_matching_weight = feature_matching_weight
        self.codebook_weight = codebook_weight
        self.pixel_weight = pixelloss_weight
        self.perceptual_weight = perceptual_weight
        if perceptual_weight > 0:
            from vqlearn.perceptual import load_lpips

            self.perceptual_loss = load_lpips(perceptual_net, download=download_perceptual)
        else:
            self.perceptual_loss = None

        self.discriminator = NLayerDiscriminator(
            input_nc=disc_in_channels, ndf=disc_ndf, n_layers=disc_num_layers, use_actnorm=use_actnorm
        )
        self.discriminator.apply(weights_init)
        self.discriminator_iter_start = disc_start
        self.disc_loss_name = disc_loss
        self.disc_loss = hinge_d_loss if disc_loss == "hinge" else vanilla_d_loss
        self.disc_factor = disc_factor
        self.discriminator_weight = disc_weight
        self.disc_conditional = disc_conditional

    def train(self, mode: bool = True) -> "VQLPIPSWithDiscriminator":
        super().train(mode)
        if self.perceptual_loss is not None:
            self.perceptual_loss.eval()
        return self

    def calculate_adaptive_weight(self, nll_loss, g_loss, last_layer):
        """:func:`calculate_adaptive_weight` with this module's ``disc_weight``."""
        return calculate_adaptive_weight(nll_loss, g_loss, last_layer, self.discriminator_weight)

    def perceptual(self, inputs: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        """LPIPS distance ``(B, 1, 1, 1)``; zeros when ``perceptual_weight=0``."""
        if self.perceptual_loss is None:
            return inputs.new_zeros(inputs.shape[0], 1, 1, 1)
        if inputs.shape[1] == 1:
            inputs, reconstructions = grey_to_rgb(inputs), grey_to_rgb(reconstructions)
        elif inputs.shape[1] != 3:
            raise ValueError(
                f"LPIPS compares RGB (or grey) images, got {inputs.shape[1]} channels; "
                f"use perceptual_weight=0 for other images"
            )
        return self.perceptual_loss(inputs, reconstructions)

    def _discriminate(self, images: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is not None:
            images = torch.cat((images, cond), dim=1)
        return self.discriminator(images)

    def _discriminator_features(self, images: torch.Tensor, cond: torch.Tensor | None) -> list[torch.Tensor]:
        if cond is not None:
            images = torch.cat((images, cond), dim=1)
        return self.discriminator.features(images)

    def disc_active(self, global_step: int) -> bool:
        """Whether the GAN terms are on at ``global_step``: ``disc_factor > 0`` from ``disc_start`` on."""
        return adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start) > 0

    def _check_pair(self, inputs: torch.Tensor, reconstructions: torch.Tensor, cond: torch.Tensor | None) -> None:
        if cond is not None and not self.disc_conditional:
            raise ValueError(
                "cond was given but this loss was built with disc_conditional=False; "
                "pass cond=None or build it with disc_conditional=True"
            )
        if cond is None and self.disc_conditional:
            raise ValueError("this loss was built with disc_conditional=True, so cond (B, C', H, W) is required")
        if inputs.shape != reconstructions.shape:
            raise ValueError(
                f"inputs {tuple(inputs.shape)} and reconstructions {tuple(reconstructions.shape)} "
                f"must have the same shape"
            )

    def generator_loss(
        self,
        codebook_loss: torch.Tensor,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        global_step: int,
        last_layer: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The autoencoder's loss: ``nll_loss + d_weight * disc_factor * g_loss + codebook_weight * quant_loss``."""
        self._check_pair(inputs, reconstructions, cond)
        inputs, reconstructions = inputs.contiguous(), reconstructions.contiguous()
        disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)

        p_loss = self.perceptual(inputs, reconstructions)  # (B, 1, 1, 1)
        rec_loss = self.pixel_weight * (inputs - reconstructions).abs() + self.perceptual_weight * p_loss
        nll_loss = rec_loss.mean()

        if self.feature_matching_weight > 0:
            features_fake = self._discriminator_features(reconstructions, cond)
            logits_fake = features_fake[-1]
            with torch.no_grad():
                features_real = self._discriminator_features(inputs, cond)
            fm_loss = feature_matching_loss(features_real, features_fake)
        else:
            logits_fake = self._discriminate(reconstructions, cond)
            fm_loss = None
        g_loss = hinge_g_loss(logits_fake)

        if self.training and torch.is_grad_enabled() and disc_factor > 0:
            if last_layer is None:
                raise ValueError(
                    "the adaptive GAN weight needs the decoder's last layer weight: pass "
                    "last_layer=model.get_last_layer() (or call model.eval() / torch.no_grad() for evaluation)"
                )
            d_weight = self.calculate_adaptive_weight(nll_loss, g_loss, last_layer)
        else:
            d_weight = torch.zeros((), device=inputs.device)

        loss = nll_loss + d_weight * disc_factor * g_loss + self.codebook_weight * codebook_loss.mean()
        if fm_loss is not None:
            loss = loss + disc_factor * self.feature_matching_weight * fm_loss
        log = {
            f"{split}/total_loss": loss.detach().clone(),
            f"{split}/quant_loss": codebook_loss.detach().mean(),
            f"{split}/nll_loss": nll_loss.detach(),
            f"{split}/rec_loss": rec_loss.detach().mean(),
            f"{split}/p_loss": p_loss.detach().mean(),
            f"{split}/d_weight": d_weight.detach(),
            f"{split}/disc_factor": torch.tensor(float(disc_factor)),
            f"{split}/g_loss": g_loss.detach(),
        }
        if fm_loss is not None:
            log[f"{split}/fm_loss"] = fm_loss.detach()
        return loss, log

    def discriminator_loss(
        self,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        global_step: int,
        cond: torch.Tensor | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's loss ``disc_factor * disc_loss(D(x), D(x_hat))`` on detached images."""
        self._check_pair(inputs, reconstructions, cond)
        disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.discriminator_iter_start)
        logits_real = self._discriminate(inputs.detach().contiguous(), cond)
        logits_fake = self._discriminate(reconstructions.detach().contiguous(), cond)
        d_loss = disc_factor * self.disc_loss(logits_real, logits_fake)
        log = {
            f"{split}/disc_loss": d_loss.detach().clone(),
            f"{split}/logits_real": logits_real.detach().mean(),
            f"{split}/logits_fake": logits_fake.detach().mean(),
        }
        return d_loss, log

    def forward(
        self,
        codebook_loss: torch.Tensor,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        optimizer_idx: int,
        global_step: int,
        last_layer: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """taming's call: :meth:`generator_loss` for ``optimizer_idx=0``, :meth:`discriminator_loss` for 1."""
        if optimizer_idx == 0:
            return self.generator_loss(codebook_loss, inputs, reconstructions, global_step, last_layer, cond, split)
        if optimizer_idx == 1:
            return self.discriminator_loss(inputs, reconstructions, global_step, cond, split)
        raise ValueError(f"optimizer_idx must be 0 (autoencoder step) or 1 (discriminator step), got {optimizer_idx!r}")
