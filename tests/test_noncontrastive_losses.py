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


def test_vicreg_terms_match_a_naive_implementation():
    z1, z2, eps = rand(16, 5), rand(16, 5, seed=1), 1e-4
    n, d = z1.shape
    inv = sum((z1[i, j] - z2[i, j]) ** 2 for i in range(n) for j in range(d)) / (n * d)
    var, cov = 0.0, 0.0
    for z in (z1, z2):
        mean = [sum(z[i, j] for i in range(n)) / n for j in range(d)]
        for j in range(d):
            std = math.sqrt(sum((z[i, j] - mean[j]) ** 2 for i in range(n)) / (n - 1) + eps)
            var += max(0.0, 1 - std) / d / 2
        for a in range(d):
            for b in range(d):
                if a != b:
                    c = sum((z[i, a] - mean[a]) * (z[i, b] - mean[b]) for i in range(n)) / (n - 1)
                    cov += c**2 / d
    t = losses.vicreg_terms(z1, z2, eps)
    assert t["invariance"].item() == pytest.approx(float(inv), abs=1e-5)
    assert t["variance"].item() == pytest.approx(float(var), abs=1e-5)
    assert t["covariance"].item() == pytest.approx(float(cov), abs=1e-5)
    assert losses.vicreg(z1, z2, eps=eps).item() == pytest.approx(25 * inv + 25 * var + cov, abs=1e-4)


def test_whitening_gives_identity_covariance_and_wmse_of_identical_views_is_zero():
    z = rand(256, 6) @ rand(6, 6, seed=1) + 3.0  # correlated, uncentred
    w = losses.whiten(z)
    cov = (w - w.mean(0)).T @ (w - w.mean(0)) / (len(w) - 1)
    assert torch.allclose(cov, torch.eye(6, dtype=cov.dtype), atol=1e-4)
    assert w.mean(0).abs().max() < 1e-10
    assert losses.wmse(z, z, sub_batch=64).item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="more than 6 samples"):
        losses.whiten(z[:6])


def test_negative_cosine_stops_the_gradient_of_the_target():
    p, z = rand(4, 3).requires_grad_(), rand(4, 3, seed=1).requires_grad_()
    loss = losses.negative_cosine(p, z)
    loss.backward()
    assert z.grad is None and p.grad is not None
    assert loss.item() == pytest.approx(-F.cosine_similarity(p, z).mean().item())
    assert losses.negative_cosine(z, z).item() == pytest.approx(-1.0)


def test_dino_loss_matches_a_naive_loop_and_center_is_an_ema():
    student, teacher, center = rand(4, 3, 5), rand(2, 3, 5, seed=1), rand(5, seed=2)
    total, pairs = 0.0, 0
    for t in range(2):
        for s in range(4):
            if s == t:
                continue
            for n in range(3):
                p_t = torch.softmax((teacher[t, n] - center) / 0.04, 0)
                log_p_s = torch.log_softmax(student[s, n] / 0.1, 0)
                total += float(-(p_t * log_p_s).sum()) / 3
            pairs += 1
    assert losses.dino_loss(student, teacher, center).item() == pytest.approx(total / pairs, abs=1e-8)
    new = losses.dino_center(center, teacher, momentum=0.9)
    assert torch.allclose(new, 0.9 * center + 0.1 * teacher.mean(dim=(0, 1)))


def test_sinkhorn_marginals():
    z, prototypes = F.normalize(rand(256, 16), dim=1), F.normalize(rand(16, 10, seed=1), dim=0)
    q = losses.sinkhorn_knopp(z @ prototypes, epsilon=0.05, iterations=50)  # cosine scores, as in SwAV
    assert torch.allclose(q.sum(1), torch.ones(256, dtype=q.dtype), atol=1e-3)  # each sample: one unit
    assert torch.allclose(q.sum(0), torch.full((10,), 25.6, dtype=q.dtype), atol=1e-3 * 25.6)  # equipartition
    assert (q >= 0).all()


def test_effective_rank_bounds():
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0)
    assert effective_rank(rand(50, 1) @ rand(1, 8, seed=1)) == pytest.approx(1.0, abs=1e-6)
    assert 1.0 < effective_rank(rand(200, 8)) < 8.0


def test_swav_loss_matches_a_naive_loop():
    scores, codes = rand(3, 4, 6), torch.softmax(rand(2, 4, 6, seed=1), -1)
    total, pairs = 0.0, 0
    for t in range(2):
        for s in range(3):
            if s != t:
                for n in range(4):
                    total += float(-(codes[t, n] * torch.log_softmax(scores[s, n] / 0.1, 0)).sum()) / 4
                pairs += 1
    assert losses.swav_loss(scores, codes, 0.1).item() == pytest.approx(total / pairs, abs=1e-8)


def test_effective_rank_tensor_agrees_with_the_float_version():
    z = rand(64, 8)
    assert float(effective_rank_tensor(z)) == pytest.approx(effective_rank(z), rel=1e-5)
