"""Losses of colorization (Zhang, Isola & Efros 2016, "Colorful image colorization") and of
split-brain autoencoders (Zhang, Isola & Efros 2017): regression and multinomial
classification of the missing colour channels, per pixel.

Course: :ref:`ch4b-colorization` (why regression desaturates, and the classification fix).
"""

from __future__ import annotations

import torch
from torch import Tensor


def ab_regression_loss(pred_ab: Tensor, ab: Tensor) -> Tensor:
    r"""Return the per-pixel squared error of predicted colours, averaged over the pixels:

    .. math:: \mathcal L_2 = \frac{1}{BHW} \sum_{b,h,w} \lVert \hat Y_{bhw} - Y_{bhw} \rVert_2^2

    (Zhang et al. 2016, eq. 1, which sums over the pixels with a factor 1/2: the same loss up to
    scale). Its minimiser is the conditional mean of the colour, so an object that may be red or
    blue comes out grey: regression desaturates. ``ab`` is detached (a target).

    Args:
        pred_ab: (B, C, H, W) predicted channels (C = 2 for ab; any C, e.g. 1 for L).
        ab: (B, C, H, W) the true channels, in the same units.
    """
    if pred_ab.ndim != 4 or pred_ab.shape != ab.shape:
        raise ValueError(f"pred_ab and ab must be images of one shape (B, C, H, W), got "
                         f"{tuple(pred_ab.shape)} and {tuple(ab.shape)}")
    return (pred_ab - ab.detach()).pow(2).sum(1).mean()


def ab_classification_loss(logits: Tensor, soft_targets: Tensor, weights: Tensor | None = None) -> Tensor:
    r"""Return the multinomial cross-entropy of per-pixel bin logits, rebalanced per pixel
    (Zhang et al. 2016, eq. 2), averaged over the pixels:

    .. math:: \mathcal L_{cl} = -\frac{1}{BHW} \sum_{b,h,w} v_{bhw} \sum_q Z_{bhwq} \log \hat Z_{bhwq},
        \qquad \hat Z = \mathrm{softmax}_q(\text{logits})

    with Z the soft targets (``color.soft_encode``) and :math:`v_{bhw} = w_{q^*}` the rebalancing
    weight (``color.rebalancing_weights``) of the pixel's nearest bin :math:`q^* = \arg\max_q Z_{bhwq}`
    (the caller looks it up; None: v = 1). Targets and weights are detached.

    Args:
        logits: (B, Q, H, W) unnormalised scores over the Q bins.
        soft_targets: (B, Q, H, W) target distributions (summing to 1 over Q).
        weights: (B, H, W) per-pixel weights v, or None.
    """
    if logits.ndim != 4 or logits.shape != soft_targets.shape:
        raise ValueError(f"logits and soft_targets must both be (B, Q, H, W), got {tuple(logits.shape)} and "
                         f"{tuple(soft_targets.shape)}")
    b, _, h, w = logits.shape
    if weights is not None and weights.shape != (b, h, w):
        raise ValueError(f"weights must be per pixel (B, H, W) = {(b, h, w)}, got {tuple(weights.shape)}")
    per_pixel = -(soft_targets.detach() * torch.log_softmax(logits, dim=1)).sum(1)  # (B, H, W)
    if weights is not None:
        per_pixel = per_pixel * weights.detach()
    return per_pixel.mean()
