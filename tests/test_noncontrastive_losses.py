"""Chapter-6 losses against naive implementations and analytic cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse import losses
from sslcourse.analysis import effective_rank, effective_rank_tensor


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_barlow_twins_is_zero_for_correlated_decorrelated_views_and_positive_otherwise():
    x = rand(64, 8)
    q, _ = torch.linalg.qr(x - x.mean(0))  # centred, orthogonal columns
    z = q * math.sqrt(64)  # unit (biased) variance per column: the cross-correlation is I
    on, off = losses.barlow_twins_terms(z, 3.0 * z + 1.0)  # standardisation removes scale and shift
    assert on.item() == pytest.approx(0.0, abs=1e-10) and off.item() == pytest.approx(0.0, abs=1e-10)
    assert losses.barlow_twins(z, rand(64, 8, seed=1)).item() > 1.0


def naive_barlow_twins(z1, z2, lam: float) -> float:
    """Zbontar et al. 2021, eq. 1-2: C_ij is the cosine between the batch-centred columns i of z1
    and j of z2 (a correlation coefficient); sum (1 - C_ii)^2 plus lam times sum_{i != j} C_ij^2."""
    a, b = columns(z1), columns(z2)
    a = [[x - sum(col) / len(col) for x in col] for col in a]
    b = [[x - sum(col) / len(col) for x in col] for col in b]
    loss = 0.0
    for i, ai in enumerate(a):
        for j, bj in enumerate(b):
            norms = math.sqrt(sum(x * x for x in ai) * sum(y * y for y in bj))
            c = sum(x * y for x, y in zip(ai, bj, strict=True)) / norms
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


@pytest.mark.parametrize("lam", [5e-3, 1.0])
def test_barlow_twins_matches_the_papers_cross_correlation_formula(lam):
    z1 = rand(12, 4)
    z2 = 2.0 * z1 @ rand(4, 4, seed=1) + rand(12, 4, seed=2) + 5.0  # correlated, rescaled, shifted
    assert losses.barlow_twins(z1, z2, lam).item() == pytest.approx(naive_barlow_twins(z1, z2, lam), abs=1e-10)


def columns(z: torch.Tensor) -> list[list[float]]:
    """The D columns of an (N, D) tensor as lists of floats: one embedding dimension each."""
    return [list(col) for col in zip(*z.tolist(), strict=True)]


def unbiased_cov(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (len(a) - 1)


def naive_vicreg_invariance(z1, z2) -> float:
    """s(Z, Z'): squared distances of the pairs, divided by N and (as the reference code) by D."""
    n, d = z1.shape
    return sum((z1[i, j].item() - z2[i, j].item()) ** 2 for i in range(n) for j in range(d)) / (n * d)


def naive_vicreg_variance(z1, z2, eps: float) -> float:
    """[v(Z) + v(Z')] / 2 with v the mean over dimensions of the hinge on the regularised std."""
    def v(z):
        cols = columns(z)
        return sum(max(0.0, 1.0 - math.sqrt(unbiased_cov(c, c) + eps)) for c in cols) / len(cols)
    return (v(z1) + v(z2)) / 2


def naive_vicreg_covariance(z1, z2) -> float:
    """c(Z) + c(Z'): squared off-diagonal covariances over D, one pair of dimensions at a time."""
    def c(z):
        cols = columns(z)
        d = len(cols)
        return sum(unbiased_cov(cols[a], cols[b]) ** 2 for a in range(d) for b in range(d) if a != b) / d
    return c(z1) + c(z2)


def vicreg_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two branches with stds on both sides of the hinge's 1 and correlated dimensions."""
    scale = torch.tensor([0.3, 0.8, 1.5, 2.0, 0.5], dtype=torch.float64)
    z1 = rand(16, 5) * scale
    return z1, (z1 + 0.5 * rand(16, 5, seed=1)) @ rand(5, 5, seed=2) * 0.5  # a noisy, mixed view


def test_vicreg_invariance_matches_a_naive_implementation():
    z1, z2 = vicreg_inputs()
    assert losses.vicreg_invariance(z1, z2).item() == pytest.approx(naive_vicreg_invariance(z1, z2), abs=1e-12)


@pytest.mark.parametrize("eps", [1e-4, 0.5])
def test_vicreg_variance_matches_a_naive_implementation(eps):
    z1, z2 = vicreg_inputs()
    want = naive_vicreg_variance(z1, z2, eps)
    assert 0.0 < want < 1.0  # some dimensions below the target std, so the hinge is active
    assert losses.vicreg_variance(z1, z2, eps).item() == pytest.approx(want, abs=1e-12)


def test_vicreg_covariance_matches_a_naive_implementation():
    z1, z2 = vicreg_inputs()
    assert losses.vicreg_covariance(z1, z2).item() == pytest.approx(naive_vicreg_covariance(z1, z2), abs=1e-12)


def test_vicreg_terms_and_loss_are_built_from_the_three_terms():
    z1, z2 = vicreg_inputs()
    inv, var, cov = naive_vicreg_invariance(z1, z2), naive_vicreg_variance(z1, z2, 1e-4), \
        naive_vicreg_covariance(z1, z2)
    terms = {k: v.item() for k, v in losses.vicreg_terms(z1, z2, 1e-4).items()}
    assert terms == pytest.approx({"invariance": inv, "variance": var, "covariance": cov}, abs=1e-12)
    weighted = losses.vicreg(z1, z2, 2.0, 3.0, 4.0, eps=1e-4).item()
    assert weighted == pytest.approx(2 * inv + 3 * var + 4 * cov, abs=1e-10)


def test_whitening_gives_identity_covariance_and_wmse_of_identical_views_is_zero():
    z = rand(256, 6) @ rand(6, 6, seed=1) + 3.0  # correlated, uncentred
    w = losses.whiten(z)
    cov = (w - w.mean(0)).T @ (w - w.mean(0)) / (len(w) - 1)
    assert torch.allclose(cov, torch.eye(6, dtype=cov.dtype), atol=1e-4)
    assert w.mean(0).abs().max() < 1e-10
    assert losses.wmse(z, z, sub_batch=64).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="more than 6 samples"):
        losses.whiten(z[:6])


