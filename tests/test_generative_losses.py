"""The autoencoder and VAE losses of ``sslcourse.losses.generative`` against naive loops, Monte
Carlo estimates and probabilistic PCA, whose marginal likelihood and posterior are closed-form
(Tipping & Bishop 1999)."""

from __future__ import annotations

import math

import pytest
import torch

from sslcourse.losses import (
    bernoulli_log_likelihood,
    beta_vae_loss,
    gaussian_kl,
    gaussian_log_likelihood,
    l1_sparsity,
    reconstruction_error,
    reparameterize,
)
from sslcourse.losses.generative import diagonal_gaussian_log_density, standard_normal_log_density


def test_reconstruction_error_is_the_squared_norm_summed_per_image_and_averaged():
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.rand(5, 3, 4, 4, generator=g), torch.rand(5, 3, 4, 4, generator=g)
    naive = sum(sum((float(a) - float(b)) ** 2 for a, b in zip(x_hat[n].flatten(), x[n].flatten(), strict=True))
                for n in range(5)) / 5
    assert reconstruction_error(x_hat, x).item() == pytest.approx(naive, rel=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_error(x_hat, x[:, :2])


def test_reconstruction_error_does_not_push_the_target():
    x = torch.rand(3, 4, requires_grad=True)
    x_hat = torch.zeros(3, 4, requires_grad=True)
    reconstruction_error(x_hat, x).backward()
    assert x.grad is None and x_hat.grad is not None


def test_l1_sparsity_by_hand():
    assert l1_sparsity(torch.tensor([[1.0, -2.0], [0.0, 3.0]])).item() == pytest.approx(3.0)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.5, 0.7]], dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    # KL(q || p) = E_q[log q(z) - log p(z)], one dimension at a time
    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    monte_carlo = (log_q - log_p).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar)[0], monte_carlo, atol=0.01)


def test_gaussian_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0
    assert (gaussian_kl(torch.full((1, 3), 0.1), torch.zeros(1, 3)) > 0).all()
    with pytest.raises(ValueError, match="differ in shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


def test_reparameterized_samples_have_the_requested_mean_and_variance_and_pass_gradients():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -3.0]).expand(200_000, 2).clone().requires_grad_(True)
    logvar = torch.tensor([math.log(0.25), math.log(4.0)]).expand(200_000, 2).clone().requires_grad_(True)
    z = reparameterize(mu, logvar, generator=g)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -3.0]), atol=0.02)
    assert torch.allclose(z.var(0), torch.tensor([0.25, 4.0]), rtol=0.02)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones_like(mu)) and logvar.grad.abs().sum() > 0


def test_bernoulli_log_likelihood_is_the_summed_log_probability():
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 3.0]]]])
    x = torch.tensor([[[[1.0, 0.0]]], [[[0.25, 1.0]]]])
    p = torch.sigmoid(logits)
    naive = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_likelihood(logits, x), naive, atol=1e-6)


def test_beta_vae_loss_weighs_the_kl_and_refuses_per_pixel_terms():
    ll, kl = torch.tensor([-10.0, -20.0]), torch.tensor([1.0, 3.0])
    assert beta_vae_loss(ll, kl, beta=4.0).item() == pytest.approx((10 + 4 + 20 + 12) / 2)
    with pytest.raises(ValueError, match=r"two \(B,\) tensors"):
        beta_vae_loss(torch.zeros(2, 5), torch.zeros(2, 5))


# --- the ELBO against probabilistic PCA ---------------------------------------------------------
# x = W z + b + noise, z ~ N(0, I_k), noise ~ N(0, s^2 I_D): p(x) = N(b, W W^T + s^2 I) and the
# posterior is N(M^-1 W^T (x - b), s^2 M^-1) with M = W^T W + s^2 I. W's columns are orthogonal
# here, so M and the posterior covariance are diagonal and a diagonal q can equal the posterior.

D, K, S = 6, 2, 0.5


@pytest.fixture(scope="module")
def ppca() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(D, K, generator=g, dtype=torch.float64)).Q
    w = q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    x = torch.randn(D, generator=g, dtype=torch.float64)
    return w, b, x


def exact_log_likelihood(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> float:
    cov = w @ w.T + S**2 * torch.eye(D, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x).item()


def exact_posterior(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = w.T @ w + S**2 * torch.eye(K, dtype=torch.float64)
    mean = torch.linalg.solve(m, w.T @ (x - b))
    return mean, torch.log(torch.diagonal(S**2 * torch.linalg.inv(m)))


def elbo(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
         n: int = 200_000) -> float:
    """A Monte Carlo ELBO from the package's terms: E_q[log p(x|z)] - KL(q || p)."""
    g = torch.Generator().manual_seed(1)
    z = reparameterize(mu.expand(n, K), logvar.expand(n, K), generator=g)
    log_likelihood = gaussian_log_likelihood(z @ w.T + b, x.expand(n, D), S)
    return (log_likelihood.mean() - gaussian_kl(mu[None], logvar[None]).sum()).item()


def test_the_elbo_is_below_the_exact_log_likelihood_for_other_posteriors(ppca):
    w, b, x = ppca
    mean, logvar = exact_posterior(w, b, x)
    log_px = exact_log_likelihood(w, b, x)
    for shift, scale in [(0.5, 0.0), (0.0, 1.0), (-0.3, -1.0)]:
        assert elbo(w, b, x, mean + shift, logvar + scale) < log_px - 0.05


def test_the_elbo_equals_the_exact_log_likelihood_at_the_exact_posterior(ppca):
    w, b, x = ppca
    mean, logvar = exact_posterior(w, b, x)
    assert elbo(w, b, x, mean, logvar) == pytest.approx(exact_log_likelihood(w, b, x), abs=0.01)


def test_at_the_exact_posterior_every_sample_gives_log_p_x(ppca):
    """log p(x|z) + log p(z) - log q(z|x) = log p(x) for every z when q is the posterior: the
    ELBO's estimator then has no variance at all."""
    w, b, x = ppca
    mean, logvar = exact_posterior(w, b, x)
    z = reparameterize(mean.expand(5, K), logvar.expand(5, K), generator=torch.Generator().manual_seed(2))
    per_sample = (gaussian_log_likelihood(z @ w.T + b, x.expand(5, D), S) + standard_normal_log_density(z)
                  - diagonal_gaussian_log_density(z, mean.expand(5, K), logvar.expand(5, K)))
    assert torch.allclose(per_sample, torch.full((5,), exact_log_likelihood(w, b, x), dtype=torch.float64), atol=1e-9)
