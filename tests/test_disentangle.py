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
