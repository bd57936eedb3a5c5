"""Autoencoders and VAEs of ``sslcourse.methods``: the linear autoencoder finds the principal
subspace, the corruptions, the VAE's pieces (posterior, traversals, KL warm-up, active units) and
a learning test that fails for the collapsed posterior."""

from __future__ import annotations

import math

import pytest
import torch

from sslcourse.analysis import principal_angles
from sslcourse.backbones import ConvGenerator, ConvNet
from sslcourse.data import Batch, make_shapes
from sslcourse.methods import VAE, Autoencoder, build_method
from sslcourse.methods.autoencoder import corrupt, pixel_autoencoder
from sslcourse.methods.vae import active_units
from sslcourse.train import fit


def test_principal_angles_of_two_lines_and_their_invariance_to_the_basis():
    a = torch.tensor([[1.0], [0.0], [0.0]])
    b = torch.tensor([[math.cos(math.radians(30))], [math.sin(math.radians(30))], [0.0]])
    assert principal_angles(a, b).item() == pytest.approx(30.0, abs=1e-6)
    plane = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    mixed = plane @ torch.tensor([[2.0, 1.0], [-1.0, 3.0]])  # another basis of the same plane
    assert principal_angles(plane, mixed).max().item() < 1e-5
    assert torch.allclose(principal_angles(plane, torch.eye(3)[:, 1:]), torch.tensor([0.0, 90.0], dtype=torch.float64),
                          atol=1e-6)
    with pytest.raises(ValueError, match="same D"):
        principal_angles(torch.zeros(3, 1), torch.zeros(4, 1))


def test_a_linear_autoencoder_trained_with_mse_spans_the_principal_subspace():
    """Synthetic data with a clear spectrum: 3 strong directions in 12 dimensions plus weak noise.
    The decoder's columns span the top-3 principal components (angles < 5 degrees) but are not
    the components themselves (Baldi & Hornik 1989; Kunin et al. 2019)."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(12, 3, generator=g)).Q
    x = (torch.randn(2000, 3, generator=g) * torch.tensor([3.0, 2.0, 1.5])) @ basis.T
    x = x + 0.1 * torch.randn(2000, 12, generator=g)
    torch.manual_seed(0)
    ae = pixel_autoencoder((1, 3, 4), code_dim=3)
    loader = [Batch(views=[x.view(-1, 1, 3, 4)], labels=torch.zeros(2000, dtype=torch.long))]
    fit(ae, loader, 600, lr=2e-2, weight_decay=0.0, progress=False, device="cpu", warmup_steps=0)
    centred = x - x.mean(0)
    pcs = torch.linalg.svd(centred, full_matrices=False).Vh[:3].T  # (12, 3)
    decoder_columns = ae.decoder[0].weight.detach()  # (12, 3): D x k
    assert principal_angles(decoder_columns, pcs).max() < 5
    # the subspace, not the directions: the columns are not orthonormal principal components
    cosines = (torch.nn.functional.normalize(decoder_columns, dim=0).T @ pcs).abs()
    assert cosines.max(1).values.min() < 0.99


def test_an_untrained_linear_autoencoder_is_far_from_the_principal_subspace():
    """The comparison above can fail: a random decoder's angles are large."""
    g = torch.Generator().manual_seed(0)
    pcs = torch.linalg.qr(torch.randn(12, 3, generator=g)).Q
    torch.manual_seed(0)
    assert principal_angles(pixel_autoencoder((1, 3, 4), 3).decoder[0].weight.detach(), pcs).max() > 20


def test_masking_corruption_zeroes_the_requested_fraction_of_pixels_across_channels():
    x = torch.rand(8, 3, 20, 20) + 0.1
    out = corrupt(x, "mask", 0.4, torch.Generator().manual_seed(0))
    hidden = (out == 0).all(1)
    assert hidden.float().mean().item() == pytest.approx(0.4, abs=0.03)
    assert torch.equal((out == 0).any(1), hidden)  # a pixel is hidden in all channels or none
    assert torch.equal(out[~hidden.unsqueeze(1).expand_as(out)], x[~hidden.unsqueeze(1).expand_as(x)])


