"""Non-contrastive losses (Course: :ref:`ch6-four-ways`): information maximisation (Barlow Twins, VICReg,
W-MSE), distillation (BYOL, SimSiam, DINO) and the clustering step of SwAV (Sinkhorn-Knopp).

None of them uses negatives; each prevents collapse in its own way, which chapter 6 removes
term by term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _float(x: Tensor) -> Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 under autocast -> fp32


def _off_diagonal(m: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, as a flat vector."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def _standardize(z: Tensor) -> Tensor:
    """``z`` (N, D) with each dimension centred and divided by its (biased) std; a dimension that
    is constant up to float rounding (std below 1e-6 of its magnitude) maps to 0, not to its
    rounding residue divided by a near-zero std."""
    mean = z.mean(0)
    centred = z - mean
    std = centred.square().mean(0).sqrt()
    constant = std <= 1e-6 * (1 + mean.abs())
    return torch.where(constant, 0.0, centred / torch.where(constant, 1.0, std))


def barlow_twins_terms(z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
    r"""Return Barlow Twins' two terms (Zbontar et al. 2021, eq. 1): (on-diagonal, off-diagonal).

    With each embedding dimension standardised over the batch (mean 0, std 1, biased as
    batch norm does; a constant dimension is 0), the cross-correlation matrix is
    :math:`C = \tilde z_1^\top \tilde z_2 / N`
    and

    .. math::
        \mathcal{L}_{on} = \sum_i (1 - C_{ii})^2, \qquad \mathcal{L}_{off} = \sum_{i \ne j} C_{ij}^2.

    Both are 0 when the two views' embeddings are perfectly correlated dimension by dimension
    and the dimensions are decorrelated. Shapes: z1, z2 (N, D). Course: :ref:`ch6-infomax`.
    """
    z1, z2 = _float(z1), _float(z2)
    n = z1.shape[0]
    c = _standardize(z1).T @ _standardize(z2) / n  # (D, D)
    return (1 - c.diagonal()).square().sum(), _off_diagonal(c).square().sum()


def barlow_twins(z1: Tensor, z2: Tensor, off_diagonal_weight: float = 5e-3) -> Tensor:
    r"""Return the Barlow Twins loss :math:`\mathcal{L}_{on} + \lambda \mathcal{L}_{off}`
    (``barlow_twins_terms``); :math:`\lambda = 5 \cdot 10^{-3}` is the paper's for 8,192 dimensions."""
    on, off = barlow_twins_terms(z1, z2)
    return on + off_diagonal_weight * off


def vicreg_invariance(z1: Tensor, z2: Tensor) -> Tensor:
    r"""Return VICReg's invariance term: the mean squared error between the two branches.

    .. math:: s(Z, Z') = \frac{1}{N D} \sum_{n=1}^{N} \lVert z_n - z'_n \rVert_2^2

    The paper's :math:`s(Z, Z')` (Bardes, Ponce & LeCun 2022, eq. 5) divides by N only; the
    reference implementation (``F.mse_loss``) also divides by D, and so does this function, which
    keeps the paper's weight of 25 meaningful at any D. Shapes: z1, z2 (N, D); returns a scalar.
    Course: :ref:`ch6-infomax`, :ref:`ch6b-vicreg-ablation`.
    """
    return F.mse_loss(_float(z1), _float(z2))


def vicreg_variance(z1: Tensor, z2: Tensor, eps: float = 1e-4) -> Tensor:
    r"""Return VICReg's variance term: a hinge that keeps every dimension's std above 1,
    averaged over the two branches.

    .. math::
        v(Z) = \frac1D \sum_{j=1}^{D} \max\bigl(0,\ 1 - \sqrt{\mathrm{Var}(Z_{\cdot j}) + \epsilon}\bigr),
        \qquad \text{term} = \tfrac12 \bigl[v(Z) + v(Z')\bigr]

    :math:`v` is the paper's eq. 1-2 (Bardes, Ponce & LeCun 2022) with target std
    :math:`\gamma = 1` and the unbiased variance over the batch. The paper's loss adds
    :math:`v(Z) + v(Z')`; the reference implementation averages them (the factor 1/2), and so does
    this function. Shapes: z1, z2 (N, D) with N >= 2; returns a scalar in [0, 1].
    Course: :ref:`ch6-infomax`, :ref:`ch6b-vicreg-ablation`.
    """
    std1 = torch.sqrt(_float(z1).var(0) + eps)  # (D,) per-dimension std over the batch
    std2 = torch.sqrt(_float(z2).var(0) + eps)
    return 0.5 * (F.relu(1 - std1).mean() + F.relu(1 - std2).mean())


