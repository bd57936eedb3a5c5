"""Mutual-information estimators: variational lower bounds computed from a critic's score matrix.

Every bound reads a score matrix ``scores`` of shape (B, B) with ``scores[i, j] = f(x_i, y_j)``:
the diagonal holds the B joint samples (x_i, y_i) ~ p(x, y), the B(B - 1) off-diagonal entries
stand in for samples of the product of marginals p(x) p(y).

| bound | formula | reference |
| --- | --- | --- |
| ``infonce_bound`` | log B + mean_i [s_ii - logsumexp_j s_ij] <= log B | van den Oord et al. 2018; Poole et al. 2019 |
| ``nwj_bound`` | E_p[f] - e^{-1} E_{pxp}[e^f] | Nguyen, Wainwright & Jordan 2010; Poole et al. 2019 |
| ``dv_bound`` | E_p[f] - log E_{pxp}[e^f] (MINE's objective) | Donsker & Varadhan 1983; Belghazi et al. 2018 |

Correlated Gaussians have a closed-form MI and density ratio, which makes them the test bed of
Poole et al. 2019 ("On Variational Bounds of Mutual Information") and of McAllester & Stratos
2020 ("Formal Limitations on the Measurement of Mutual Information"), who show that any
distribution-free lower bound from B samples is at most O(log B).

book: chapter 7, ``ch7-estimators`` (planned).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

Sampler = Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]


def _check_rho(rho: float) -> None:
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (-1, 1), got {rho}")


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def gaussian_mi(rho: float, dim: int = 1) -> float:
    """Return the MI in nats of ``dim`` independent pairs of standard normals, each pair with correlation rho:

    I(X; Y) = -dim / 2 * log(1 - rho^2)

    (Cover & Thomas 2006, eq. 8.56 for one pair; MI adds over independent pairs.)
    """
    _check_rho(rho)
    _check_positive_int("dim", dim)
    return -0.5 * dim * math.log1p(-rho * rho)


def rho_for_mi(mi: float, dim: int = 1) -> float:
    """Return the correlation rho >= 0 at which ``dim`` pairs carry ``mi`` nats: rho = sqrt(1 - exp(-2 mi / dim)).

    The inverse of ``gaussian_mi`` (as in Poole et al. 2019, section 4, to set the MI staircase).
    """
    _check_positive_int("dim", dim)
    if not (math.isfinite(mi) and mi >= 0):
        raise ValueError(f"mi must be a finite number >= 0, got {mi}")
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def correlated_gaussians(n: int, dim: int, rho: float, generator: torch.Generator | None = None,
                         dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Return n joint samples (x, y), each (n, dim): x ~ N(0, I), y = rho x + sqrt(1 - rho^2) eps, eps ~ N(0, I).

    Coordinate d of x and y is a standard normal pair with correlation rho; the pairs are independent,
    so I(X; Y) = ``gaussian_mi(rho, dim)``.
    """
    _check_positive_int("n", n)
    _check_positive_int("dim", dim)
    _check_rho(rho)
    x = torch.randn(n, dim, generator=generator, dtype=dtype)
    noise = torch.randn(n, dim, generator=generator, dtype=dtype)
    return x, rho * x + math.sqrt(1.0 - rho * rho) * noise