def test_gaussian_corruption_stays_in_the_image_range_and_bad_kinds_are_refused():
    out = corrupt(torch.rand(4, 3, 8, 8), "gaussian", 0.5, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(corrupt(torch.ones(1, 3, 2, 2), "mask", 0.0), torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match="valid: mask, gaussian"):
        corrupt(torch.rand(1, 3, 2, 2), "salt", 0.1)
    with pytest.raises(ValueError, match="valid: mask, gaussian"):
        Autoencoder(ConvNet(width=4, depth=2), corruption="salt")


def test_the_generator_paints_the_requested_size_and_checks_its_input():
    g = ConvGenerator(5, 3, image_size=12, width=4)
    assert g(torch.randn(2, 5)).shape == (2, 3, 12, 12)
    with pytest.raises(ValueError, match="multiple of 4"):
        ConvGenerator(5, 3, image_size=10)
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        g(torch.randn(2, 4))


def small_vae(**kw: object) -> VAE:
    torch.manual_seed(0)
    return build_method("vae", lambda c: ConvNet(width=8, depth=2, in_channels=c), image_size=12, **kw)


def test_the_vae_encodes_its_posterior_mean_and_traverses_one_coordinate_per_row():
    vae = small_vae(latent_dim=4).eval()
    x = torch.rand(3, 3, 12, 12)
    mu, logvar = vae.posterior(x)
    assert mu.shape == logvar.shape == (3, 4) and torch.equal(vae.encode(x), mu) and torch.equal(vae.embed(x), mu)
    values = torch.linspace(-2, 2, 5)
    grid = vae.traverse(x[:1], values)
    assert grid.shape == (4, 5, 3, 12, 12) and grid.min() >= 0 and grid.max() <= 1
    # row j, column v decodes mu with coordinate j set to values[v]
    code = mu[0].clone()
    code[2] = values[1]
    assert torch.allclose(grid[2, 1], vae.decode(code[None], (12, 12))[0], atol=1e-6)
    assert vae.sample(6, torch.Generator().manual_seed(0)).shape == (6, 3, 12, 12)


def test_kl_warmup_ramps_the_kl_weight_from_zero_to_one():
    vae = small_vae(kl_warmup=0.5)
    assert vae.kl_weight == 0.0
    vae.on_after_step(24, 100)
    assert vae.kl_weight == pytest.approx(0.5)
    vae.on_after_step(80, 100)
    assert vae.kl_weight == 1.0
    assert small_vae().kl_weight == 1.0
    with pytest.raises(ValueError, match="valid: bernoulli, gaussian"):
        small_vae(likelihood="poisson")


def test_active_units_counts_the_latents_whose_mean_varies_with_the_input():
    mu = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.01 * torch.randn(50)], 1)
    assert active_units(mu).tolist() == [True, False, False]
    with pytest.raises(ValueError, match=r"\(N, k\)"):
        active_units(torch.zeros(5))


@pytest.fixture(scope="module")
def shapes_batches() -> list[Batch]:
    data = make_shapes(256, 12, seed=0, captions=False)
    x = data.images.float() / 255
    return [Batch(views=[x[i:i + 64]], labels=data.labels[i:i + 64]) for i in range(0, 256, 64)]


def test_a_vae_learns_active_units_and_a_huge_beta_collapses_the_posterior(shapes_batches):
    """The learning test, with its failing variant: beta = 1 keeps several latents in use
    (their means vary over the data); beta = 1,000 (what a per-pixel mean of the reconstruction
    amounts to on these 432-value images) switches every latent off."""
    x = torch.cat([b.views[0] for b in shapes_batches])
    units = {}
    for beta in (1.0, 1000.0):
        vae = small_vae(latent_dim=6, beta=beta)
        history = fit(vae, shapes_batches, 120, lr=3e-3, progress=False, device="cpu", log_every=40)
        units[beta] = int(active_units(vae.eval().encode(x)).sum())
        assert math.isfinite(history[-1]["elbo"])
    assert units[1.0] >= 2 and units[1000.0] == 0, units


def test_the_autoencoder_reconstructs_better_than_its_untrained_self(shapes_batches):
    x = torch.cat([b.views[0] for b in shapes_batches])
    torch.manual_seed(0)
    ae = build_method("autoencoder", lambda c: ConvNet(width=8, depth=2, in_channels=c), image_size=12, code_dim=16)
    before = ((ae.eval().reconstruct(x) - x) ** 2).flatten(1).sum(1).mean().item()
    fit(ae, shapes_batches, 120, lr=3e-3, progress=False, device="cpu", log_every=40)
    after = ((ae.eval().reconstruct(x) - x) ** 2).flatten(1).sum(1).mean().item()
    assert after < 0.5 * before, (before, after)
