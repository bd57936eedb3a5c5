from __future__ import annotations

import math

import pytest
import torch

from sslcourse.identifiability import (
    EntanglingBijection,
    entangling_bijection,
    jacobian,
    jacobian_density,
    ks_statistics,
    random_rotation,
)

N = 20_000
DIM = 4


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def prior(marginal: str, n: int = N, dim: int = DIM, seed: int = 0) -> torch.Tensor:
    if marginal == "normal":
        return torch.randn(n, dim, generator=gen(seed), dtype=torch.float64)
    return torch.rand(n, dim, generator=gen(seed), dtype=torch.float64)


def critical_value(n: int) -> float:
    """The KS test's 1% critical value for large n."""
    return 1.63 / math.sqrt(n)


def naive_ks(column: list[float], cdf) -> float:
    """sup |ECDF - F| checked on both sides of every jump, one sample at a time."""
    xs = sorted(column)
    n = len(xs)
    worst = 0.0
    for x in xs:
        at_or_below = sum(v <= x for v in xs) / n
        below = sum(v < x for v in xs) / n
        worst = max(worst, abs(at_or_below - cdf(x)), abs(below - cdf(x)))
    return worst


@pytest.mark.parametrize("dim", [2, 3, 8, 16])
def test_random_rotation_is_a_dense_rotation(dim):
    a = random_rotation(dim, gen(dim))
    assert a.shape == (dim, dim) and a.dtype == torch.float64
    torch.testing.assert_close(a.T @ a, torch.eye(dim, dtype=torch.float64))
    assert torch.linalg.det(a).item() == pytest.approx(1.0)
    assert a.abs().min() >= 0.5 * dim ** -2.5


def test_random_rotation_is_reproducible_and_honours_the_threshold():
    torch.testing.assert_close(random_rotation(5, gen(3)), random_rotation(5, gen(3)))
    assert not torch.allclose(random_rotation(5, gen(3)), random_rotation(5, gen(4)))
    assert random_rotation(3, gen(0), min_abs_entry=0.2).abs().min() >= 0.2