def naive_whiten(z) -> list[list[float]]:
    """Ermolov et al. 2021, eq. 3-4: z_hat = W (z - mu) with W = L^{-1}, L L^T = Sigma (the
    unbiased covariance of the sub-batch) by Cholesky; L by the Cholesky-Banachiewicz loop and
    L^{-1} (z - mu) by forward substitution, one sample at a time."""
    cols = columns(z)
    d = len(cols)
    sigma = [[unbiased_cov(cols[a], cols[b]) for b in range(d)] for a in range(d)]
    chol = [[0.0] * d for _ in range(d)]
    for i in range(d):
        for j in range(i + 1):
            rest = sigma[i][j] - sum(chol[i][k] * chol[j][k] for k in range(j))
            chol[i][j] = math.sqrt(rest) if i == j else rest / chol[j][j]
    mu = [sum(c) / len(c) for c in cols]
    out = []
    for row in z.tolist():
        x = [r - m for r, m in zip(row, mu, strict=True)]
        w = []
        for i in range(d):
            w.append((x[i] - sum(chol[i][k] * w[k] for k in range(i))) / chol[i][i])
        out.append(w)
    return out


def naive_wmse(z1, z2, sub_batch: int) -> float:
    """W-MSE: whiten each view's sub-batches separately, then average the squared distance of the
    L2-normalised whitened pairs, ||w1/|w1| - w2/|w2| ||^2."""
    dists = []
    for start in range(0, len(z1), sub_batch):
        w1, w2 = naive_whiten(z1[start:start + sub_batch]), naive_whiten(z2[start:start + sub_batch])
        for a, b in zip(w1, w2, strict=True):
            na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
            dists.append(sum((x / na - y / nb) ** 2 for x, y in zip(a, b, strict=True)))
    return sum(dists) / len(dists)


