from __future__ import annotations

import torch

from sslcourse import disentangle


def factors(n: int = 2000, k: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def rotation(k: int = 4, seed: int = 1) -> torch.Tensor:
    """An orthogonal matrix that mixes every factor into every dimension."""
    q = torch.linalg.qr(torch.randn(k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)).Q
    return q if (q.abs() > 0.2).all() else rotation(k, seed + 1)


def test_mig_is_near_one_on_true_factors_and_low_after_rotation():
    v = factors()
    assert disentangle.mig(v, v) > 0.9
    assert disentangle.mig(v @ rotation(), v) < 0.3


def test_dci_is_near_one_on_true_factors_and_low_after_rotation():
    v = factors()
    true = disentangle.dci(v, v)
    mixed = disentangle.dci(v @ rotation(), v)
    assert true.disentanglement > 0.9 and true.completeness > 0.9 and true.informativeness > 0.9
    assert mixed.disentanglement < 0.6 and mixed.completeness < 0.6


def test_beta_vae_score_separates_identity_from_rotation():
    def sample(m: int, gen: torch.Generator) -> torch.Tensor:
        return torch.rand(m, 4, generator=gen, dtype=torch.float64)

    assert disentangle.beta_vae_score(lambda f: f, sample, n_votes=200) > 0.95
    # A rotation spreads every factor over every latent; the score drops but stays above
    # chance (0.25), the known weakness of this metric (Kim & Mnih 2018).
    assert disentangle.beta_vae_score(lambda f: f @ rotation(), sample, n_votes=200) < 0.9


def test_beta_vae_score_encodes_once_and_matches_a_vote_by_vote_loop():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    def sample(m: int, gen: torch.Generator) -> torch.Tensor:
        return torch.rand(m, 4, generator=gen, dtype=torch.float64)

    mix = rotation()
    calls = []

    def encode(f: torch.Tensor) -> torch.Tensor:
        calls.append(len(f))
        return torch.tanh(f @ mix)  # a non-linear, entangled code: the score is neither 1 nor chance

    score = disentangle.beta_vae_score(encode, sample, n_votes=60, pairs_per_vote=8, seed=3)
    assert calls == [2 * 60 * 8]
    # Reference: the same draws, one vote at a time, each pair encoded on its own.
    gen = torch.Generator().manual_seed(3)
    feats, targets = [], []
    for _ in range(60):
        a, b = sample(8, gen), sample(8, gen)
        k = int(torch.randint(4, (1,), generator=gen))
        b[:, k] = a[:, k]
        feats.append((torch.tanh(a @ mix) - torch.tanh(b @ mix)).abs().mean(0).numpy())
        targets.append(k)
    x, y = np.stack(feats), np.array(targets)
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    want = LogisticRegression(max_iter=2000).fit(x[:30], y[:30]).score(x[30:], y[30:])
    assert score == want
