"""Diagnostics of learned embeddings (collapse, spread) used during training and in ch. 6-7."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def embedding_std(z: Tensor) -> Tensor:
    r"""Return the mean per-dimension std of the L2-normalized embeddings ``z`` (N, D).

    Complete collapse (every input mapped to one point) gives 0; embeddings spread evenly
    over the unit sphere give about :math:`1/\sqrt{D}`. Course: :ref:`ch6-collapse`.
    Used as the collapse signal in SimSiam (Chen & He 2021, fig. 2).
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean()


@torch.no_grad()
def singular_values(z: Tensor) -> Tensor:
    """Return the singular values (descending) of the embedding matrix ``z`` (N, D), float64.

    The spectrum of a batch of embeddings shows dimensional collapse: a few large values
    and a tail at zero (Course: :ref:`ch6-collapse`, :ref:`ch6b-vicreg-ablation`; Jing et al. 2022)."""
    return torch.linalg.svdvals(z.double())


@torch.no_grad()
def effective_rank(z: Tensor) -> float:
    r"""Return the effective rank of ``z`` (N, D) (Roy & Vetterli 2007; RankMe, Garrido et al. 2023):

    .. math:: \mathrm{erank}(z) = \exp\Bigl(-\sum_i p_i \log p_i\Bigr), \qquad p_i = \sigma_i / \sum_j \sigma_j

    over the singular values :math:`\sigma_i`. Between 1 (every embedding on one line, e.g.
    complete collapse to a point) and min(N, D) (a flat spectrum). Course: :ref:`ch6-collapse`."""
    return float(effective_rank_tensor(z.double()))


@torch.no_grad()
def effective_rank_tensor(z: Tensor) -> Tensor:
    """``effective_rank`` as a 0-d tensor on ``z``'s device, in ``z``'s precision (at least
    float32), without a host synchronisation: for logging inside a training step."""
    s = torch.linalg.svdvals(z.to(torch.promote_types(z.dtype, torch.float32)))
    p = s / s.sum().clamp_min(torch.finfo(s.dtype).tiny)
    return torch.exp(-torch.special.xlogy(p, p).sum())


@torch.no_grad()
def layer_features(net: torch.nn.Module, images: Tensor, layers: list[torch.nn.Module],
                   batch_size: int = 256) -> list[Tensor]:
    """Return the output of each module in ``layers`` for uint8 ``images`` (n, C, H, W), with
    convolutional maps averaged over space: one (n, channels) tensor per layer.

    Runs ``net`` in eval mode through forward hooks (Course: :ref:`ch1b-sanity-check`)."""
    outputs: list[list[Tensor]] = [[] for _ in layers]

    def hook(i: int):  # noqa: ANN202 - returns a hook closure
        def store(_module: torch.nn.Module, _inp: object, out: Tensor) -> None:
            outputs[i].append((out.mean(dim=(2, 3)) if out.ndim == 4 else out).float().cpu())
        return store

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    try:
        for i in range(0, len(images), batch_size):
            net(images[i : i + batch_size].to(device).float().div(255))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return [torch.cat(o) for o in outputs]


@torch.no_grad()
def class_separation(features: Tensor, labels: Tensor) -> float:
    r"""Return the class separation :math:`R^2` of ``features`` (N, D) with ``labels`` (N,)
    (Kornblith et al. 2021, "Why do better loss functions lead to less transferable features?",
    sec. 5): one minus the ratio of the average within-class cosine distance to the average
    cosine distance over all pairs, each class weighted equally,

    .. math:: R^2 = 1 - \bar d_\text{within} / \bar d_\text{total}, \qquad
       \bar d_\text{within} = \frac{1}{K}\sum_k \operatorname*{mean}_{m, n \in k} (1 - \cos(x_m, x_n)), \qquad
       \bar d_\text{total} = \frac{1}{K^2}\sum_{j, k} \operatorname*{mean}_{m \in j, n \in k} (1 - \cos(x_m, x_n)).

    The mean cosine over the pairs of two sets is the dot product of their mean unit vectors
    :math:`\mu_j = \operatorname{mean}_{m \in j} x_m / \lVert x_m \rVert`, so
    :math:`\bar d_\text{within} = 1 - \frac{1}{K}\sum_k \lVert\mu_k\rVert^2` and
    :math:`\bar d_\text{total} = 1 - \lVert \frac{1}{K}\sum_k \mu_k \rVert^2` (pairs of an image
    with itself included, as in the paper's sums). 0: classes no more compact than the data;
    1: each class on one direction. Course: :ref:`ch2-tradeoffs`."""
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features must be (N, D) and labels (N,); got {tuple(features.shape)} and "
                         f"{tuple(labels.shape)}")
    unit = F.normalize(features.double(), dim=1)
    means = torch.stack([unit[labels == k].mean(0) for k in labels.unique()])
    within = 1 - means.pow(2).sum(1).mean()
    total = 1 - means.mean(0).pow(2).sum()
    return float(1 - within / total)


@torch.no_grad()
def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Return the principal angles, in degrees and ascending, between the column spaces of ``a``
    (D, k) and ``b`` (D, m): with orthonormal bases Q_a, Q_b, the cosines are the singular values
    of Q_a^T Q_b (Bjorck & Golub 1973). All zero means one space contains the other; they do not
    change when either basis is replaced by any invertible combination of its columns, which is
    why they compare a linear autoencoder's decoder with the principal components
    (Course: :ref:`ch3-linear-ae`)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected two bases (D, k) and (D, m) with the same D, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    qa, qb = torch.linalg.qr(a.double()).Q, torch.linalg.qr(b.double()).Q
    cosines = torch.linalg.svdvals(qa.T @ qb).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cosines))  # svdvals are descending: the angles ascend
