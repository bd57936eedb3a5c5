"""Colorization (Zhang, Isola & Efros 2016) and split-brain autoencoders (2017): CIELAB against
published values and its own inverse, the ab bins, soft encoding, class rebalancing and the
annealed mean against their definitions, the two losses, bad input, and one learning test per
method."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse import color
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.losses import ab_classification_loss, ab_regression_loss
from sslcourse.methods import build_method
from sslcourse.methods.colorization import Colorization
from sslcourse.methods.split_brain import SplitBrain, lightness_bins
from sslcourse.methods.supervised import supervised_views
from sslcourse.train import fit


def pixels(*rgb: tuple[float, float, float]) -> torch.Tensor:
    """One image (1, 3, N, 1) whose N pixels are the given colours, in float64."""
    return torch.tensor(rgb, dtype=torch.float64).T.reshape(1, 3, len(rgb), 1)


# --- CIELAB ------------------------------------------------------------------------------------

# Published CIELAB (D65) values of sRGB colours; computed from the formulas they agree to 0.03.
KNOWN = {
    "white": ((1, 1, 1), (100.0, 0.0, 0.0)),
    "black": ((0, 0, 0), (0.0, 0.0, 0.0)),
    "red": ((1, 0, 0), (53.24, 80.09, 67.20)),
    "green": ((0, 1, 0), (87.73, -86.18, 83.18)),
    "blue": ((0, 0, 1), (32.30, 79.19, -107.86)),
    "mid grey": ((0.5, 0.5, 0.5), (53.39, 0.0, 0.0)),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_rgb_to_lab_matches_published_cielab_values(name):
    rgb, lab = KNOWN[name]
    got = color.rgb_to_lab(pixels(rgb))[0, :, 0, 0]
    assert torch.allclose(got, torch.tensor(lab, dtype=torch.float64), atol=0.05), got


def test_rgb_to_lab_follows_the_cie_definition_on_one_colour_by_hand():
    # sRGB (0.2, 0.6, 0.9) computed step by step in plain Python from IEC 61966-2-1 and CIE 1976.
    rgb = (0.2, 0.6, 0.9)
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    m = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    xyz = [sum(m[i][j] * linear[j] for j in range(3)) / sum(m[i]) for i in range(3)]
    d = 6 / 29
    fx, fy, fz = [t ** (1 / 3) if t > d**3 else t / (3 * d * d) + 4 / 29 for t in xyz]
    expected = torch.tensor([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dtype=torch.float64)
    assert torch.allclose(color.rgb_to_lab(pixels(rgb))[0, :, 0, 0], expected, atol=1e-9)


def test_lab_round_trip_recovers_random_colours():
    x = torch.rand(8, 3, 6, 5, generator=torch.Generator().manual_seed(0))
    assert (color.lab_to_rgb(color.rgb_to_lab(x)) - x).abs().max() < 1e-3
    # dark colours take the linear branches of both the gamma and f(t)
    dark = x * 0.03
    assert (color.lab_to_rgb(color.rgb_to_lab(dark)) - dark).abs().max() < 1e-3


def test_lab_ranges_cover_the_srgb_cube():
    lab = color.rgb_to_lab(torch.rand(1, 3, 4096, 1, generator=torch.Generator().manual_seed(0)))
    assert lab[:, 0].min() >= 0 and lab[:, 0].max() <= 100
    assert lab[:, 1:].min() >= -128 and lab[:, 1:].max() <= 127


def test_rgb_to_lab_has_finite_gradients_at_black_and_at_the_branch_knees():
    x = pixels((0, 0, 0), (0.04045, 0.5, 1.0), (1, 1, 1)).float().requires_grad_()
    color.rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bad", [torch.rand(3, 4, 4), torch.rand(2, 4, 4, 4),
                                 torch.zeros(1, 3, 2, 2, dtype=torch.uint8)])
def test_rgb_to_lab_rejects_non_images_by_shape_and_dtype(bad):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)|float"):
        color.rgb_to_lab(bad)


def test_network_scaling_puts_lab_in_about_minus_one_one_and_back():
    lab = color.rgb_to_lab(torch.rand(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)))
    l_in, ab_in = color.lab_to_network(lab)
    assert l_in.abs().max() <= 1 and ab_in.abs().max() <= 1
    assert torch.allclose(color.network_to_lab(l_in, ab_in), lab, atol=1e-5)


# --- ab bins -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return color.ab_bins()


def test_ab_bins_are_the_in_gamut_multiples_of_ten(bins):
    assert bins.shape == (261, 2)  # 313 in the paper, over ImageNet's colours (see ab_bins)
    assert torch.equal(bins, (bins / 10).round() * 10)
    assert len(torch.unique(bins, dim=0)) == len(bins)
    assert (bins == 0).all(1).any()  # grey
    # every colour's ab falls within half a bin (per axis) of a kept centre
    ab = color.rgb_to_lab(torch.rand(1, 3, 2000, 1, generator=torch.Generator().manual_seed(1)))[:, 1:]
    nearest = bins[color.ab_to_bins(ab, bins)]  # (1, 2000, 1, 2)
    assert (nearest - ab.permute(0, 2, 3, 1)).abs().max() <= 5 + 1e-4


def test_ab_to_bins_returns_the_nearest_centre(bins):
    ab = torch.tensor([[0.0, 0.0], [12.0, -31.0], [-48.0, 44.0]]).T.reshape(1, 2, 3, 1)
    idx = color.ab_to_bins(ab, bins)[0, :, 0]
    naive = torch.stack([((bins - p).pow(2).sum(1)).argmin() for p in ab[0, :, :, 0].T])
    assert torch.equal(idx, naive)
    assert torch.equal(bins[idx[1]], torch.tensor([10.0, -30.0]))


def test_soft_encoding_sums_to_one_on_five_bins_with_the_largest_weight_on_the_nearest(bins):
    ab = 60 * torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0)).clamp(-1.5, 1.5)
    z = color.soft_encode(ab, bins)  # (2, Q, 4, 4)
    assert z.shape == (2, len(bins), 4, 4)
    assert torch.allclose(z.sum(1), torch.ones(2, 4, 4))
    assert ((z > 0).sum(1) == 5).all()
    assert torch.equal(z.argmax(1), color.ab_to_bins(ab, bins))


def test_soft_encoding_weights_are_gaussian_in_the_distance():
    bins = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]])
    ab = torch.tensor([3.0, 0.0]).reshape(1, 2, 1, 1)
    z = color.soft_encode(ab, bins, k=3, sigma=5.0)[0, :, 0, 0]
    d2 = torch.tensor([9.0, 49.0, 109.0])
    g = torch.exp(-d2 / 50)
    assert torch.allclose(z, torch.cat([g / g.sum(), torch.zeros(1)]))


def test_rebalancing_weights_have_expectation_one_and_favour_rare_bins(bins):
    counts = torch.zeros(len(bins))
    counts[:50] = torch.arange(1, 51).float() ** 2  # a skewed distribution over 50 bins
    for sigma in (0.0, 5.0):
        w = color.rebalancing_weights(counts, lam=0.5, sigma=sigma, bins=bins)
        p = counts / counts.sum()
        assert torch.allclose((p * w).sum(), torch.tensor(1.0), atol=1e-5)
        seen = w[:50]
        assert (seen[1:] <= seen[:-1] + 1e-6).all() if sigma == 0 else seen[0] > seen[-1]
    # without smoothing, against the formula by hand
    w = color.rebalancing_weights(counts, lam=0.5, sigma=0.0, bins=bins)
    raw = 1 / (0.5 * p + 0.5 / len(bins))
    assert torch.allclose(w, raw / (p * raw).sum(), rtol=1e-5)


def test_rebalancing_with_lam_one_gives_unit_weights(bins):
    counts = torch.rand(len(bins), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(color.rebalancing_weights(counts, lam=1.0, bins=bins), torch.ones(len(bins)))


def test_rebalancing_rejects_counts_of_another_length_or_all_zero(bins):
    with pytest.raises(ValueError, match=r"\(Q,\)"):
        color.rebalancing_weights(torch.ones(10), bins=bins)
    with pytest.raises(ValueError, match="positive total"):
        color.rebalancing_weights(torch.zeros(len(bins)), bins=bins)


def test_annealed_mean_of_a_one_hot_distribution_is_that_bins_ab(bins):
    q = torch.tensor([[7, 100], [200, 3]])
    probabilities = F.one_hot(q, len(bins)).permute(2, 0, 1)[None].float()  # (1, Q, 2, 2)
    ab = color.bins_to_ab(probabilities, bins)
    assert torch.allclose(ab[0].permute(1, 2, 0), bins[q])


def test_annealed_mean_interpolates_between_mean_and_mode():
    bins = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    probabilities = torch.tensor([0.7, 0.3]).reshape(1, 2, 1, 1)
    mean = color.bins_to_ab(probabilities, bins, temperature=1.0)[0, 0, 0, 0]
    annealed = color.bins_to_ab(probabilities, bins, temperature=0.38)[0, 0, 0, 0]
    assert torch.isclose(mean, torch.tensor(30.0))
    expected = 100 * 0.3 ** (1 / 0.38) / (0.7 ** (1 / 0.38) + 0.3 ** (1 / 0.38))
    assert torch.isclose(annealed, torch.tensor(expected)) and annealed < mean


def test_bin_functions_reject_bad_shapes(bins):
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        color.ab_to_bins(torch.zeros(1, 3, 2, 2), bins)
    with pytest.raises(ValueError, match=r"\(Q, 2\)"):
        color.soft_encode(torch.zeros(1, 2, 2, 2), bins.T)
    with pytest.raises(ValueError, match=r"\(B, Q, H, W\)"):
        color.bins_to_ab(torch.zeros(1, 5, 2, 2), bins)


# --- losses ----------------------------------------------------------------------------------


def test_regression_loss_is_the_mean_per_pixel_squared_distance():
    pred, target = torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3)
    naive = sum(((pred[b, :, i, j] - target[b, :, i, j]) ** 2).sum() for b in range(2)
                for i in range(3) for j in range(3)) / 18
    assert torch.allclose(ab_regression_loss(pred, target), naive)


def test_regression_minimiser_of_two_colours_is_their_desaturated_mean():
    # an object yellow in half the images and blue in the other: the best single ab is their mean,
    # a greyish colour far less saturated than either
    yellow, blue = color.rgb_to_lab(pixels((1, 1, 0), (0, 0, 1)).float())[0, 1:, :, 0].T
    targets = torch.stack([yellow, blue])[:, :, None, None]  # (2, 2, 1, 1)
    pred = torch.zeros(1, 2, 1, 1, requires_grad=True)
    opt = torch.optim.SGD([pred], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        ab_regression_loss(pred.expand(2, -1, -1, -1), targets).backward()
        opt.step()
    assert torch.allclose(pred.detach().flatten(), (yellow + blue) / 2, atol=1e-3)
    assert pred.detach().norm() < 0.35 * min(yellow.norm(), blue.norm())


def test_classification_loss_is_the_weighted_soft_cross_entropy_per_pixel():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 3, 3, generator=g, requires_grad=True)
    targets = torch.rand(2, 6, 3, 3, generator=g).softmax(1)
    weights = torch.rand(2, 3, 3, generator=g) + 0.5
    loss = ab_classification_loss(logits, targets, weights)
    naive = 0.0
    for b in range(2):
        for i in range(3):
            for j in range(3):
                logp = torch.log_softmax(logits[b, :, i, j], 0)
                naive = naive - weights[b, i, j] * (targets[b, :, i, j] * logp).sum()
    assert torch.allclose(loss, naive / 18)
    assert torch.allclose(ab_classification_loss(logits, targets), ab_classification_loss(logits, targets,
                                                                                          torch.ones(2, 3, 3)))
    loss.backward()  # the targets and weights are detached: only the logits get gradients
    assert logits.grad is not None


def test_losses_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ab_regression_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 3))
    with pytest.raises(ValueError, match=r"\(B, Q, H, W\)"):
        ab_classification_loss(torch.zeros(1, 5, 4, 4), torch.zeros(1, 6, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        ab_classification_loss(torch.zeros(1, 5, 4, 4), torch.zeros(1, 5, 4, 4), torch.ones(1, 4))


# --- methods ---------------------------------------------------------------------------------


def small(in_channels: int) -> ConvNet:
    return ConvNet(width=4, depth=2, in_channels=in_channels)


@pytest.mark.parametrize("mode", ["regression", "classification"])
def test_colorization_step_and_colorize_give_images_of_the_input_size(mode):
    torch.manual_seed(0)
    method = Colorization(small(1), mode=mode)
    x = torch.rand(4, 3, 12, 12)
    out = method.training_step(Batch(views=[x], labels=torch.zeros(4)))
    assert out["loss"].requires_grad and ("pretext_accuracy" in out) == (mode == "classification")
    pictures = method.colorize(x)
    assert pictures.shape == x.shape and pictures.min() >= 0 and pictures.max() <= 1
    # the colorized picture keeps the input's lightness (up to the gamut clamp)
    assert (color.rgb_to_lab(pictures)[:, 0] - color.rgb_to_lab(x)[:, 0]).abs().mean() < 3
    assert method.encode(x).shape == (4, method.backbone.feature_dim)


def test_colorization_counts_bins_in_training_only():
    torch.manual_seed(0)
    method = Colorization(small(1))
    batch = Batch(views=[torch.rand(2, 3, 8, 8)], labels=torch.zeros(2))
    method.eval().training_step(batch)
    assert method.targets.bin_counts.sum() == 0
    method.train().training_step(batch)
    assert method.targets.bin_counts.sum() == 2 * 4 * 4  # one count per predicted pixel: half the side


def test_split_brain_lightness_bins_have_width_two():
    lightness = torch.tensor([0.0, 1.9, 2.0, 50.0, 99.9, 100.0]).reshape(1, 1, 6, 1)
    assert lightness_bins(lightness).flatten().tolist() == [0, 0, 1, 25, 49, 49]


def test_split_brain_encodes_both_channel_groups_and_reports_both_directions():
    torch.manual_seed(0)
    method = build_method("split_brain", small)
    assert isinstance(method, SplitBrain)
    x = torch.rand(4, 3, 12, 12)
    out = method.training_step(Batch(views=[x], labels=torch.zeros(4)))
    assert {"l_to_ab_loss", "ab_to_l_loss", "l_to_ab_accuracy", "ab_to_l_accuracy", "pretext_accuracy"} <= set(out)
    assert torch.allclose(out["loss"], out["l_to_ab_loss"] + out["ab_to_l_loss"])
    h = method.encode(x)
    assert h.shape == (4, 2 * small(1).feature_dim)
    # the ab half sees only colour: an image with the same ab and another L changes only the L half
    lab = color.rgb_to_lab(x * 0.5 + 0.25)  # mid colours: darkening them stays in gamut
    darker = color.lab_to_rgb(torch.cat([lab[:, :1] - 10, lab[:, 1:]], 1))
    assert darker.min() >= 0 and darker.max() <= 1
    method.eval()
    h1, h2, half = method.encode(color.lab_to_rgb(lab)), method.encode(darker), h.shape[1] // 2
    assert torch.allclose(h1[:, half:], h2[:, half:], atol=1e-4)
    assert not torch.allclose(h1[:, :half], h2[:, :half], atol=1e-3)


def test_methods_refuse_unknown_modes_and_encoders_without_a_feature_map():
    with pytest.raises(ValueError, match="mode must be one of"):
        Colorization(small(1), mode="regress")
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(8))
    flat.feature_dim = 8
    with pytest.raises(TypeError, match="feature_map"):
        Colorization(flat)


# --- learning tests ----------------------------------------------------------------------------
#
# At this size (12 px shapes, ConvNet width 8, depth 2, 80 steps) neither method's features beat
# random weights on the shape class by kNN: colorization (classification) measured -0.055 and
# +0.012 over random for seeds 0 and 1 (random 0.15-0.18, chance 0.125; 200 steps at 16 px:
# -0.012, -0.039, +0.008). What they do learn is the pretext task, so the tests assert that on
# held-out images the prediction beats the best constant predictor (the training images' mean
# ab for regression, their marginal bin distribution for classification) -- which a network
# that ignored its input could not do.

SIZE, STEPS = 12, 80


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(512, SIZE, seed=0, captions=False), make_shapes(256, SIZE, seed=1, captions=False)


def train_and_test_step(method, shapes, seed: int = 0) -> dict:
    """Train ``method`` ``STEPS`` steps on the training shapes; return its eval-mode step on the test ones."""
    train, test = shapes
    torch.manual_seed(seed)
    loader = MultiViewLoader(DeviceLoader(train, 32, seed=seed), supervised_views("shapes", SIZE))
    fit(method, loader, STEPS, log_every=STEPS, progress=False, device="cpu")
    with torch.no_grad():
        return method.eval().training_step(Batch(views=[test.images.float() / 255], labels=test.labels))


def lab_of(data) -> torch.Tensor:
    return color.rgb_to_lab(data.images.float() / 255)


def test_colorization_regression_beats_the_mean_colour_on_held_out_images(shapes):
    torch.manual_seed(0)
    out = train_and_test_step(Colorization(ConvNet(width=8, depth=2, in_channels=1), mode="regression"), shapes)
    train_ab, test_ab = lab_of(shapes[0])[:, 1:] / 110, lab_of(shapes[1])[:, 1:] / 110
    constant = ab_regression_loss(train_ab.mean((0, 2, 3), keepdim=True).expand_as(test_ab), test_ab)
    assert out["regression_loss"] < 0.9 * constant, (out["regression_loss"], constant)


def marginal_cross_entropy(train_targets: torch.Tensor, test_targets: torch.Tensor) -> torch.Tensor:
    """The held-out cross-entropy of the best constant predictor: the training targets' marginal."""
    marginal = train_targets.mean((0, 2, 3)).clamp_min(1e-8)  # (Q,)
    return -(test_targets * marginal.log()[None, :, None, None]).sum(1).mean()


