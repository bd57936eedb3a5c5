"""Variational autoencoder (Kingma & Welling 2014) and beta-VAE (Higgins et al. 2017).

Course: :ref:`ch3-vae`, :ref:`ch3-beta-vae`. A prior p(z) = N(0, I), a decoder p(x | z), and an
amortized inference network q(z | x) = N(mu(x), diag(sigma^2(x))) trained together by maximising
the ELBO, E_q[log p(x | z)] - KL(q(z | x) || p(z)), with the reparameterization trick;
beta-VAE weighs the KL by beta. The representation is the posterior mean: ``encode(x) = mu(x)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..augment import generative_views
from ..backbones import ConvGenerator, resize_to
from ..data import Batch
from ..losses.generative import (
    bernoulli_log_likelihood,
    beta_vae_loss,
    gaussian_kl,
    gaussian_log_likelihood,
    reparameterize,
)
from .autoencoder import CodeEncoder
from .base import CourseContext, Method, MethodSpec, feature_dim

LIKELIHOODS = ["bernoulli", "gaussian"]


class VAE(Method):
    """Encoder -> (mu, log sigma^2) -> z = mu + sigma * eps -> decoder logits; loss = the negative
    beta-ELBO (``losses.beta_vae_loss``), summed over pixels, averaged over the batch.

    z for the collapse diagnostics is mu, the representation (the projection head is the identity).

    Args:
        backbone: a convolutional trunk with ``feature_map`` (``backbones.ConvNet``).
        latent_dim: size of z (disentanglement_lib's default: 10).
        image_size: side of the decoded images (a multiple of 4).
        beta: weight of the KL (1: the VAE).
        likelihood: "bernoulli" (pixel intensities as Bernoulli means, the beta-VAE papers') or
            "gaussian" (N(x; decoded mean, sigma_x^2 I) with a fixed ``sigma_x``).
        sigma_x: the Gaussian likelihood's standard deviation.
        kl_warmup: fraction of training over which the KL weight ramps linearly from 0 to beta
            (0: none); ``on_after_step`` moves the ramp (Bowman et al. 2016's KL annealing).
    """

    def __init__(self, backbone: nn.Module, latent_dim: int = 10, image_size: int = 32, beta: float = 1.0,
                 likelihood: str = "bernoulli", sigma_x: float = 0.1, kl_warmup: float = 0.0) -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
        if beta < 0 or not 0 <= kl_warmup <= 1:
            raise ValueError(f"need beta >= 0 and kl_warmup in [0, 1]; got {beta}, {kl_warmup}")
        width = max(feature_dim(backbone) // 8, 8)  # the ConvNet's first-block width at depth 4
        super().__init__(CodeEncoder(backbone, 2 * latent_dim))
        self.decoder = ConvGenerator(latent_dim, 3, image_size, width)
        self.latent_dim, self.beta, self.likelihood, self.sigma_x = latent_dim, beta, likelihood, sigma_x
        self.kl_warmup = kl_warmup
        self.kl_weight = 0.0 if kl_warmup > 0 else 1.0  # the ramp's value now, times beta

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (mu, logvar), each (B, latent_dim): q(z | x) for images ``x`` (B, 3, H, W)."""
        mu, logvar = self.backbone(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)  # exp stays finite under bf16 and early in training

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def embed(self, x: Tensor) -> Tensor:
        return self.encode(x)  # z = h = mu: the backbone's raw output holds mu and log sigma^2 side by side

    def decode_logits(self, z: Tensor, size: tuple[int, int]) -> Tensor:
        """Return the decoder's output (B, 3, H, W) for codes ``z`` at the image ``size``."""
        return resize_to(self.decoder(z), size)

    def decode(self, z: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Return the mean image of p(x | z) in [0, 1] for codes ``z`` (B, latent_dim)."""
        side = self.decoder.side * 4
        out = self.decode_logits(z, size or (side, side))
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out.clamp(0, 1)

    def log_likelihood(self, decoded: Tensor, x: Tensor) -> Tensor:
        """log p(x | z) per image (B,) from the decoder's output ``decoded`` (logits or means)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(decoded, x)
        return gaussian_log_likelihood(decoded, x, self.sigma_x)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        mu, logvar = self.posterior(x)
        z = reparameterize(mu, logvar)
        log_likelihood = self.log_likelihood(self.decode_logits(z, tuple(x.shape[-2:])).float(), x.float())
        kl = gaussian_kl(mu.float(), logvar.float()).sum(1)
        loss = beta_vae_loss(log_likelihood, kl, self.beta * self.kl_weight)
        return {"loss": loss, "reconstruction": -log_likelihood.mean().detach(), "kl": kl.mean().detach(),
                "elbo": (log_likelihood - kl).mean().detach(), **self.collapse_diagnostics(mu)}

    def on_after_step(self, step: int, total_steps: int) -> None:
        if self.kl_warmup > 0:
            self.kl_weight = min(1.0, (step + 1) / (self.kl_warmup * total_steps))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Return the decoded posterior means, decode(mu(x)) (B, 3, H, W): what the pictures show."""
        return self.decode(self.encode(x), tuple(x.shape[-2:]))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Return ``n`` images decoded from z ~ p(z) = N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.decode(z)

    @torch.no_grad()
    def traverse(self, x: Tensor, values: Tensor) -> Tensor:
        """Latent traversals: for the one image ``x`` (1, 3, H, W), return (latent_dim, len(values),
        3, H, W): row j decodes mu(x) with coordinate j replaced by each of ``values``."""
        mu = self.encode(x)[0]
        codes = mu.repeat(self.latent_dim, len(values), 1)  # (latent_dim, V, k)
        idx = torch.arange(self.latent_dim)
        codes[idx, :, idx] = values.to(mu).expand(self.latent_dim, -1)
        return self.decode(codes.flatten(0, 1), tuple(x.shape[-2:])).unflatten(0, (self.latent_dim, len(values)))


def active_units(mu: Tensor, threshold: float = 0.01) -> Tensor:
    """Return a (k,) bool mask of the active latent units: Cov_x(E_q[z_j | x]) > ``threshold``
    (Burda et al. 2016, section 5.2). A collapsed unit's posterior mean ignores the input, so its
    variance over the data is ~0, and so is its KL. mu: (N, k) posterior means of a dataset."""
    if mu.ndim != 2:
        raise ValueError(f"expected posterior means (N, k), got shape {tuple(mu.shape)}")
    return mu.float().var(0) > threshold


def _settings(context: CourseContext) -> dict[str, object]:
    # disentanglement_lib's 10 latents and Bernoulli likelihood (summed over pixels); the
    # decoder paints the profile's image size.
    return {"latent_dim": 10, "image_size": context.image_size or 32}


SPEC = MethodSpec(name="vae", method=VAE, settings=_settings, views=generative_views)
