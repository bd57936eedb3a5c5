"""Losses of the autoencoders and variational autoencoders (Course: :ref:`ch3-autoencoders`,
:ref:`ch3-vae`).

Every reconstruction term is *summed* over the pixels of an image and averaged over the batch:
the per-image quantity the ELBO is written in. A per-pixel mean would shrink the reconstruction
term by the number of pixels (1,200 on a 20 px colour image) against the KL term, so a "beta"
would silently mean beta * 1,200 and the posterior would collapse (:ref:`ch3-beta-vae`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _per_image_sum(values: Tensor) -> Tensor:
    return values.flatten(1).sum(1)


def reconstruction_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """The autoencoder's loss (Course: :ref:`ch3-autoencoders`, the page's eq-ae):

        L = 1/B sum_n || x_n - x_hat_n ||_2^2

    Args:
        x_hat: (B, ...) reconstructions.
        x: (B, ...) inputs, same shape.

    Returns:
        scalar: squared error summed over each input's dimensions, averaged over the batch.
    """
    if x_hat.shape != x.shape:
        raise ValueError(f"reconstruction {tuple(x_hat.shape)} and input {tuple(x.shape)} differ in shape")
    return _per_image_sum((x_hat - x.detach()) ** 2).mean()


def l1_sparsity(code: Tensor) -> Tensor:
    """The sparse autoencoder's penalty 1/B sum_n ||z_n||_1 (Ng's lecture notes use a KL to a
    target activation rate; the L1 form is the one of the seed text). code: (B, k)."""
    return code.abs().sum(1).mean()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per dimension, in closed form (Kingma & Welling
    2014, appendix B; Course: :ref:`ch3-vae`):

        KL_j = 1/2 (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)

    Args:
        mu, logvar: (B, k) the approximate posterior's means and log-variances.

    Returns:
        (B, k): each dimension's KL in nats; ``.sum(1)`` is the KL of the whole code, and its
        mean over a dataset per dimension tells the active units from the collapsed ones.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Return z = mu + sigma * eps with eps ~ N(0, I) (the reparameterization trick, Kingma &
    Welling 2014, section 2.4): a sample of N(mu, sigma^2) through which gradients reach mu and
    logvar. mu, logvar: (B, k); returns (B, k)."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | z) of a Bernoulli decoder, per image: sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)]
    with p = sigmoid(logits). For intensities in [0, 1] (not only 0/1) this is the usual
    cross-entropy form of disentanglement_lib and the beta-VAE paper. logits, x: (B, C, H, W);
    returns (B,)."""
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} differ in shape")
    return -_per_image_sum(F.binary_cross_entropy_with_logits(logits, x.detach(), reduction="none"))


def gaussian_log_likelihood(mean: Tensor, x: Tensor, sigma: float) -> Tensor:
    """log N(x; mean, sigma^2 I) per sample, summed over dimensions:
    -||x - mean||^2 / (2 sigma^2) - D/2 log(2 pi sigma^2). mean, x: (B, ...); returns (B,)."""
    if mean.shape != x.shape:
        raise ValueError(f"mean {tuple(mean.shape)} and x {tuple(x.shape)} differ in shape")
    d = mean[0].numel()
    return -_per_image_sum((x.detach() - mean) ** 2) / (2 * sigma**2) - 0.5 * d * math.log(2 * math.pi * sigma**2)


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) per row: the prior's log-density. z: (B, k); returns (B,)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)


def diagonal_gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) per row: the approximate posterior's log-density q(z|x).
    z, mu, logvar: (B, k); returns (B,)."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(1)


def beta_vae_loss(log_likelihood: Tensor, kl: Tensor, beta: float = 1.0) -> Tensor:
    """The negative beta-ELBO averaged over the batch (Higgins et al. 2017, eq. 4; beta = 1 is the
    VAE's negative ELBO, Kingma & Welling 2014, eq. 3; Course: :ref:`ch3-beta-vae`):

        L = 1/B sum_n [ -E_q[log p(x_n | z)] + beta KL(q(z | x_n) || p(z)) ]

    Args:
        log_likelihood: (B,) one-sample estimates of log p(x_n | z) (``bernoulli_log_likelihood``
            or ``gaussian_log_likelihood`` of the decoded sample).
        kl: (B,) each input's KL, ``gaussian_kl(mu, logvar).sum(1)``.
        beta: weight of the KL (a KL warm-up multiplies it by a ramp from 0 to 1).
    """
    if log_likelihood.shape != kl.shape or log_likelihood.ndim != 1:
        raise ValueError(f"expected two (B,) tensors, got {tuple(log_likelihood.shape)} and {tuple(kl.shape)}")
    return (-log_likelihood + beta * kl).mean()