def test_split_brain_held_out_losses_fall_below_the_uniform_guess(shapes):
    torch.manual_seed(0)
    method = SplitBrain(ConvNet(width=8, depth=2, in_channels=1), ConvNet(width=8, depth=2, in_channels=2))
    out = train_and_test_step(method, shapes)  # lam = 1: the losses are plain cross-entropies
    bins = method.targets.bins
    train_lab, test_lab = lab_of(shapes[0]), lab_of(shapes[1])
    l_constant = marginal_cross_entropy(*(F.one_hot(lightness_bins(lab[:, :1]), 50).permute(0, 3, 1, 2).float()
                                          for lab in (train_lab, test_lab)))
    # Neither direction reaches its marginal in 80 steps (seed 0: L -> ab 5.35 vs 4.96, ab -> L
    # 3.76 vs 3.55); both fall below the uniform guess log Q, which is all this size shows.
    assert out["l_to_ab_loss"] < math.log(len(bins)), out["l_to_ab_loss"]
    assert out["ab_to_l_loss"] < math.log(50) and out["ab_to_l_loss"] < 1.1 * l_constant, out["ab_to_l_loss"]


def test_bin_classifier_predicts_at_a_reduced_resolution_that_can_be_set_back_to_full():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    half, full = Colorization(small(1)), Colorization(small(1), bin_reduction=1)
    assert half.decoder(half.backbone.net.feature_map(torch.rand(2, 1, 8, 8))).shape[-2:] == (4, 4)
    assert full.decoder(full.backbone.net.feature_map(torch.rand(2, 1, 8, 8))).shape[-2:] == (8, 8)
    for method in (half, full):
        assert method.colorize(x).shape == x.shape