def mapped_prior(marginal: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples z of the prior and their images y under a bijection drawn with ``seed``."""
    z = prior(marginal)
    with torch.no_grad():
        return z, entangling_bijection(DIM, marginal, gen(seed))(z)


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_bijection_preserves_every_marginal(marginal):
    z, y = mapped_prior(marginal, 1)
    assert (ks_statistics(z, marginal) < critical_value(N)).all()
    assert (ks_statistics(y, marginal) < critical_value(N)).all()
    # The check has power: a 10% rescaling of the same samples fails it.
    scaled = y * 1.1 if marginal == "normal" else y * 0.9
    assert (ks_statistics(scaled, marginal) > critical_value(N)).all()


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_inverse_inverts(marginal):
    f = entangling_bijection(DIM, marginal, gen(2))
    z = prior(marginal, n=500)
    with torch.no_grad():
        torch.testing.assert_close(f.inverse(f(z)), z, atol=1e-9, rtol=0)
        torch.testing.assert_close(f(f.inverse(z)), z, atol=1e-9, rtol=0)
    assert f(z[0]).shape == (DIM,)


def test_normal_case_is_the_rotation_and_keeps_the_covariance():
    f = entangling_bijection(DIM, "normal", gen(3))
    z = prior("normal")
    with torch.no_grad():
        y = f(z)
    torch.testing.assert_close(y, z @ f.rotation.T)
    # Sample covariance of n standard normals: entries within a few / sqrt(n) of I.
    torch.testing.assert_close(torch.cov(y.T), torch.eye(DIM, dtype=torch.float64), atol=4 / math.sqrt(N), rtol=0)


def _off_diagonal_abs_max(matrix: torch.Tensor) -> float:
    return float((matrix - torch.diag(torch.diagonal(matrix))).abs().max())


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_outputs_stay_independent(marginal):
    _, y = mapped_prior(marginal, 4)
    centred = y - (0.0 if marginal == "normal" else 0.5)
    assert _off_diagonal_abs_max(torch.corrcoef(centred.T)) < 4 / math.sqrt(N)
    # Uncorrelated is not independent; squares catch a dependence that correlation misses.
    assert _off_diagonal_abs_max(torch.corrcoef((centred ** 2).T)) < 4 / math.sqrt(N)


def test_rotating_uniform_factors_directly_would_break_independence():
    # Why the construction goes through N(0, 1): rotating centred uniforms by 45 degrees keeps
    # them uncorrelated but makes their squares correlated (analytically -0.43).
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    y = (prior("uniform", dim=2) - 0.5) @ rotation.T
    assert abs(torch.corrcoef(y.T)[0, 1]) < 4 / math.sqrt(N)
    assert torch.corrcoef((y ** 2).T)[0, 1] == pytest.approx(-3 / 7, abs=0.03)


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_jacobian_is_dense_and_matches_the_analytic_form(marginal):
    f = entangling_bijection(DIM, marginal, gen(5))
    a = f.rotation
    for z in prior(marginal, n=5, seed=9):
        j = jacobian(f, z)
        assert j.shape == (DIM, DIM)
        assert jacobian_density(f, z, tol=1e-6) == 1.0
        if marginal == "normal":
            expected = a
        else:
            normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
            x = normal.icdf(z)
            y = a @ x
            # d/du_j Phi(y_i) = phi(y_i) A_ij / phi(x_j): uniform densities are 1.
            expected = normal.log_prob(y).exp().unsqueeze(1) * a / normal.log_prob(x).exp().unsqueeze(0)
        torch.testing.assert_close(j, expected)


def test_identity_jacobian_is_diagonal():
    z = prior("normal", n=1)[0]
    torch.testing.assert_close(jacobian(lambda v: v, z), torch.eye(DIM, dtype=torch.float64))
    assert jacobian_density(lambda v: v, z) == pytest.approx(1 / DIM)
    assert jacobian_density(lambda v: v ** 3, z) == pytest.approx(1 / DIM)


def test_ks_statistic_on_analytic_cases():
    # One sample at 0.5: the ECDF jumps from 0 to 1 where F = 0.5.
    assert ks_statistics(torch.tensor([[0.5]]), "uniform").item() == pytest.approx(0.5)
    # Samples at the midpoints (k - 1/2) / n: the ECDF is off by exactly 1 / (2n) at each jump.
    n = 10
    mid = ((torch.arange(n, dtype=torch.float64) + 0.5) / n).unsqueeze(1)
    assert ks_statistics(mid, "uniform").item() == pytest.approx(1 / (2 * n))
    # All samples at 0 under N(0, 1): the jump from 0 to 1 at F = 0.5.
    assert ks_statistics(torch.zeros(7, 2), "normal").tolist() == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_ks_statistic_matches_a_naive_scan_with_ties(marginal):
    values = prior(marginal, n=40, dim=2, seed=11)
    values[5:9, 0] = values[0, 0]  # ties
    normal = torch.distributions.Normal(0.0, 1.0)
    cdf = (lambda x: float(normal.cdf(torch.tensor(x)))) if marginal == "normal" else (lambda x: min(max(x, 0.0), 1.0))
    got = ks_statistics(values, marginal)
    for column in range(2):
        assert got[column].item() == pytest.approx(naive_ks(values[:, column].tolist(), cdf), abs=1e-6)


@pytest.mark.parametrize("marginal", ["normal", "uniform"])
def test_ks_statistic_matches_scipy(marginal):
    stats = pytest.importorskip("scipy.stats")
    values = prior(marginal, n=300, dim=3, seed=12)
    expected = [stats.kstest(values[:, j].numpy(), "norm" if marginal == "normal" else "uniform").statistic
                for j in range(3)]
    assert ks_statistics(values, marginal).tolist() == pytest.approx(expected, abs=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="dim >= 2"):
        random_rotation(1)
    with pytest.raises(ValueError, match="min_abs_entry"):
        random_rotation(4, min_abs_entry=0.5)  # rows have unit norm: some |entry| <= 1/2
    with pytest.raises(ValueError, match="max_tries"):
        random_rotation(4, max_tries=0)
    with pytest.raises(RuntimeError, match="lower min_abs_entry"):
        random_rotation(8, gen(0), min_abs_entry=0.34, max_tries=3)
    with pytest.raises(ValueError, match="marginal"):
        entangling_bijection(3, "laplace")
    with pytest.raises(ValueError, match="orthogonal"):
        EntanglingBijection(2 * torch.eye(3))
    with pytest.raises(ValueError, match="square"):
        EntanglingBijection(torch.eye(3)[:2])
    f = entangling_bijection(3, "uniform", gen(0))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        f(torch.rand(5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        f(torch.full((2, 3), 1.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating"):
        f(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        ks_statistics(torch.rand(10), "uniform")
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        ks_statistics(torch.rand(0, 2), "uniform")
    with pytest.raises(ValueError, match="finite"):
        ks_statistics(torch.tensor([[float("nan")]]), "normal")
    with pytest.raises(ValueError, match="marginal"):
        ks_statistics(torch.rand(10, 2), "gaussian")
    with pytest.raises(ValueError, match=r"\(dim,\)"):
        jacobian(lambda v: v, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(m,\)"):
        jacobian(lambda v: v.sum(), torch.zeros(2))
    with pytest.raises(ValueError, match="tol"):
        jacobian_density(lambda v: v, torch.zeros(2), tol=-1.0)
