"""Representational similarity: how alike are two representations of the same inputs?

Every measure takes X (n, p1) and Y (n, p2): the features two networks (or two layers)
compute for the *same* n inputs, rows aligned. Computations run in float64 on the inputs'
device (a GPU works), because CCA and CKA subtract nearly equal quantities.

| measure | invariant to | reference |
| --- | --- | --- |
| ``rsa`` (Pearson RSMs) | isotropic scaling, feature permutation, per-input shifts | Kriegeskorte et al. 2008 |
| ``linear_cka``, ``rbf_cka`` | orthogonal maps, isotropic scaling | Kornblith et al. 2019 |
| ``cca`` (mean rho, R^2_CCA), ``svcca``, ``pwcca`` | invertible linear maps | Raghu et al. 2017; Morcos et al. 2018 |
| ``r2_lr`` | invertible linear maps of X | Kornblith et al. 2019 |

Course: :ref:`ch1b-comparing`, :ref:`ch1b-invariances`, :ref:`ch1b-svd`, :ref:`ch1b-sanity-check`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def _prepare(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Check shapes, cast to float64 and centre each feature (column)."""
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected two (n, p) matrices, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"X and Y must describe the same inputs: {x.shape[0]} rows vs {y.shape[0]} rows")
    x, y = x.to(torch.float64), y.to(x.device, torch.float64)
    return x - x.mean(0), y - y.mean(0)


def _ranks(v: Tensor) -> Tensor:
    """Ranks 0..n-1 of a vector (ties broken by order; the RSM entries are continuous)."""
    r = torch.empty_like(v)
    r[v.argsort()] = torch.arange(len(v), dtype=v.dtype, device=v.device)
    return r


def rsm(x: Tensor) -> Tensor:
    """Return the representational similarity matrix: Pearson correlation between the
    feature vectors of every pair of inputs, shape (n, n)."""
    x = x.to(torch.float64)
    x = x - x.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x @ x.T


def rsa(x: Tensor, y: Tensor) -> float:
    """Return RSA: the Spearman rank correlation of the upper triangles of rsm(X) and rsm(Y)."""
    _prepare(x, y)
    iu = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    a, b = rsm(x)[iu[0], iu[1]], rsm(y)[iu[0], iu[1]]
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra @ rb) / (ra.norm() * rb.norm()))


def linear_cka(x: Tensor, y: Tensor) -> float:
    r"""Return linear CKA in its feature-space form (centred X, Y):

    .. math:: \mathrm{CKA}(X, Y) = \frac{\|Y^\top X\|_F^2}{\|X^\top X\|_F\, \|Y^\top Y\|_F}

    Costs O(n p^2) instead of the O(n^2 p) of the Gram form (``kernel_cka``).
    """
    x, y = _prepare(x, y)
    return float((y.T @ x).square().sum() / ((x.T @ x).norm() * (y.T @ y).norm()))


def _centre_gram(k: Tensor) -> Tensor:
    """H K H with H = I - 11^T / n."""
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def kernel_cka(k: Tensor, l: Tensor) -> float:  # noqa: E741 - K and L are the paper's names
    r"""Return CKA of two Gram matrices: :math:`\mathrm{HSIC}(K, L) / \sqrt{\mathrm{HSIC}(K, K)\,\mathrm{HSIC}(L, L)}`
    with :math:`\mathrm{HSIC}(K, L) \propto \operatorname{tr}(KHLH)`."""
    kc, lc = _centre_gram(k.to(torch.float64)), _centre_gram(l.to(torch.float64))
    return float((kc * lc).sum() / (kc.norm() * lc.norm()))