@pytest.mark.parametrize("sub_batch", [6, 9, 18])
def test_wmse_matches_the_papers_cholesky_whitening(sub_batch):
    z1 = rand(18, 3) @ rand(3, 3, seed=1) + 2.0  # correlated, uncentred dimensions
    z2 = z1 + 0.5 * rand(18, 3, seed=2)
    assert losses.wmse(z1, z2, sub_batch=sub_batch).item() == pytest.approx(naive_wmse(z1, z2, sub_batch), abs=1e-9)


def test_negative_cosine_stops_the_gradient_of_the_target():
    p, z = rand(4, 3).requires_grad_(), rand(4, 3, seed=1).requires_grad_()
    loss = losses.negative_cosine(p, z)
    loss.backward()
    assert z.grad is None and p.grad is not None
    assert loss.item() == pytest.approx(-F.cosine_similarity(p, z).mean().item())
    assert losses.negative_cosine(z, z).item() == pytest.approx(-1.0)


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def naive_dino(student, teacher, center, tau_s: float, tau_t: float) -> float:
    """Caron et al. 2021, eq. 1 and Algorithm 1: the teacher's output is centred and sharpened,
    P_t = softmax((g_t - C) / tau_t), the student's is P_s = softmax(g_s / tau_s), and the loss
    H(P_t, P_s) = -sum_k P_t log P_s is averaged over the samples and over every (teacher crop,
    different student crop) pair, the mean that Algorithm 1's H(t1, s2)/2 + H(t2, s1)/2 takes."""
    c = center.tolist()
    pair_losses = []
    for t, teacher_crop in enumerate(teacher.tolist()):
        for s, student_crop in enumerate(student.tolist()):
            if s == t:  # a crop does not predict itself
                continue
            h = 0.0
            for g_t, g_s in zip(teacher_crop, student_crop, strict=True):
                p_t = softmax([(g - ck) / tau_t for g, ck in zip(g_t, c, strict=True)])
                p_s = softmax([g / tau_s for g in g_s])
                h -= sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s, strict=True))
            pair_losses.append(h / len(teacher_crop))
    return sum(pair_losses) / len(pair_losses)


@pytest.mark.parametrize("num_student_crops", [2, 4])
def test_dino_loss_matches_the_papers_algorithm(num_student_crops):
    student, teacher, center = rand(num_student_crops, 3, 5), rand(2, 3, 5, seed=1), rand(5, seed=2)
    want = naive_dino(student, teacher, center, 0.1, 0.04)
    assert losses.dino_loss(student, teacher, center, 0.1, 0.04).item() == pytest.approx(want, abs=1e-9)


def test_dino_center_is_an_ema_of_the_teacher_batch_mean():
    teacher, center = rand(2, 3, 5, seed=1), rand(5, seed=2)
    batch_mean = [sum(teacher[t, n, k].item() for t in range(2) for n in range(3)) / 6 for k in range(5)]
    want = [0.9 * c + 0.1 * m for c, m in zip(center.tolist(), batch_mean, strict=True)]
    assert losses.dino_center(center, teacher, momentum=0.9).tolist() == pytest.approx(want, abs=1e-12)


def test_sinkhorn_marginals():
    z, prototypes = F.normalize(rand(256, 16), dim=1), F.normalize(rand(16, 10, seed=1), dim=0)
    q = losses.sinkhorn_knopp(z @ prototypes, epsilon=0.05, iterations=50)  # cosine scores, as in SwAV
    assert torch.allclose(q.sum(1), torch.ones(256, dtype=q.dtype), atol=1e-3)  # each sample: one unit
    assert torch.allclose(q.sum(0), torch.full((10,), 25.6, dtype=q.dtype), atol=1e-3 * 25.6)  # equipartition
    assert (q >= 0).all()


