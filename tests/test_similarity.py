from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest
import torch

from sslcourse import similarity as sim


def reps(n: int = 300, p1: int = 20, p2: int = 15, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two related representations: Y is a noisy non-linear function of X."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p1, generator=gen, dtype=torch.float64)
    y = torch.tanh(x[:, :p2] @ torch.randn(p2, p2, generator=gen, dtype=torch.float64)) + 0.5 * torch.randn(
        n, p2, generator=gen, dtype=torch.float64)
    return x, y


def orthogonal(p: int, seed: int = 1) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(p, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)).Q


def invertible(p: int, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(p, p, generator=gen, dtype=torch.float64) + 0.1 * torch.eye(p, dtype=torch.float64)


@pytest.mark.parametrize("name", list(sim.MEASURES))
def test_every_measure_of_a_representation_with_itself_is_one(name):
    x, _ = reps()
    assert sim.MEASURES[name](x, x) == pytest.approx(1.0, abs=1e-6)


def test_linear_cka_invariant_to_orthogonal_maps_and_isotropic_scaling():
    x, y = reps()
    base = sim.linear_cka(x, y)
    assert sim.linear_cka(x @ orthogonal(20), 3.7 * y @ orthogonal(15)) == pytest.approx(base, abs=1e-10)


def test_linear_cka_changes_under_a_general_invertible_map():
    x, y = reps()
    assert abs(sim.linear_cka(x @ invertible(20), y) - sim.linear_cka(x, y)) > 1e-3


def svcca_all_components(a: torch.Tensor, b: torch.Tensor) -> float:
    """SVCCA keeping every component: PCA truncation is not invariant to linear maps."""
    return sim.svcca(a, b, variance=1.0 + 1e-9)


@pytest.mark.parametrize("fn", [sim.MEASURES["mean CCA"], sim.MEASURES["R2 CCA"], svcca_all_components],
                         ids=["mean CCA", "R2 CCA", "SVCCA"])
def test_cca_family_invariant_to_invertible_linear_maps_of_either_side(fn):
    x, y = reps()
    assert fn(x @ invertible(20), y @ invertible(15, 3)) == pytest.approx(fn(x, y), abs=1e-8)


def test_r2_lr_invariant_to_invertible_linear_maps_of_x():
    """Regression of Y on X: only X's column space matters."""
    x, y = reps()
    assert sim.r2_lr(x @ invertible(20), y) == pytest.approx(sim.r2_lr(x, y), abs=1e-8)


def test_pwcca_invariant_to_linear_maps_of_y_but_not_of_x():
    """Its weights come from X's own columns."""
    x, y = reps()
    assert sim.pwcca(x, y @ invertible(15)) == pytest.approx(sim.pwcca(x, y), abs=1e-8)
    assert abs(sim.pwcca(x @ invertible(20), y) - sim.pwcca(x, y)) > 1e-4


def test_rsa_invariant_to_feature_permutation_scaling_and_shift_but_not_rotation():
    """Pearson RSMs correlate each input's features, so a per-input affine change or a
    reordering of the features keeps them; a rotation mixes features and does not."""
    x, y = reps(n=80)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    assert sim.rsa(2.0 * x[:, perm] + 3.0, y) == pytest.approx(sim.rsa(x, y), abs=1e-10)
    assert abs(sim.rsa(x @ orthogonal(20), y) - sim.rsa(x, y)) > 1e-3


def test_feature_space_and_gram_forms_of_linear_cka_agree():
    x, y = reps()
    xc, yc = x - x.mean(0), y - y.mean(0)
    assert sim.kernel_cka(xc @ xc.T, yc @ yc.T) == pytest.approx(sim.linear_cka(x, y), abs=1e-6)


def test_canonical_correlations_match_a_generalised_eigenproblem():
    """rho^2 are the eigenvalues of Sxx^-1 Sxy Syy^-1 Syx: an independent computation."""
    x, y = reps(p1=8, p2=6)
    xc, yc = (x - x.mean(0)).numpy(), (y - y.mean(0)).numpy()
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    rho_eig = np.sqrt(np.clip(np.sort(np.linalg.eigvals(m).real)[::-1][:6], 0, 1))
    assert np.allclose(sim.cca(x, y).rho.numpy(), rho_eig, atol=1e-4)


def test_first_canonical_correlation_matches_scikit_learn():
    from sklearn.cross_decomposition import CCA

    x, y = reps(p1=5, p2=4)
    u, v = CCA(n_components=1, max_iter=5000, tol=1e-12).fit_transform(x.numpy(), y.numpy())
    rho_sklearn = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
    assert sim.cca(x, y).rho[0].item() == pytest.approx(rho_sklearn, abs=1e-4)


def test_pwcca_is_asymmetric():
    x, y = reps()
    assert abs(sim.pwcca(x, y) - sim.pwcca(y, x)) > 1e-3


def test_svd_view_matches_the_direct_formulas():
    x, y = reps()
    view = sim.svd_view(x, y)
    assert view["linear_cka"] == pytest.approx(sim.linear_cka(x, y), abs=1e-10)
    assert view["r2_cca"] == pytest.approx(sim.cca(x, y).r2_cca, abs=1e-10)
    assert view["r2_lr"] == pytest.approx(sim.r2_lr(x, y), abs=1e-10)


def test_cca_ignores_dead_units():
    """A zero column (a dead ReLU) must not change CCA-based scores or break the SVD view."""
    x, y = reps()
    x_dead = torch.cat([x, torch.zeros(len(x), 3, dtype=x.dtype)], 1)
    assert sim.cca(x_dead, y).rho[:15].allclose(sim.cca(x, y).rho, atol=1e-8)
    assert sim.r2_lr(x_dead, y) == pytest.approx(sim.r2_lr(x, y), abs=1e-8)
    assert sim.svd_view(y, x_dead)["r2_cca"] == pytest.approx(sim.cca(y, x_dead).r2_cca, abs=1e-8)


def test_measures_reject_different_sample_counts():
    with pytest.raises(ValueError, match="same inputs: 10 rows vs 9 rows"):
        sim.linear_cka(torch.randn(10, 3), torch.randn(9, 3))


def test_cca_warns_when_there_are_fewer_inputs_than_features():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim.cca(torch.randn(10, 20, dtype=torch.float64), torch.randn(10, 5, dtype=torch.float64))
    assert any("fewer inputs" in str(w.message) for w in caught)


def test_svcca_keeps_enough_components_for_the_variance():
    x = torch.cat([10 * torch.randn(200, 2), 0.01 * torch.randn(200, 8)], 1)
    assert sim.pca_reduce(x, variance=0.99).shape[1] == 2


@pytest.mark.parametrize("n", [50, 80])
def test_rbf_bandwidth_is_the_median_distance_between_distinct_inputs(n):
    """Past 25 rows torch.cdist returns tiny positive self-distances; none may enter the median."""
    x = torch.randn(n, 10, generator=torch.Generator().manual_seed(n), dtype=torch.float64) + 3.0
    rows = x.tolist()
    d = [[math.dist(a, b) for b in rows] for a in rows]  # plain Euclidean distances
    sigma = 0.5 * statistics.median_low([d[i][j] for i in range(n) for j in range(n) if i != j])
    naive = torch.tensor([[math.exp(-d[i][j] ** 2 / (2 * sigma**2)) for j in range(n)] for i in range(n)],
                         dtype=torch.float64)
    gram = sim.rbf_gram(x, bandwidth=0.5)
    i, j = 0, 1  # the bandwidth the library used, read back from one entry: sigma^2 = -d^2 / (2 log K)
    assert math.sqrt(-d[i][j] ** 2 / (2 * math.log(gram[i, j].item()))) == pytest.approx(sigma, rel=1e-9)
    assert torch.allclose(gram, naive, rtol=1e-9, atol=0)
