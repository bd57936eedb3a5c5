"""MI estimators (sslcourse.information): closed forms against Monte Carlo, each bound against a naive
loop, the analytic Gaussian critic against each bound's optimum, and trained critics (InfoNCE, NWJ, MINE)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal

from sslcourse import information as info

DOUBLE = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def analytic_bounds(dim: int, mi: float, batch: int, repeats: int, seed: int = 0, shift: float = 0.0,
                    scale: float = 1.0) -> dict[str, float]:
    """Mean of each bound over ``repeats`` batches, critic = shift + scale * log p(y|x)/p(y)."""
    rho, g = info.rho_for_mi(mi, dim), gen(seed)
    totals = dict.fromkeys(info.BOUNDS, 0.0)
    for _ in range(repeats):
        x, y = info.correlated_gaussians(batch, dim, rho, g, dtype=DOUBLE)
        scores = shift + scale * info.gaussian_log_ratio(x, y, rho)
        for name, bound in info.BOUNDS.items():
            totals[name] += float(bound(scores)) / repeats
    return totals


# --- naive loops, written from the papers' formulas -------------------------------------------------


def loop_infonce(s: list[list[float]]) -> float:
    b = len(s)
    return math.log(b) + sum(s[i][i] - math.log(sum(math.exp(v) for v in s[i])) for i in range(b)) / b


def loop_marginal_mean_exp(s: list[list[float]]) -> float:
    b = len(s)
    return sum(math.exp(s[i][j]) for i in range(b) for j in range(b) if i != j) / (b * (b - 1))


def loop_nwj(s: list[list[float]]) -> float:
    return sum(s[i][i] for i in range(len(s))) / len(s) - math.exp(-1) * loop_marginal_mean_exp(s)


def loop_dv(s: list[list[float]]) -> float:
    return sum(s[i][i] for i in range(len(s))) / len(s) - math.log(loop_marginal_mean_exp(s))


@pytest.mark.parametrize("b", [2, 3, 7])
def test_bounds_agree_with_naive_loops(b):
    scores = 2 * torch.randn(b, b, generator=gen(b), dtype=DOUBLE)
    rows = scores.tolist()
    assert float(info.infonce_bound(scores)) == pytest.approx(loop_infonce(rows), rel=1e-12)
    assert float(info.nwj_bound(scores)) == pytest.approx(loop_nwj(rows), rel=1e-12)
    assert float(info.dv_bound(scores)) == pytest.approx(loop_dv(rows), rel=1e-12)


def test_bounds_on_hand_made_score_matrices():
    b, c = 5, 0.7
    equal = torch.full((b, b), c, dtype=DOUBLE)
    assert float(info.infonce_bound(equal)) == pytest.approx(0.0, abs=1e-12)
    assert float(info.dv_bound(equal)) == pytest.approx(0.0, abs=1e-12)
    assert float(info.nwj_bound(equal)) == pytest.approx(c - math.exp(c - 1), abs=1e-12)
    # A critic that picks every positive out with certainty reaches, and cannot pass, log B.
    peaked = 1e3 * torch.eye(b, dtype=DOUBLE)
    assert float(info.infonce_bound(peaked)) == pytest.approx(math.log(b), abs=1e-9)
    # DV ignores a constant shift; InfoNCE ignores any per-row (function of x) shift.
    scores = torch.randn(b, b, generator=gen(1), dtype=DOUBLE)
    assert float(info.dv_bound(scores + 3.0)) == pytest.approx(float(info.dv_bound(scores)), abs=1e-12)
    row_shift = torch.randn(b, 1, generator=gen(2), dtype=DOUBLE)
    assert float(info.infonce_bound(scores + row_shift)) == pytest.approx(float(info.infonce_bound(scores)), abs=1e-12)


def test_infonce_never_exceeds_log_batch_size():
    for seed in range(5):
        scores = 20 * torch.randn(16, 16, generator=gen(seed), dtype=DOUBLE)
        assert float(info.infonce_bound(scores)) <= math.log(16) + 1e-12


def test_bounds_are_differentiable():
    scores = torch.randn(4, 4, generator=gen(0), requires_grad=True)
    for bound in info.BOUNDS.values():
        (grad,) = torch.autograd.grad(bound(scores), scores)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


# --- Gaussian closed forms ------------------------------------------------------------------------


def test_gaussian_mi_against_monte_carlo_of_the_log_density_ratio():
    dim, rho, n = 3, 0.6, 200_000
    x, y = info.correlated_gaussians(n, dim, rho, gen(0), dtype=DOUBLE)
    joint = MultivariateNormal(torch.zeros(2, dtype=DOUBLE), torch.tensor([[1.0, rho], [rho, 1.0]], dtype=DOUBLE))
    marginal = Normal(torch.tensor(0.0, dtype=DOUBLE), torch.tensor(1.0, dtype=DOUBLE))
    pointwise = (joint.log_prob(torch.stack([x, y], -1)) - marginal.log_prob(x) - marginal.log_prob(y)).sum(1)
    standard_error = float(pointwise.std()) / math.sqrt(n)
    assert float(pointwise.mean()) == pytest.approx(info.gaussian_mi(rho, dim), abs=4 * standard_error)
    assert info.gaussian_mi(rho, dim) == pytest.approx(-1.5 * math.log(1 - 0.36))


def test_rho_for_mi_inverts_gaussian_mi():
    for dim in (1, 20):
        for mi in (0.0, 0.51, 2.0, 10.0):
            # rho^2 = 1 - e^{-2 mi / dim} rounds near rho = 1: the round trip keeps ~8 digits at mi = 10, dim = 1.
            assert info.gaussian_mi(info.rho_for_mi(mi, dim), dim) == pytest.approx(mi, rel=1e-7, abs=1e-12)
    assert info.gaussian_mi(0.8) == pytest.approx(-0.5 * math.log(0.36))


def test_correlated_gaussians_have_unit_variance_and_correlation_rho():
    x, y = info.correlated_gaussians(50_000, 4, -0.3, gen(0), dtype=DOUBLE)
    assert x.shape == y.shape == (50_000, 4)
    assert torch.allclose(y.var(0), torch.ones(4, dtype=DOUBLE), atol=0.03)
    assert torch.allclose((x * y).mean(0), torch.full((4,), -0.3, dtype=DOUBLE), atol=0.02)


def test_gaussian_log_ratio_matches_the_densities_pair_by_pair():
    dim, rho = 2, 0.7
    x, y = info.correlated_gaussians(4, dim, rho, gen(3), dtype=DOUBLE)
    cond_sd, std = math.sqrt(1 - rho**2), Normal(torch.tensor(0.0, dtype=DOUBLE), torch.tensor(1.0, dtype=DOUBLE))
    expected = torch.tensor([[float((Normal(rho * x[i], cond_sd).log_prob(y[j]) - std.log_prob(y[j])).sum())
                              for j in range(4)] for i in range(4)], dtype=DOUBLE)
    assert torch.allclose(info.gaussian_log_ratio(x, y, rho), expected, atol=1e-10)


# --- the analytic critic against each bound -----------------------------------------------------------


def test_infonce_with_the_optimal_critic_reaches_the_mi_when_mi_is_much_below_log_b():
    mi = 0.2
    estimate = analytic_bounds(dim=5, mi=mi, batch=512, repeats=20)["infonce"]
    assert estimate <= mi + 0.02
    assert estimate == pytest.approx(mi, abs=0.03)


def test_infonce_with_the_optimal_critic_saturates_at_log_b_when_mi_is_much_above():
    mi, batch = 10.0, 64
    estimate = analytic_bounds(dim=20, mi=mi, batch=batch, repeats=10)["infonce"]
    assert math.log(batch) - 0.1 < estimate <= math.log(batch)
    assert estimate < mi - 5


def test_nwj_reaches_the_mi_at_one_plus_log_ratio_and_stays_below_elsewhere():
    mi, kw = 0.2, {"dim": 5, "batch": 512, "repeats": 20}
    assert analytic_bounds(mi=mi, shift=1.0, **kw)["nwj"] == pytest.approx(mi, abs=0.03)
    # In expectation NWJ(1 + c + log r) = MI + 1 + c - e^c <= MI.
    for c in (-1.0, -0.5, 0.5):
        assert analytic_bounds(mi=mi, shift=1.0 + c, **kw)["nwj"] == pytest.approx(mi + 1 + c - math.exp(c), abs=0.03)
    for scale in (0.5, 1.5):
        assert analytic_bounds(mi=mi, shift=1.0, scale=scale, **kw)["nwj"] <= mi + 0.02


def test_dv_with_the_optimal_critic_reaches_the_mi():
    mi = 0.51
    assert analytic_bounds(dim=1, mi=mi, batch=512, repeats=20)["dv"] == pytest.approx(mi, abs=0.03)


# --- trained critics ------------------------------------------------------------------------------


def held_out_mean(critic, dim: int, rho: float, bound: str, batch: int, repeats: int, seed: int = 100) -> float:
    g = gen(seed)
    return sum(info.estimate_mi(critic, *info.correlated_gaussians(batch, dim, rho, g), bound)
               for _ in range(repeats)) / repeats


def test_mine_with_moving_average_is_within_15_percent_on_a_2d_gaussian():
    # "2-D Gaussian": x and y scalar (dim = 1 pair), rho = 0.8, MI = 0.51 nats.
    rho, mi = 0.8, info.gaussian_mi(0.8, 1)
    trained = info.train_critic(info.gaussian_sampler(1, rho), "dv", steps=1000, batch_size=64, lr=1e-3, seed=0,
                                ema=0.99)
    assert held_out_mean(trained.critic, 1, rho, "dv", batch=2048, repeats=4) == pytest.approx(mi, rel=0.15)


def test_trained_infonce_stays_below_log_b_and_the_mi():
    batch = 64
    # MI above log B: every estimate is capped at log B.
    rho_high = info.rho_for_mi(6.0, 5)
    high = info.train_critic(info.gaussian_sampler(5, rho_high), "infonce", steps=300, batch_size=batch, seed=0)
    assert (high.history <= math.log(batch) + 1e-5).all()
    assert math.log(batch) - 1.0 < held_out_mean(high.critic, 5, rho_high, "infonce", batch, 10) <= math.log(batch)
    # MI below log B: the estimate approaches the MI from below.
    mi, rho_low = 1.0, info.rho_for_mi(1.0, 5)
    low = info.train_critic(info.gaussian_sampler(5, rho_low), "infonce", steps=300, batch_size=batch, seed=0)
    assert 0.5 * mi < held_out_mean(low.critic, 5, rho_low, "infonce", 512, 4) <= mi + 0.05


def test_trained_nwj_is_a_lower_bound():
    mi, rho = 1.0, info.rho_for_mi(1.0, 2)
    trained = info.train_critic(info.gaussian_sampler(2, rho), "nwj", steps=400, batch_size=64, lr=1e-3, seed=0)
    assert 0.5 * mi < held_out_mean(trained.critic, 2, rho, "nwj", 1024, 4) <= mi + 0.05


def test_ema_leaves_the_first_step_as_plain_dv_ascent_and_changes_later_ones():
    sampler = info.gaussian_sampler(2, 0.5)
    one_step = info.train_critic(sampler, "dv", steps=1, batch_size=8, lr=1e-2, seed=3, ema=0.99).critic
    torch.manual_seed(3)
    manual = info.SeparableCritic(2, 2)
    optimizer = torch.optim.Adam(manual.parameters(), lr=1e-2)
    (-info.dv_bound(manual(*sampler(8, 0, gen(3))))).backward()
    optimizer.step()
    for a, b in zip(one_step.parameters(), manual.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)
    runs = [info.train_critic(sampler, "dv", steps=5, batch_size=8, lr=1e-2, seed=3, ema=m).history for m in (0, 0.9)]
    assert torch.equal(runs[0][:2], runs[1][:2]) and not torch.equal(runs[0], runs[1])


def test_train_critic_is_deterministic_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    runs = [info.train_critic(info.gaussian_sampler(3, 0.5), "nwj", steps=5, batch_size=8, seed=1).history
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (5,)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_staircase_steps_through_its_mi_levels():
    stairs = info.GaussianStaircase(dim=4, mi_levels=(0.5, 2.0), steps_per_level=3)
    assert stairs.true_mi(8).tolist() == [0.5] * 3 + [2.0] * 5
    x, y = stairs(40_000, 4, gen(0))
    assert float((x * y).mean()) == pytest.approx(info.rho_for_mi(2.0, 4), abs=0.02)
    history = info.train_critic(stairs, "infonce", steps=6, batch_size=8, seed=0).history
    assert history.shape == (6,) and torch.isfinite(history).all()


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", list(info.BOUNDS.values()))
@pytest.mark.parametrize("shape", [(3, 4), (4,), (1, 1), (2, 2, 2)])
def test_bounds_reject_non_square_or_tiny_score_matrices(bound, shape):
    with pytest.raises(ValueError, match="scores"):
        bound(torch.zeros(shape))


def test_bounds_reject_integer_scores():
    with pytest.raises(ValueError, match="floating"):
        info.dv_bound(torch.zeros(3, 3, dtype=torch.long))


@pytest.mark.parametrize("call", [
    lambda: info.gaussian_mi(1.0), lambda: info.gaussian_mi(-1.2), lambda: info.gaussian_mi(0.5, 0),
    lambda: info.rho_for_mi(-0.1), lambda: info.rho_for_mi(float("inf")), lambda: info.rho_for_mi(1.0, 1.5),
    lambda: info.correlated_gaussians(0, 2, 0.5), lambda: info.correlated_gaussians(4, 2, 1.0),
    lambda: info.gaussian_log_ratio(torch.zeros(3, 2), torch.zeros(3, 3), 0.5),
    lambda: info.gaussian_sampler(2, -1.0), lambda: info.GaussianStaircase(dim=2, mi_levels=()),
    lambda: info.GaussianStaircase(dim=2, mi_levels=(-1.0,)), lambda: info.SeparableCritic(0, 2),
    lambda: info.train_critic(info.gaussian_sampler(1, 0.5), "mine"),
    lambda: info.train_critic(info.gaussian_sampler(1, 0.5), "dv", ema=1.0),
    lambda: info.train_critic(info.gaussian_sampler(1, 0.5), "dv", batch_size=1),
    lambda: info.train_critic(info.gaussian_sampler(1, 0.5), "dv", lr=0.0),
    lambda: info.estimate_mi(info.SeparableCritic(1, 1), torch.zeros(4, 1), torch.zeros(4, 1), "mi"),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()
