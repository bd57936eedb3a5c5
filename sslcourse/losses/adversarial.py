r"""Adversarial losses on discriminator logits (Course: :ref:`ch3b-gan`, :ref:`ch3b-bigan`).

Goodfellow et al. 2014, "Generative Adversarial Nets": the discriminator D and the generator G
play :math:`\min_G \max_D V(D, G)` with the value function (eq. 1)

.. math::
    V(D, G) = \mathbb{E}_{x \sim p_{data}}[\log D(x)] + \mathbb{E}_{z \sim p_z}[\log(1 - D(G(z)))].

Both losses take logits :math:`\ell` (D's output before the sigmoid, :math:`D = \sigma(\ell)`) and
use :math:`-\log \sigma(\ell) = \mathrm{softplus}(-\ell)` and :math:`-\log(1 - \sigma(\ell)) =
\mathrm{softplus}(\ell)`, which stay finite for any logit (``log(sigmoid(l))`` underflows to
-inf once :math:`\sigma(\ell)` rounds to 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _logits(name: str, logits: Tensor) -> Tensor:
    """Return ``logits`` as one float (>= fp32) value per sample; a ValueError for other input."""
    if not logits.is_floating_point() or logits.numel() == 0 or (logits.ndim == 2 and logits.shape[1] != 1) \
            or logits.ndim > 2:
        raise ValueError(f"{name} must be non-empty float logits of shape (B,) or (B, 1); got "
                         f"{tuple(logits.shape)} {logits.dtype}")
    return logits.reshape(-1).to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> fp32


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    r"""Return the discriminator's loss, :math:`-V(D, G)` estimated on one batch of each kind:

    .. math::
        \mathcal{L}_D = -\frac{1}{N}\sum_i \log \sigma(\ell^{real}_i)
                        - \frac{1}{M}\sum_j \log\big(1 - \sigma(\ell^{fake}_j)\big)

    the binary cross-entropy of calling real samples 1 and generated ones 0 (Goodfellow et al.
    2014, eq. 1; maximising V over D is minimising this). At the game's equilibrium
    (:math:`D = 1/2` everywhere, logits 0) it is :math:`2 \ln 2`.

    Args:
        real_logits: (N,) or (N, 1) logits of D on data (BiGAN: on pairs (x, E(x))).
        fake_logits: (M,) or (M, 1) logits of D on generated samples (BiGAN: on (G(z), z)).
    Returns:
        scalar loss. Nothing is detached: the caller decides which player it trains (computing
        the fakes under ``torch.no_grad`` keeps the generator out of the graph).
    """
    real, fake = _logits("real_logits", real_logits), _logits("fake_logits", fake_logits)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake_logits: Tensor) -> Tensor:
    r"""Return the generator's non-saturating loss (Goodfellow et al. 2014, section 3):

    .. math:: \mathcal{L}_G = -\frac{1}{M}\sum_j \log \sigma(\ell^{fake}_j)

    instead of minimising :math:`\log(1 - D(G(z)))`, the term of V. Both have the same fixed
    point, but early in training D rejects the fakes confidently (:math:`\ell \ll 0`), where
    :math:`\log(1 - \sigma(\ell))` is flat: its gradient :math:`-\sigma(\ell)` vanishes and G
    learns nothing. The gradient of :math:`-\log \sigma(\ell)` is :math:`-(1 - \sigma(\ell))`,
    close to -1 exactly there: G learns fastest when it is worst. At logits 0 it is
    :math:`\ln 2`.

    Args:
        fake_logits: (M,) or (M, 1) logits of D on generated samples. BiGAN's encoder and
            generator use the same loss with the labels swapped: ``discriminator_loss(fake,
            real)``, i.e. this on the fakes plus :math:`-\log(1 - \sigma(\ell^{real}))`.
    Returns:
        scalar loss.
    """
    return F.softplus(-_logits("fake_logits", fake_logits)).mean()
