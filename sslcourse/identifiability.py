r"""Why unsupervised disentanglement is not identifiable: an entangling map that the data cannot see.

Locatello et al. 2019 ("Challenging common assumptions in the unsupervised learning of
disentangled representations", theorem 1): for a factorized prior
:math:`p(z) = \prod_i p(z_i)` in :math:`d > 1` dimensions there are infinitely many bijections
:math:`f` such that :math:`f(z)` has exactly the distribution of :math:`z`, yet every output
:math:`f_i` depends on every input :math:`z_j` (:math:`\partial f_i / \partial z_j \neq 0`). A
model that recovers :math:`f(z)` instead of :math:`z` explains the data equally well and is
completely entangled; without supervision or inductive biases nothing tells the two apart.

The proof's construction, implemented here: map each coordinate to :math:`N(0, 1)` through its
CDF and the inverse normal CDF, apply a rotation :math:`A` with no zero entry (a rotation keeps
:math:`N(0, I)`), map back. For a standard normal prior the CDF steps cancel and :math:`f(z) = A z`.

- ``random_rotation``: a random rotation with every entry away from 0.
- ``entangling_bijection`` / ``EntanglingBijection``: the map and its inverse.
- ``ks_statistics``: per-coordinate Kolmogorov-Smirnov statistic against the prior's marginal.
- ``jacobian`` / ``jacobian_density``: how many outputs depend on how many inputs.

book: chapter 7, ``ch7-identifiability`` (planned).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

MARGINALS = ("normal", "uniform")


def _check_marginal(marginal: str) -> None:
    if marginal not in MARGINALS:
        raise ValueError(f"marginal must be one of {MARGINALS}, got {marginal!r}")


def random_rotation(dim: int, generator: torch.Generator | None = None, min_abs_entry: float | None = None,
                    max_tries: int = 10_000) -> Tensor:
    r"""Return a random rotation :math:`A` (dim, dim), float64, with every :math:`|A_{ij}| \ge` ``min_abs_entry``.

    .. math:: A^\top A = I, \qquad \det A = +1, \qquad \min_{ij} |A_{ij}| \ge t

    A Haar-distributed rotation (QR of a Gaussian matrix, signs fixed so that the law is
    uniform, one column negated if needed for :math:`\det A = +1`) is dense with probability 1,
    but some entries may come out near 0, which would leave an output nearly independent of an
    input; draws with an entry below :math:`t` are rejected. The default
    :math:`t = 0.5\, d^{-5/2}` is the level below which about 0.4 of the :math:`d^2` entries
    (each roughly :math:`N(0, 1/d)`) would fall, so about two draws in three pass at any
    ``dim``. Since each row has unit norm, :math:`t < 1/\sqrt{d}` is required.
    Used for theorem 1 of Locatello et al. 2019 (its proof's rotation with no zero entry).

    Raises ValueError for ``dim < 2`` or an impossible ``min_abs_entry``; RuntimeError when
    ``max_tries`` draws all fail (pass a smaller ``min_abs_entry``).
    """
    if dim < 2:
        raise ValueError(f"a rotation that mixes coordinates needs dim >= 2, got {dim}")
    threshold = 0.5 * dim ** -2.5 if min_abs_entry is None else float(min_abs_entry)
    if not 0 <= threshold < dim ** -0.5:
        raise ValueError(f"min_abs_entry must be in [0, 1/sqrt(dim)) = [0, {dim ** -0.5:.4g}), got {threshold}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    for _ in range(max_tries):
        gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        # Without this sign fix QR's convention biases the distribution away from Haar.
        q = q * torch.sign(torch.diagonal(r))
        if torch.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        if q.abs().min() >= threshold:
            return q
    raise RuntimeError(f"no rotation with all |entries| >= {threshold:.3g} in {max_tries} draws; lower min_abs_entry")


def _marginal_cdf(x: Tensor, marginal: str) -> Tensor:
    if marginal == "normal":
        return torch.special.ndtr(x)
    return x.clamp(0.0, 1.0)


class EntanglingBijection(nn.Module):
    r"""The map :math:`f = g^{-1} \circ A \circ g` of Locatello et al. 2019 (theorem 1, proof).

    .. math:: g(z)_i = \Phi^{-1}(F(z_i)), \qquad f(z) = g^{-1}(A\, g(z)), \qquad f^{-1}(y) = g^{-1}(A^\top g(y))

    with :math:`F` the prior's marginal CDF (``"normal"``: :math:`N(0, 1)`, so :math:`g` is the
    identity and :math:`f(z) = A z`; ``"uniform"``: :math:`U(0, 1)`, :math:`F(u) = u`),
    :math:`\Phi` the standard normal CDF and :math:`A` a rotation (``rotation``, (dim, dim)).
    If :math:`z` has i.i.d. coordinates with CDF :math:`F` then :math:`g(z) \sim N(0, I)`, so
    :math:`A g(z) \sim N(0, I)` and :math:`f(z)` has the law of :math:`z`: same marginals, same
    independence. With :math:`x = g(z)`, :math:`y = A x` and :math:`p` the marginal density,

    .. math:: \frac{\partial f_i}{\partial z_j} = \frac{\phi(y_i)}{p(f_i(z))}\, A_{ij}\, \frac{p(z_j)}{\phi(x_j)}

    (:math:`\phi` the normal density), non-zero wherever :math:`A_{ij}` is.

    ``forward`` and ``inverse`` take (..., dim) tensors of a floating dtype and return the same
    shape. For ``"uniform"`` inputs must lie in [0, 1]; the end points (probability 0) are
    moved to the nearest interior value where :math:`\Phi^{-1}` is finite.
    """

    rotation: Tensor

    def __init__(self, rotation: Tensor, marginal: str = "normal") -> None:
        super().__init__()
        _check_marginal(marginal)
        if rotation.dim() != 2 or rotation.shape[0] != rotation.shape[1] or rotation.shape[0] < 2:
            raise ValueError(f"rotation must be a square (dim, dim) matrix with dim >= 2, got {tuple(rotation.shape)}")
        eye = torch.eye(rotation.shape[0], dtype=torch.float64)
        if not torch.allclose(rotation.double().T @ rotation.double(), eye, atol=1e-6):
            raise ValueError("rotation must be orthogonal (A^T A = I)")
        self.marginal = marginal
        self.register_buffer("rotation", rotation.detach().clone())

    @property
    def dim(self) -> int:
        return self.rotation.shape[0]

    def _to_gaussian(self, z: Tensor) -> Tensor:
        if self.marginal == "normal":
            return z
        eps = torch.finfo(z.dtype).eps
        return torch.special.ndtri(z.clamp(eps, 1 - eps))

    def _from_gaussian(self, x: Tensor) -> Tensor:
        return x if self.marginal == "normal" else torch.special.ndtr(x)

    def _check(self, z: Tensor) -> None:
        if not torch.is_floating_point(z):
            raise ValueError(f"input must be a floating tensor, got {z.dtype}")
        if z.dim() == 0 or z.shape[-1] != self.dim:
            raise ValueError(f"input must have shape (..., {self.dim}), got {tuple(z.shape)}")
        if self.marginal == "uniform" and z.numel() and (z.detach().min() < 0 or z.detach().max() > 1):
            raise ValueError("uniform-marginal inputs must lie in [0, 1]")

    def _map(self, z: Tensor, matrix: Tensor) -> Tensor:
        self._check(z)
        return self._from_gaussian(self._to_gaussian(z) @ matrix.to(z.dtype).T)

    def forward(self, z: Tensor) -> Tensor:
        """Return :math:`f(z)`, same shape as ``z`` (..., dim)."""
        return self._map(z, self.rotation)

    def inverse(self, y: Tensor) -> Tensor:
        """Return :math:`f^{-1}(y)`, same shape as ``y`` (..., dim)."""
        return self._map(y, self.rotation.T)


def entangling_bijection(dim: int, marginal: str = "normal", generator: torch.Generator | None = None,
                         min_abs_entry: float | None = None) -> EntanglingBijection:
    r"""Return the measure-preserving, fully entangling bijection of Locatello et al. 2019 (theorem 1).

    .. math:: f(z) = g^{-1}(A\, g(z)), \qquad g(z)_i = \Phi^{-1}(F(z_i))

    for a prior with i.i.d. ``marginal`` coordinates (``"normal"``: :math:`N(0, 1)`;
    ``"uniform"``: :math:`U(0, 1)`, as many generative factors are) in ``dim`` dimensions, with
    :math:`A` = ``random_rotation(dim, generator, min_abs_entry)``. The returned module maps
    (..., dim) to (..., dim) and has ``inverse``; see ``EntanglingBijection``.
    """
    _check_marginal(marginal)
    return EntanglingBijection(random_rotation(dim, generator, min_abs_entry), marginal)


def ks_statistics(samples: Tensor, marginal: str) -> Tensor:
    r"""Return the Kolmogorov-Smirnov statistic of each column of ``samples`` (n, d): shape (d,), float64.

    .. math:: D_j = \sup_x |F_{n,j}(x) - F(x)|
              = \max_{k} \max\Bigl(\frac{k}{n} - F(x_{(k)}),\ F(x_{(k)}) - \frac{k - 1}{n}\Bigr)

    with :math:`F_{n,j}` the empirical CDF of column :math:`j`, :math:`x_{(k)}` its sorted values
    and :math:`F` the CDF of ``marginal`` (``"normal"``: :math:`N(0, 1)`, ``"uniform"``:
    :math:`U(0, 1)`). The sup is reached at a sample, just before or after the ECDF's jump,
    hence the two terms (ties included: the group's last index wins the first term, its first
    the second). Kolmogorov 1933; under the null, :math:`P(D > 1.63/\sqrt{n}) \approx 1\%` for
    large n. Used to check that Locatello et al. 2019's entangling map keeps every marginal.
    """
    _check_marginal(marginal)
    if samples.dim() != 2 or samples.shape[0] == 0 or samples.shape[1] == 0:
        raise ValueError(f"samples must have shape (n, d) with n, d >= 1, got {tuple(samples.shape)}")
    if not torch.is_floating_point(samples):
        raise ValueError(f"samples must be a floating tensor, got {samples.dtype}")
    if not torch.isfinite(samples).all():
        raise ValueError("samples must be finite")
    n = samples.shape[0]
    cdf = _marginal_cdf(torch.sort(samples.detach().double(), dim=0).values, marginal)
    rank = torch.arange(1, n + 1, dtype=torch.float64, device=samples.device).unsqueeze(1)
    above = (rank / n - cdf).max(dim=0).values
    below = (cdf - (rank - 1) / n).max(dim=0).values
    return torch.maximum(above, below)


def jacobian(f: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    r"""Return the Jacobian :math:`J_{ij} = \partial f_i / \partial z_j` of ``f`` at the point ``z`` (dim,).

    Shape (m, dim) for ``f`` from :math:`\mathbb{R}^{dim}` to :math:`\mathbb{R}^m`, (dim, dim) for
    a bijection; by reverse-mode autograd (``torch.autograd.functional.jacobian``). Locatello
    et al. 2019, theorem 1: "entangled" means every :math:`J_{ij} \neq 0`.
    """
    if z.dim() != 1 or not torch.is_floating_point(z):
        raise ValueError(f"z must be one floating point of shape (dim,), got {tuple(z.shape)} {z.dtype}")
    point = z.detach()
    out = f(point)
    if not isinstance(out, Tensor) or out.dim() != 1:
        raise ValueError("f must map a (dim,) point to a (m,) tensor")
    return torch.autograd.functional.jacobian(f, point)


def jacobian_density(f: Callable[[Tensor], Tensor], z: Tensor, tol: float = 1e-6) -> float:
    r"""Return the share of Jacobian entries of ``f`` at ``z`` (dim,) with :math:`|J_{ij}| >` ``tol``.

    .. math:: \rho = \frac{1}{m\, d} \#\{(i, j) : |J_{ij}| > \mathrm{tol}\}

    1 for a completely entangled map (Locatello et al. 2019, theorem 1: every output depends on
    every input), 1/dim for a coordinate-wise map such as the identity (a diagonal Jacobian).
    """
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    return float((jacobian(f, z).abs() > tol).double().mean())