def vicreg_covariance(z1: Tensor, z2: Tensor) -> Tensor:
    r"""Return VICReg's covariance term: each branch's squared off-diagonal covariances,
    summed over the two branches.

    .. math::
        C(Z) = \frac{1}{N-1} \sum_{n=1}^{N} (z_n - \bar z)(z_n - \bar z)^\top, \qquad
        c(Z) = \frac1D \sum_{i \ne j} C(Z)_{ij}^2, \qquad \text{term} = c(Z) + c(Z')

    The paper's eq. 3-4 (Bardes, Ponce & LeCun 2022); the reference implementation sums the two
    branches too. Shapes: z1, z2 (N, D) with N >= 2; returns a scalar.
    Course: :ref:`ch6-infomax`, :ref:`ch6b-vicreg-ablation`.
    """
    c = []
    for z in (_float(z1), _float(z2)):
        n, d = z.shape
        zc = z - z.mean(0)
        cov = zc.T @ zc / (n - 1)  # (D, D) unbiased covariance
        c.append(_off_diagonal(cov).square().sum() / d)
    return c[0] + c[1]


def vicreg_terms(z1: Tensor, z2: Tensor, eps: float = 1e-4) -> dict[str, Tensor]:
    r"""Return VICReg's three terms as a dict with keys ``invariance``, ``variance`` and
    ``covariance``: ``vicreg_invariance``, ``vicreg_variance`` and ``vicreg_covariance`` of the two
    branches, normalised as the reference implementation (Bardes, Ponce & LeCun 2022).

    Shapes: z1, z2 (N, D); each value is a scalar. Course: :ref:`ch6-infomax`, :ref:`ch6b-vicreg-ablation`.
    """
    return {"invariance": vicreg_invariance(z1, z2), "variance": vicreg_variance(z1, z2, eps),
            "covariance": vicreg_covariance(z1, z2)}


def vicreg(z1: Tensor, z2: Tensor, invariance_weight: float = 25.0, variance_weight: float = 25.0,
           covariance_weight: float = 1.0, eps: float = 1e-4) -> Tensor:
    """Return the VICReg loss: the weighted sum of ``vicreg_terms`` (weights 25/25/1: the paper)."""
    t = vicreg_terms(z1, z2, eps)
    return invariance_weight * t["invariance"] + variance_weight * t["variance"] + covariance_weight * t["covariance"]


def whiten(z: Tensor, eps: float = 0.0) -> Tensor:
    r"""Return the batch ``z`` (N, D) whitened by Cholesky: :math:`(z - \mu) L^{-\top}` with
    :math:`L L^\top = \mathrm{Cov}(z) + \epsilon I` (unbiased covariance), so the output has
    identity covariance. Needs N > D. Course: :ref:`ch6-infomax` (W-MSE, Ermolov et al. 2021)."""
    z = _float(z)
    n, d = z.shape
    if n <= d:
        raise ValueError(f"whitening {d} dimensions needs more than {d} samples, got {n}")
    zc = z - z.mean(0)
    cov = zc.T @ zc / (n - 1) + eps * torch.eye(d, dtype=z.dtype, device=z.device)
    chol = torch.linalg.cholesky(cov)
    return torch.linalg.solve_triangular(chol, zc.T, upper=False).T


def wmse(z1: Tensor, z2: Tensor, sub_batch: int = 128, eps: float = 0.0) -> Tensor:
    r"""Return the W-MSE loss (Ermolov et al. 2021): whiten each view's embeddings in
    sub-batches of ``sub_batch`` samples, then average the normalised squared distance
    :math:`\lVert \bar w_1 - \bar w_2 \rVert^2 = 2 - 2\cos(w_1, w_2)` of the positive pairs.

    The batch is split in order (shuffle before calling for random sub-batches); each
    sub-batch must be larger than the embedding dimension. Shapes: z1, z2 (N, D)."""
    losses = []
    for a, b in zip(z1.split(sub_batch), z2.split(sub_batch), strict=True):
        w1, w2 = whiten(a, eps), whiten(b, eps)
        losses.append(2 - 2 * F.cosine_similarity(w1, w2, dim=1))
    return torch.cat(losses).mean()


