"""Losses of masked prediction: MAE's masked-patch regression and the context encoder's
masked-pixel reconstruction. Course: :ref:`ch4b-inpainting`, :ref:`ch4b-mae`."""

from __future__ import annotations

from torch import Tensor


def normalize_patches(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Return each patch standardised by its own statistics, (B, N, D) -> (B, N, D):
    (x - mean(x)) / sqrt(var(x) + eps), mean and (unbiased) variance over the patch's D = p²C values.

    MAE's normalised-pixel targets (He et al. 2022, Table 1d; eps 1e-6 as their code).
    """
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def mae_loss(pred: Tensor, target_patches: Tensor, mask: Tensor, normalize_target: bool = False) -> Tensor:
    """Return MAE's loss: the per-patch mean squared error averaged over the masked patches only.

        L = sum_{b,n} m_bn * (1/D) ||pred_bn - t_bn||² / sum_{b,n} m_bn

    with t = target_patches, or ``normalize_patches(target_patches)`` when ``normalize_target``
    (He et al. 2022, Masked Autoencoders Are Scalable Vision Learners). The visible patches
    (m = 0) get no gradient: the paper found a loss on them lowers accuracy.

    Args:
        pred: (B, N, D) the decoder's prediction of every patch.
        target_patches: (B, N, D) the true patches (``masking.patchify``); detached here.
        mask: (B, N) bool or {0, 1}, True/1 = masked.
        normalize_target: regress per-patch normalised pixels.
    """
    if pred.shape != target_patches.shape or pred.ndim != 3:
        raise ValueError(f"pred and target_patches must both be (B, N, D), got {tuple(pred.shape)} "
                         f"and {tuple(target_patches.shape)}")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must be (B, N) = {tuple(pred.shape[:2])}, got {tuple(mask.shape)}")
    target = target_patches.detach()
    if normalize_target:
        target = normalize_patches(target)
    m = mask.to(pred.dtype)
    if m.sum() == 0:
        raise ValueError("mask has no masked patch: MAE's loss is undefined")
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * m).sum() / m.sum()


def masked_reconstruction_loss(pred: Tensor, target: Tensor, mask: Tensor, context_weight: float = 0.0) -> Tensor:
    """Return the inpainting loss: mean squared error over the masked pixels, plus
    ``context_weight`` times the mean squared error over the visible ones.

        L = sum m (x̂ - x)² / sum m  +  w * sum (1 - m)(x̂ - x)² / sum (1 - m)

    The first term is the context encoder's reconstruction loss ||M ⊙ (x - F((1 - M) ⊙ x))||²
    (Pathak et al. 2016), as a mean over the hidden pixels and channels; their adversarial term
    is not used. w = 0 (the default) reads the hole only; a small w > 0 also asks the decoder to
    reproduce the context it was shown (the paper instead weighs a thin border that overlaps the
    context 10 times more).

    Args:
        pred: (B, C, H, W) the decoder's image.
        target: (B, C, H, W) the original image; detached here.
        mask: (B, H, W) or (H, W) bool, True = hidden (shared by the channels).
        context_weight: w >= 0.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must both be (B, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if mask.shape[-2:] != pred.shape[-2:] or mask.ndim not in (2, 3):
        raise ValueError(f"mask must be (B, H, W) or (H, W) with (H, W) = {tuple(pred.shape[-2:])}, "
                         f"got {tuple(mask.shape)}")
    if context_weight < 0:
        raise ValueError(f"context_weight must be >= 0, got {context_weight}")
    m = mask.to(pred.dtype).expand(pred.shape[0], *pred.shape[-2:]).unsqueeze(1)  # (B, 1, H, W)
    if m.sum() == 0:
        raise ValueError("mask hides no pixel: nothing to reconstruct")
    sq = (pred - target.detach()).pow(2)
    channels = pred.shape[1]
    loss = (sq * m).sum() / (m.sum() * channels)
    if context_weight > 0:
        visible = 1 - m
        loss = loss + context_weight * (sq * visible).sum() / (visible.sum() * channels).clamp(min=1)
    return loss
