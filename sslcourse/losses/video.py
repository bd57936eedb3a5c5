"""Colour propagation between video frames (Vondrick et al. 2018, "Tracking emerges by
colorizing videos"): a pointer from every target position to the reference positions, the
values it copies, and the loss of the copied colours. Course: :ref:`ch4b-video`.

The same two functions, ``colour_pointer`` and ``propagate``, train the model (the values are
the reference frame's colours) and track with it (the values are one-hot object masks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_embeddings(f: Tensor, name: str) -> None:
    if f.ndim != 3:
        raise ValueError(f"{name} must be (B, N, D) embeddings (one row per position), got shape {tuple(f.shape)}")


def colour_pointer(f_target: Tensor, f_reference: Tensor, temperature: float = 1.0) -> Tensor:
    """Return the pointer A (B, Nt, Nr): for each target position i, a distribution over the
    reference positions j.

    .. math:: A_{ij} = \\frac{\\exp(f_i^\\top f_j / T)}{\\sum_k \\exp(f_i^\\top f_k / T)}

    (softmax over the reference positions j, one row per target position i). The paper uses
    raw dot products; here the caller chooses whether the embeddings are L2-normalised, and the
    temperature T sets how sharp the pointer is (T -> 0: each target position copies its most
    similar reference position).

    Args:
        f_target: (B, Nt, D) embeddings of the target frame's positions.
        f_reference: (B, Nr, D) embeddings of the reference frame's positions.
        temperature: T > 0.
    """
    _check_embeddings(f_target, "f_target")
    _check_embeddings(f_reference, "f_reference")
    if f_target.shape[0] != f_reference.shape[0] or f_target.shape[2] != f_reference.shape[2]:
        raise ValueError(f"f_target {tuple(f_target.shape)} and f_reference {tuple(f_reference.shape)} must share "
                         "the batch size B and the embedding size D")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.einsum("bid,bjd->bij", f_target, f_reference) / temperature  # b batch, i target, j reference
    return logits.softmax(dim=-1)


def propagate(pointer: Tensor, values_reference: Tensor) -> Tensor:
    """Return the values copied to every target position, (B, Nt, C): a convex combination
    of the reference values with the pointer's weights, :math:`\\hat v_i = \\sum_j A_{ij} v_j`.

    Args:
        pointer: (B, Nt, Nr) rows summing to 1 (``colour_pointer``).
        values_reference: (B, Nr, C) the reference frame's colours, or its one-hot (or soft)
            object masks when tracking.
    """
    if pointer.ndim != 3 or values_reference.ndim != 3:
        raise ValueError(f"pointer must be (B, Nt, Nr) and values_reference (B, Nr, C), got shapes "
                         f"{tuple(pointer.shape)} and {tuple(values_reference.shape)}")
    if pointer.shape[0] != values_reference.shape[0] or pointer.shape[2] != values_reference.shape[1]:
        raise ValueError(f"pointer {tuple(pointer.shape)} points to Nr={pointer.shape[2]} reference positions of "
                         f"{pointer.shape[0]} samples; values_reference {tuple(values_reference.shape)} must be "
                         "(B, Nr, C) with the same B and Nr")
    return torch.bmm(pointer, values_reference.to(pointer.dtype))


def colour_propagation_loss(pointer: Tensor, colours_reference: Tensor, colours_target: Tensor) -> Tensor:
    """Return the mean squared error between the colours the pointer copies from the reference
    frame and the target frame's true colours, averaged over positions and channels.

    .. math:: \\mathcal L = \\frac{1}{B N_t C} \\sum_{b,i} \\lVert \\sum_j A_{ij} c^{ref}_j - c^{tgt}_i \\rVert^2

    The paper quantises colours (16 clusters in Lab) and uses a cross-entropy over the
    clusters, because a regression averages the possible colours of an ambiguous position into
    a desaturated one. Here the copied colour is already a convex combination of colours that
    exist in the reference, and the course's videos hold few colours, so the regression is kept
    for its simplicity. Both colour tensors are detached (they are data, not predictions).

    Args:
        pointer: (B, Nt, Nr) from ``colour_pointer``; the gradient flows through it only.
        colours_reference: (B, Nr, C) colours of the reference positions.
        colours_target: (B, Nt, C) colours of the target positions.
    """
    copied = propagate(pointer, colours_reference.detach())
    if copied.shape != colours_target.shape:
        raise ValueError(f"colours_target must be (B, Nt, C) = {tuple(copied.shape)}, "
                         f"got {tuple(colours_target.shape)}")
    return F.mse_loss(copied, colours_target.detach().to(copied.dtype))