def negative_cosine(prediction: Tensor, target: Tensor) -> Tensor:
    r"""Return :math:`-\frac1N \sum_n \cos(p_n, \mathrm{sg}(z_n))`, the loss of SimSiam
    (Chen & He 2021, eq. 1-2) and, up to :math:`2 + 2\,\cdot`, of BYOL (Grill et al. 2020,
    eq. 2: :math:`\lVert \bar p - \bar z\rVert^2 = 2 - 2\cos`).

    ``target`` is detached here: the stop-gradient that keeps these methods from collapsing.
    Shapes: (N, D) each. Course: :ref:`ch6-distillation`."""
    return -F.cosine_similarity(_float(prediction), _float(target.detach()), dim=1).mean()


def dino_loss(student: Tensor, teacher: Tensor, center: Tensor, student_temperature: float = 0.1,
              teacher_temperature: float = 0.04) -> Tensor:
    r"""Return DINO's cross-entropy between teacher and student crops (Caron et al. 2021, eq. 1).

    Teacher probabilities are centred and sharpened, :math:`P_t = \mathrm{softmax}((g_t - c) / \tau_t)`
    (detached), student ones :math:`P_s = \mathrm{softmax}(g_s / \tau_s)`; the loss averages
    :math:`-\sum_k P_t^{(k)} \log P_s^{(k)}` over the samples and over every pair of a teacher
    crop and a *different* student crop (the first T student crops are the teacher's T global
    crops, in the same order).

    Args:
        student: (S, N, K) logits of S student crops (global ones first).
        teacher: (T, N, K) logits of the T global crops from the teacher.
        center: (K,) running mean of the teacher's logits (``dino_center``).
        student_temperature, teacher_temperature: :math:`\tau_s` = 0.1 and :math:`\tau_t`
            = 0.04 (the paper's final teacher temperature).
    """
    p_t = F.softmax((_float(teacher.detach()) - center) / teacher_temperature, dim=-1)
    return _cross_view_cross_entropy(student / student_temperature, p_t)


def _cross_view_cross_entropy(student_logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over samples and over pairs (target crop t, student crop s != t) of
    -sum_k targets[t] log softmax(student_logits[s]); shapes (S, N, K) and (T, N, K)."""
    log_p_s = F.log_softmax(_float(student_logits), dim=-1)
    total, pairs = 0.0, 0
    for t in range(targets.shape[0]):
        for s in range(log_p_s.shape[0]):
            if s != t:
                total = total + (-(targets[t] * log_p_s[s]).sum(-1)).mean()
                pairs += 1
    return total / pairs


@torch.no_grad()
def dino_center(center: Tensor, teacher: Tensor, momentum: float = 0.9) -> Tensor:
    """Return DINO's updated center: ``momentum * center + (1 - momentum) * mean`` of the
    teacher logits ``teacher`` (T, N, K) over crops and samples (the paper's m = 0.9)."""
    return momentum * center + (1 - momentum) * _float(teacher).mean(dim=(0, 1))


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    r"""Return SwAV's soft assignments Q (B, K) of B samples to K prototypes (Caron et al. 2020,
    eq. 3), computed from ``scores`` (B, K) = :math:`z^\top c` by Sinkhorn-Knopp.

    Starting from :math:`\exp(\text{scores} / \epsilon)`, rows and columns are rescaled in turn
    so that every prototype receives the same total mass :math:`B / K` (equipartition: no
    collapse onto one prototype) and every sample's row sums to 1. SwAV uses 3 iterations.
    """
    q = _float(scores) / epsilon
    q = torch.exp(q - q.max())  # stable: the global shift cancels in the normalisations
    b, k = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(0, keepdim=True) / k  # every prototype (column) gets mass 1/K
        q = q / q.sum(1, keepdim=True) / b  # every sample (row) gets mass 1/B
    return q * b  # rows sum to 1


def swav_loss(scores: Tensor, codes: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Return SwAV's swapped-prediction loss (Caron et al. 2020, eq. 1-2).

    Each crop's prototype scores :math:`z^\top c_k` predict the code (cluster assignment) of
    another crop: :math:`-\sum_k q_t^{(k)} \log \mathrm{softmax}(z_s^\top C / \tau)^{(k)}`,
    averaged over samples and over every pair of a coded crop t and a different crop s.

    Args:
        scores: (S, N, K) scores of S crops (the T coded crops first) against K prototypes,
            from L2-normalised embeddings and prototypes (so each lies in [-1, 1]).
        codes: (T, N, K) soft assignments of the first T crops (``sinkhorn_knopp``); detached.
        temperature: :math:`\tau` = 0.1 (the paper's).
    """
    return _cross_view_cross_entropy(scores / temperature, _float(codes.detach()))
