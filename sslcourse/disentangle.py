"""Disentanglement metrics: does each dimension of a representation capture one factor?

All take ``latents`` (n, d) and ``factors`` (n, K), the known generating factors of the same
n inputs (the shapes dataset provides them). Course: :ref:`ch1-disentanglement` (all three,
side by side); chapter 3 uses them for its beta-VAEs (Course: :ref:`ch3-beta-vae`).

- ``mig``: mutual information gap (Chen et al. 2018, "Isolating sources of disentanglement").
- ``dci``: disentanglement, completeness, informativeness (Eastwood & Williams 2018).
- ``beta_vae_score``: accuracy of predicting which factor was held fixed (Higgins et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def _discretize(values: np.ndarray, bins: int) -> np.ndarray:
    """Map each column to ``bins`` equal-width bins (columns with few values are kept)."""
    out = np.empty_like(values, dtype=np.int64)
    for j in range(values.shape[1]):
        col = values[:, j]
        uniq = np.unique(col)
        if len(uniq) <= bins:
            out[:, j] = np.searchsorted(uniq, col)
        else:
            out[:, j] = np.digitize(col, np.histogram_bin_edges(col, bins)[1:-1])
    return out


def mig(latents: Tensor, factors: Tensor, bins: int = 20) -> float:
    r"""Return the mutual information gap:

    .. math:: \mathrm{MIG} = \frac{1}{K}\sum_k \frac{I(z_{j^{(1)}}; v_k) - I(z_{j^{(2)}}; v_k)}{H(v_k)}

    where :math:`j^{(1)}, j^{(2)}` are the latent dimensions with the largest and second
    largest mutual information with factor :math:`v_k`. Latents and continuous factors are
    discretised into ``bins`` bins. 1: every factor lives in exactly one dimension.
    """
    from sklearn.metrics import mutual_info_score

    z = _discretize(latents.detach().cpu().double().numpy(), bins)
    v = _discretize(factors.detach().cpu().double().numpy(), bins)
    if z.shape[1] < 2:
        raise ValueError("MIG needs at least two latent dimensions")
    gaps = []
    for k in range(v.shape[1]):
        mi = np.sort([mutual_info_score(v[:, k], z[:, j]) for j in range(z.shape[1])])[::-1]
        entropy = mutual_info_score(v[:, k], v[:, k])
        gaps.append((mi[0] - mi[1]) / entropy if entropy > 0 else 0.0)
    return float(np.mean(gaps))


@dataclass
class DCIResult:
    """Disentanglement, completeness, informativeness, and the importance matrix (d, K)."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray


def _entropy_normalised(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of ``p`` (rows sum to 1) in log base ``base``: 0 = one-hot, 1 = uniform."""
    p = np.clip(p, 1e-12, 1)
    return -(p * np.log(p)).sum(1) / np.log(base)


def dci(latents: Tensor, factors: Tensor, test_fraction: float = 0.3, seed: int = 0) -> DCIResult:
    """Return DCI scores from the feature importances of one random forest per factor.

    ``importance[j, k]`` is how much latent j matters for predicting factor k.
    Disentanglement weights each latent's score ``1 - H_K(importance[j] / sum)`` by its share
    of total importance; completeness averages ``1 - H_d(importance[:, k] / sum)`` over
    factors; informativeness is the mean test R^2 of the forests (clipped at 0).
    """
    from sklearn.ensemble import RandomForestRegressor

    z = latents.detach().cpu().double().numpy()
    v = factors.detach().cpu().double().numpy()
    n, d, k_factors = len(z), z.shape[1], v.shape[1]
    if d < 2 or k_factors < 2:
        raise ValueError(f"DCI needs >= 2 latents and >= 2 factors; got {d} and {k_factors}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(test_fraction * n)
    test, train = perm[:n_test], perm[n_test:]
    importance = np.zeros((d, k_factors))
    scores = []
    for k in range(k_factors):
        forest = RandomForestRegressor(n_estimators=40, max_depth=8, random_state=seed, n_jobs=1)
        forest.fit(z[train], v[train, k])
        importance[:, k] = forest.feature_importances_
        scores.append(max(0.0, forest.score(z[test], v[test, k])))
    importance = np.abs(importance) + 1e-12
    per_latent = 1 - _entropy_normalised(importance / importance.sum(1, keepdims=True), k_factors)
    weights = importance.sum(1) / importance.sum()
    per_factor = 1 - _entropy_normalised((importance / importance.sum(0, keepdims=True)).T, d)
    return DCIResult(float((weights * per_latent).sum()), float(per_factor.mean()), float(np.mean(scores)),
                     importance)


def beta_vae_score(encode: Callable[[Tensor], Tensor], sample_factors: Callable[[int, torch.Generator], Tensor],
                   n_votes: int = 500, pairs_per_vote: int = 32, seed: int = 0) -> float:
    """Return the beta-VAE disentanglement score (Higgins et al. 2017, section 3).

    For each vote: pick a factor k, draw ``pairs_per_vote`` pairs of factor vectors that share
    factor k and differ in the others, encode both, and average |z1 - z2|. A linear classifier
    then predicts k from that average; the score is its held-out accuracy. If a latent
    captures factor k alone, its coordinate of |z1 - z2| is near 0 exactly when k was fixed.

    ``encode`` is called once, on all ``2 * n_votes * pairs_per_vote`` factor vectors (the first
    images of every pair, then the second ones).

    Args:
        encode: maps factor vectors (m, K) to representations (m, d) (e.g. render, then encode).
        sample_factors: draws m random factor vectors (m, K) from a generator.
    """
    from sklearn.linear_model import LogisticRegression

    gen = torch.Generator().manual_seed(seed)
    firsts, seconds, targets = [], [], []
    for _ in range(n_votes):
        a, b = sample_factors(pairs_per_vote, gen), sample_factors(pairs_per_vote, gen)
        k = int(torch.randint(a.shape[1], (1,), generator=gen))
        b[:, k] = a[:, k]
        firsts.append(a)
        seconds.append(b)
        targets.append(k)
    # One call of encode for every pair of every vote: rendering images and running a network
    # on one large batch is far faster than n_votes small calls.
    z = encode(torch.cat(firsts + seconds)).double()  # (2 * n_votes * pairs_per_vote, d)
    z1, z2 = z[: len(z) // 2], z[len(z) // 2 :]
    features = (z1 - z2).abs().reshape(n_votes, pairs_per_vote, -1).mean(1).cpu().numpy()  # (n_votes, d)
    x, y = features, np.array(targets)
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    half = n_votes // 2
    clf = LogisticRegression(max_iter=2000).fit(x[:half], y[:half])
    return float(clf.score(x[half:], y[half:]))