def gaussian_log_ratio(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """Return the (B, B) matrix of the optimal critic log p(y_j | x_i) / p(y_j) for ``correlated_gaussians``.

    With s = 1 - rho^2 and p(y | x) = N(rho x, s I), p(y) = N(0, I):

    log r(x, y) = -dim/2 log s - |y - rho x|^2 / (2 s) + |y|^2 / 2.

    InfoNCE and DV reach their optimum at f = log r (plus any function of x for InfoNCE, any constant
    for DV); NWJ at f = 1 + log r (Poole et al. 2019, section 2.2). x, y: (B, dim).
    """
    _check_rho(rho)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected x and y of the same shape (B, dim), got {tuple(x.shape)} and {tuple(y.shape)}")
    s = 1.0 - rho * rho
    sq_dist = torch.cdist(rho * x, y).square()
    return -0.5 * x.shape[1] * math.log(s) - sq_dist / (2 * s) + 0.5 * y.square().sum(1)


def _check_scores(scores: Tensor) -> int:
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square (B, B) matrix, got shape {tuple(scores.shape)}")
    if scores.shape[0] < 2:
        raise ValueError("scores needs B >= 2: the off-diagonal entries are the product-of-marginals samples")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be floating point, got {scores.dtype}")
    return scores.shape[0]


def _off_diagonal(scores: Tensor) -> Tensor:
    b = scores.shape[0]
    return scores.masked_select(~torch.eye(b, dtype=torch.bool, device=scores.device))


def _log_mean_exp_off_diagonal(scores: Tensor) -> Tensor:
    b = scores.shape[0]
    return torch.logsumexp(_off_diagonal(scores), 0) - math.log(b * (b - 1))


def infonce_bound(scores: Tensor) -> Tensor:
    """Return the InfoNCE lower bound (van den Oord et al. 2018, eq. 4; Poole et al. 2019, eq. 12):

    I_NCE = log B + 1/B sum_i [ s_ii - log sum_j exp(s_ij) ]  <=  log B.

    Each term is a log-softmax, so the bound is at most log B whatever the critic. It is log B minus
    the InfoNCE loss of chapter 5 (book: chapter 5, the bound I >= log M - L). scores: (B, B); returns a
    0-dim tensor (differentiable).
    """
    b = _check_scores(scores)
    return math.log(b) + (scores.diagonal() - torch.logsumexp(scores, 1)).mean()


def nwj_bound(scores: Tensor) -> Tensor:
    """Return the NWJ lower bound (Nguyen, Wainwright & Jordan 2010; Poole et al. 2019, eq. 6, I_NWJ):

    I_NWJ = E_p[f] - e^{-1} E_{p x p}[e^f],

    E_p over the diagonal, E_{p x p} over the B(B - 1) off-diagonal entries. Tight at f = 1 + log p(y|x)/p(y).
    scores: (B, B); returns a 0-dim tensor (differentiable).
    """
    _check_scores(scores)
    return scores.diagonal().mean() - torch.exp(_log_mean_exp_off_diagonal(scores) - 1.0)


def dv_bound(scores: Tensor) -> Tensor:
    """Return the Donsker-Varadhan lower bound, MINE's objective (Belghazi et al. 2018, eq. 10):

    I_DV = E_p[f] - log E_{p x p}[e^f],

    E_p over the diagonal, E_{p x p} over the off-diagonal entries. Tight at f = log p(y|x)/p(y) + c.
    scores: (B, B); returns a 0-dim tensor (differentiable).
    """
    _check_scores(scores)
    return scores.diagonal().mean() - _log_mean_exp_off_diagonal(scores)


BOUNDS: dict[str, Callable[[Tensor], Tensor]] = {"infonce": infonce_bound, "nwj": nwj_bound, "dv": dv_bound}


class SeparableCritic(nn.Module):
    """Separable critic f(x, y) = g(x)^T h(y), g and h two MLPs (Poole et al. 2019, section 4).

    One forward pass scores all B x B pairs with a single (B, embed) x (embed, B) product, which keeps
    training cheap on a CPU. forward(x (B, x_dim), y (B, y_dim)) returns scores (B, B).
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 128, embed: int = 32) -> None:
        super().__init__()
        for name, value in [("x_dim", x_dim), ("y_dim", y_dim), ("hidden", hidden), ("embed", embed)]:
            _check_positive_int(name, value)

        def mlp(d_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, embed))

        self.g, self.h = mlp(x_dim), mlp(y_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T


def gaussian_sampler(dim: int, rho: float) -> Sampler:
    """Return a sampler (batch_size, step, generator) -> (x, y) of ``correlated_gaussians`` with fixed rho."""
    _check_positive_int("dim", dim)
    _check_rho(rho)
    return lambda batch_size, step, generator: correlated_gaussians(batch_size, dim, rho, generator)


@dataclass(frozen=True)
class GaussianStaircase:
    """Sampler whose true MI steps through ``mi_levels``, ``steps_per_level`` steps each (Poole et al. 2019, fig. 2).

    Calling it with (batch_size, step, generator) returns (x, y), each (batch_size, dim); ``true_mi(steps)``
    gives the (steps,) curve of the MI it sampled at, to plot beside the estimates.
    """

    dim: int
    mi_levels: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 100

    def __post_init__(self) -> None:
        _check_positive_int("dim", self.dim)
        _check_positive_int("steps_per_level", self.steps_per_level)
        if not self.mi_levels:
            raise ValueError("mi_levels must name at least one MI")
        for mi in self.mi_levels:
            rho_for_mi(mi, self.dim)

    def mi_at(self, step: int) -> float:
        return self.mi_levels[min(step // self.steps_per_level, len(self.mi_levels) - 1)]

    def true_mi(self, steps: int) -> Tensor:
        return torch.tensor([self.mi_at(t) for t in range(steps)])

    def __call__(self, batch_size: int, step: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return correlated_gaussians(batch_size, self.dim, rho_for_mi(self.mi_at(step), self.dim), generator)


class TrainedCritic(NamedTuple):
    critic: nn.Module
    history: Tensor  # (steps,) the bound on each training batch, before that step's update


def train_critic(sampler: Sampler, bound_name: str, steps: int = 500, batch_size: int = 64, lr: float = 5e-4,
                 seed: int = 0, critic: nn.Module | None = None, ema: float = 0.99) -> TrainedCritic:
    """Train a critic by gradient ascent on one bound; return it and the per-step estimates.

    ``bound_name`` is "infonce", "nwj" or "dv". Adam (lr) on a fresh batch ``sampler(batch_size, step, gen)``
    each step. ``critic`` defaults to a ``SeparableCritic`` seeded by ``seed`` (the global RNG is left as it was).

    For "dv", ``ema`` applies MINE's bias correction (Belghazi et al. 2018, section 3.2): the gradient
    E_B[grad T] - E_B[grad T e^T] / E_B[e^T] has its denominator replaced by an exponential moving average
    m_t = ema m_{t-1} + (1 - ema) E_B[e^T] (m_0 = the first batch's value), through the surrogate
    E_B[T] - E_B[e^T] / stopgrad(m_t). ``ema = 0`` gives the plain minibatch DV gradient. The paper gives no
    value; 0.99 averages about 100 batches, long enough to damp the batch noise of the denominator while
    following a critic that changes little per step at a small learning rate. Other bounds ignore ``ema``.
    History: (steps,) of the true bound on each batch (never the surrogate).
    """
    if bound_name not in BOUNDS:
        raise ValueError(f"unknown bound {bound_name!r}; expected one of {sorted(BOUNDS)}")
    _check_positive_int("steps", steps)
    _check_positive_int("batch_size", batch_size)
    if batch_size < 2:
        raise ValueError("batch_size must be >= 2: off-diagonal pairs are the negatives")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema must lie in [0, 1), got {ema}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    generator = torch.Generator().manual_seed(seed)
    x, y = sampler(batch_size, 0, generator)
    if critic is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            critic = SeparableCritic(x.shape[1], y.shape[1])
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    bound = BOUNDS[bound_name]
    history = torch.empty(steps)
    log_ema: Tensor | None = None
    for step in range(steps):
        if step > 0:
            x, y = sampler(batch_size, step, generator)
        scores = critic(x, y)
        estimate = bound(scores)
        if bound_name == "dv":
            log_mean_exp = _log_mean_exp_off_diagonal(scores)
            current = log_mean_exp.detach()
            if log_ema is None or ema == 0.0:
                log_ema = current
            else:
                log_ema = torch.logaddexp(log_ema + math.log(ema), current + math.log1p(-ema))
            objective = scores.diagonal().mean() - torch.exp(log_mean_exp - log_ema)
        else:
            objective = estimate
        optimizer.zero_grad()
        (-objective).backward()
        optimizer.step()
        history[step] = estimate.detach()
    return TrainedCritic(critic, history)


@torch.no_grad()
def estimate_mi(critic: nn.Module, x: Tensor, y: Tensor, bound_name: str) -> float:
    """Return the bound ``bound_name`` of a (trained) critic on held-out joint samples x (B, x_dim), y (B, y_dim).

    A large B gives many off-diagonal pairs and a low-variance estimate; InfoNCE stays capped at log B.
    """
    if bound_name not in BOUNDS:
        raise ValueError(f"unknown bound {bound_name!r}; expected one of {sorted(BOUNDS)}")
    return float(BOUNDS[bound_name](critic(x, y)))