def rbf_gram(x: Tensor, bandwidth: float = 0.5) -> Tensor:
    """Return the RBF Gram matrix exp(-d^2 / (2 sigma^2)) with sigma = ``bandwidth`` times the
    median distance between distinct inputs, i.e. over the n(n - 1) off-diagonal entries (the
    lower median for an even count; Kornblith et al. 2019 use fractions 0.2-0.8 of the median).

    Duplicated inputs count with their distance 0; only self-distances are left out."""
    x = x.to(torch.float64)
    n = len(x)
    # Beyond 25 rows cdist takes a matrix-product path whose self-distances are tiny positive
    # numbers, not 0: pick the off-diagonal entries by index, and set the diagonal to its exact 0.
    d2 = torch.cdist(x, x).square().fill_diagonal_(0.0)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=x.device)
    sigma = bandwidth * d2[off_diagonal].sqrt().median()
    return torch.exp(-d2 / (2 * sigma**2))


def rbf_cka(x: Tensor, y: Tensor, bandwidth: float = 0.5) -> float:
    """Return CKA with RBF kernels (bandwidth rule of ``rbf_gram``)."""
    _prepare(x, y)
    return kernel_cka(rbf_gram(x, bandwidth), rbf_gram(y, bandwidth))


@dataclass
class CCAResult:
    """Canonical correlations rho (descending) and the two summaries of them."""

    rho: Tensor
    mean_rho: float  # mean canonical correlation, rho-bar
    r2_cca: float  # mean squared canonical correlation, R^2_CCA