def naive_sinkhorn(scores, epsilon: float, iterations: int) -> list[list[float]]:
    """Caron et al. 2020, eq. 3 and the Sinkhorn-Knopp algorithm of their appendix: with
    M = exp(C^T Z / epsilon) (K, B), Q = Diag(u) M Diag(v), where the scaling vectors alternate
    u_k = (1/K) / sum_b M_kb v_b (each prototype gets mass 1/K) and v_b = (1/B) / sum_k u_k M_kb
    (each sample mass 1/B). Returned as (B, K) codes scaled so that each sample's row sums to 1."""
    b, k = scores.shape
    m = [[math.exp(scores[i, j].item() / epsilon) for i in range(b)] for j in range(k)]  # (K, B)
    u, v = [1.0] * k, [1.0] * b
    for _ in range(iterations):
        u = [(1 / k) / sum(m[j][i] * v[i] for i in range(b)) for j in range(k)]
        v = [(1 / b) / sum(u[j] * m[j][i] for j in range(k)) for i in range(b)]
    return [[b * u[j] * m[j][i] * v[i] for j in range(k)] for i in range(b)]


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_the_papers_scaling_vectors(iterations):
    scores = F.normalize(rand(12, 4), dim=1) @ F.normalize(rand(4, 5, seed=1), dim=0)  # cosines, as in SwAV
    q = losses.sinkhorn_knopp(scores, epsilon=0.05, iterations=iterations)
    assert q.tolist() == [pytest.approx(row, rel=1e-9, abs=1e-12) for row in naive_sinkhorn(scores, 0.05, iterations)]


def test_effective_rank_bounds():
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0)
    assert effective_rank(rand(50, 1) @ rand(1, 8, seed=1)) == pytest.approx(1.0, abs=1e-6)
    assert 1.0 < effective_rank(rand(200, 8)) < 8.0


def naive_swav_loss(scores, codes, tau: float) -> float:
    """Caron et al. 2020, eq. 2-3: crop s predicts the code q_t of crop t != s with the loss
    -sum_k q_t^(k) log p_s^(k), p_s = softmax(z_s^T C / tau); written as eq. 3 expands it,
    -(1/tau) sum_k q_k z^T c_k + log sum_k exp(z^T c_k / tau) (the codes sum to 1), and averaged
    over samples and over the (coded crop, other crop) pairs as the reference code does."""
    pair_losses = []
    for t, coded in enumerate(codes.tolist()):
        for s, crop in enumerate(scores.tolist()):
            if s == t:
                continue
            total = 0.0
            for q, zc in zip(coded, crop, strict=True):
                total += -sum(qk * x / tau for qk, x in zip(q, zc, strict=True)) + math.log(
                    sum(math.exp(x / tau) for x in zc))
            pair_losses.append(total / len(coded))
    return sum(pair_losses) / len(pair_losses)


def test_swav_loss_matches_the_papers_swapped_prediction():
    scores, codes = torch.tanh(rand(3, 4, 6)), torch.softmax(rand(2, 4, 6, seed=1), -1)
    assert losses.swav_loss(scores, codes, 0.1).item() == pytest.approx(naive_swav_loss(scores, codes, 0.1), abs=1e-9)


def test_effective_rank_tensor_agrees_with_the_float_version():
    z = rand(64, 8)
    assert float(effective_rank_tensor(z)) == pytest.approx(effective_rank(z), rel=1e-5)


def test_barlow_twins_counts_a_constant_dimension_as_uncorrelated_even_when_its_mean_rounds():
    # randn values are not exactly representable means: z - z.mean(0) leaves ~1e-7 residues
    z = torch.randn(8, generator=torch.Generator().manual_seed(0)).expand(256, 8).clone()
    on, off = losses.barlow_twins_terms(z, z)
    assert on.item() == pytest.approx(8.0) and off.item() == 0.0