def _nonzero_svd(x: Tensor, rtol: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Left singular vectors and singular values of X, without the numerically zero ones."""
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    keep = s > rtol * s.max()
    return u[:, keep], s[keep]


def _orthonormal_basis(x: Tensor, rtol: float = 1e-10) -> Tensor:
    """Return an orthonormal basis of X's column space: Q of the reduced QR decomposition, or,
    when X is rank-deficient (dead ReLU units, more features than inputs), the left singular
    vectors whose singular values exceed ``rtol`` times the largest. QR alone would add
    arbitrary directions for the missing rank and make every CCA score meaningless."""
    q, r = torch.linalg.qr(x, mode="reduced")
    diag = r.diagonal().abs()
    if len(diag) and diag.min() > rtol ** 0.5 * diag.max():
        return q
    return _nonzero_svd(x, rtol)[0]


def cca(x: Tensor, y: Tensor) -> CCAResult:
    """Return the canonical correlations of X and Y: the singular values of Q_X^T Q_Y, where
    Q_X, Q_Y are orthonormal bases (QR) of the centred column spaces."""
    x, y = _prepare(x, y)
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        warnings.warn(f"CCA with fewer inputs ({x.shape[0]}) than features ({max(x.shape[1], y.shape[1])}): "
                      "the canonical correlations are all close to 1 whatever the data", stacklevel=2)
    rho = torch.linalg.svdvals(_orthonormal_basis(x).T @ _orthonormal_basis(y)).clamp(0, 1)
    # Summaries average over the smaller dimension (a direction missing from one space has rho = 0).
    k = min(x.shape[1], y.shape[1])
    rho = torch.cat([rho, rho.new_zeros(max(0, k - len(rho)))])
    return CCAResult(rho=rho, mean_rho=float(rho.mean()), r2_cca=float(rho.square().mean()))


def pca_reduce(x: Tensor, k: int | None = None, variance: float = 0.99) -> Tensor:
    """Return the scores of X on its top principal components: ``k`` of them, or as many as
    explain ``variance`` of the total variance."""
    x = x.to(torch.float64)
    x = x - x.mean(0)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    if k is None:
        explained = s.square().cumsum(0) / s.square().sum()
        k = int((explained < variance).sum()) + 1
    return u[:, :k] * s[:k]


def svcca(x: Tensor, y: Tensor, k: int | None = None, variance: float = 0.99) -> float:
    """Return SVCCA: the mean canonical correlation after reducing X and Y to their top
    principal components (``k`` each, or enough for ``variance``; Raghu et al. 2017)."""
    _prepare(x, y)
    return cca(pca_reduce(x, k, variance), pca_reduce(y, k, variance)).mean_rho


def pwcca(x: Tensor, y: Tensor) -> float:
    r"""Return projection-weighted CCA (Morcos et al. 2018): canonical correlations weighted
    by how much of X each canonical variate accounts for,

    .. math:: \alpha_i = \sum_j |\langle h_i, x_j \rangle|, \qquad
              \mathrm{PWCCA} = \sum_i \alpha_i \rho_i / \sum_i \alpha_i,

    with :math:`h_i` the i-th canonical variate of X (unit vector over the n inputs) and
    :math:`x_j` the j-th column of X. The weights come from X, so PWCCA(X, Y) != PWCCA(Y, X).
    """
    x, y = _prepare(x, y)
    qx, qy = _orthonormal_basis(x), _orthonormal_basis(y)
    u, rho, _ = torch.linalg.svd(qx.T @ qy, full_matrices=False)
    h = qx @ u  # (n, r) canonical variates of X
    alpha = (h.T @ x).abs().sum(1)  # (r,)
    return float((alpha * rho.clamp(0, 1)).sum() / alpha.sum())


def r2_lr(x: Tensor, y: Tensor) -> float:
    r"""Return :math:`R^2_{LR}`: the fraction of Y's variance explained by least-squares
    regression on X, :math:`\|Q_X^\top Y\|_F^2 / \|Y\|_F^2` (Kornblith et al. 2019, eq. 12)."""
    x, y = _prepare(x, y)
    return float((_orthonormal_basis(x).T @ y).square().sum() / y.square().sum())


def svd_view(x: Tensor, y: Tensor) -> dict[str, float]:
    r"""Return R^2_CCA, R^2_LR and linear CKA computed from one SVD of each representation.

    With :math:`X = U_X \Sigma_X V_X^\top` and :math:`Y = U_Y \Sigma_Y V_Y^\top` (centred),
    all three are weighted sums of the squared overlaps :math:`\langle u^i_X, u^j_Y\rangle^2`
    of the left singular vectors (Kornblith et al. 2019, section 4):

    - :math:`R^2_{CCA}`: every overlap weighted equally, divided by :math:`\min(p_1, p_2)`;
    - :math:`R^2_{LR}`: overlaps weighted by :math:`\sigma_{Y,j}^2`, divided by :math:`\sum_j \sigma_{Y,j}^2`;
    - linear CKA: weighted by :math:`\sigma_{X,i}^2 \sigma_{Y,j}^2`, divided by
      :math:`\sqrt{\sum_i \sigma_{X,i}^4 \sum_j \sigma_{Y,j}^4}`.
    """
    x, y = _prepare(x, y)
    ux, sx = _nonzero_svd(x)
    uy, sy = _nonzero_svd(y)
    overlap = (ux.T @ uy).square()  # (p1, p2)
    return {
        "r2_cca": float(overlap.sum() / min(x.shape[1], y.shape[1])),
        "r2_lr": float((overlap * sy.square()).sum() / sy.square().sum()),
        "linear_cka": float((sx.square() @ overlap @ sy.square()) / (sx.pow(4).sum() * sy.pow(4).sum()).sqrt()),
    }


MEASURES = {
    "linear CKA": linear_cka,
    "RBF CKA": rbf_cka,
    "RSA": rsa,
    "mean CCA": lambda x, y: cca(x, y).mean_rho,
    "R2 CCA": lambda x, y: cca(x, y).r2_cca,
    "SVCCA": svcca,
    "PWCCA": pwcca,
    "R2 LR": r2_lr,
}


def layer_similarity(layers_a: list[Tensor], layers_b: list[Tensor], measure: Callable[[Tensor, Tensor], float]
                     ) -> Tensor:
    """Return the (La, Lb) matrix of ``measure`` between every layer of network A and of B."""
    return torch.tensor([[measure(a, b) for b in layers_b] for a in layers_a])


def best_match_fraction(matrix: Tensor) -> float:
    """Return the fraction of layers of A whose most similar layer of B is the same layer
    (Kornblith et al. 2019's sanity check: a good measure finds each layer's counterpart)."""
    return float((matrix.argmax(1) == torch.arange(len(matrix))).float().mean())
