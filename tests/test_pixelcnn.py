"""The PixelCNN of chapter 3b: the likelihood losses, the causality of the masked convolutions
(no output sees its own pixel or a later one), the k-means palette and quantization, a short
training run that beats the uniform model, and the method contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse.analysis import embedding_std
from sslcourse.data import Batch, make_shapes
from sslcourse.losses.autoregressive import bits_per_dim, pixel_nll
from sslcourse.methods.base import CourseContext
from sslcourse.methods.pixelcnn import (
    SPEC,
    MaskedConv2d,
    PixelCNN,
    palette_from_images,
    quantize,
    uniform_palette,
)
from sslcourse.train import fit

SIZE = 12
K = 8


@pytest.fixture(scope="module")
def data():
    return make_shapes(512, SIZE, seed=0, captions=False), make_shapes(256, SIZE, seed=1, captions=False)


@pytest.fixture(scope="module")
def palette(data):
    return palette_from_images(data[0].images, K, seed=0)


def small(palette: torch.Tensor, **kwargs) -> PixelCNN:
    torch.manual_seed(0)
    return PixelCNN(palette, channels=16, n_layers=3, image_size=SIZE, **kwargs)


def as_batch(images: torch.Tensor) -> Batch:
    return Batch(views=[images.float() / 255], labels=torch.zeros(len(images), dtype=torch.long))


# --- the losses ---------------------------------------------------------------------------------


def test_pixel_nll_equals_a_naive_loop_over_pixels():
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 3, 4, generator=gen), torch.randint(0, 5, (2, 3, 4), generator=gen)
    total = 0.0
    for b, i, j in torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(4)).tolist():
        total -= math.log(math.exp(logits[b, targets[b, i, j], i, j]) / sum(math.exp(v) for v in logits[b, :, i, j]))
    assert pixel_nll(logits, targets).item() == pytest.approx(total / 24, rel=1e-5)


@pytest.mark.parametrize("k", [2, 8, 64])
def test_the_uniform_categorical_costs_log2_k_bits_per_dimension(k):
    nll = pixel_nll(torch.zeros(3, k, 4, 4), torch.randint(0, k, (3, 4, 4)))
    assert bits_per_dim(nll).item() == pytest.approx(math.log2(k))
    assert bits_per_dim(math.log(4)) == pytest.approx(2.0)


def test_pixel_nll_names_the_shapes_it_expects():
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        pixel_nll(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"int64 targets \(B, H, W\)"):
        pixel_nll(torch.zeros(3, 5, 4, 4), torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"int64 targets \(B, H, W\)"):
        pixel_nll(torch.zeros(3, 5, 4, 4), torch.zeros(3, 4, 5, dtype=torch.long))


# --- the masks ------------------------------------------------------------------------------------


def input_gradient(f, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """|d sum(f(x)[:, :, i, j]) / d x| summed over batch and channels: (H, W)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x)[:, :, i, j].sum(), x)
    return grad.abs().sum(dim=(0, 1))


def later_or_same(h: int, w: int, i: int, j: int) -> torch.Tensor:
    """(H, W) bool: True at (i, j) and at every pixel after it in raster order."""
    order = torch.arange(h * w).view(h, w)
    return order >= i * w + j


def test_the_pixelcnn_never_sees_the_current_or_a_later_pixel():
    net = small(uniform_palette(1)).backbone  # K = 8; type A then three type B layers
    one_hot = F.one_hot(torch.randint(0, 8, (2, 7, 6)), 8).permute(0, 3, 1, 2).float()
    logits = lambda x: net.logits(net.states_of(x)[-1])
    for i, j in [(0, 0), (0, 3), (3, 0), (3, 2), (6, 5)]:
        grad = input_gradient(logits, one_hot, i, j)
        assert grad[later_or_same(7, 6, i, j)].max() == 0, (i, j)
        if (i, j) != (0, 0):  # (0, 0) has no earlier pixel
            assert grad[~later_or_same(7, 6, i, j)].max() > 0, (i, j)
    assert input_gradient(logits, one_hot, 3, 2)[3, 1] > 0 and input_gradient(logits, one_hot, 3, 2)[2, 2] > 0


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_a_single_masked_layer_sees_its_centre_only_with_type_b(mask_type):
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, 3, mask_type)
    grad = input_gradient(conv, torch.randn(1, 2, 5, 5), 2, 2)
    assert (grad[2, 2] > 0) == (mask_type == "B")
    assert grad[later_or_same(5, 5, 2, 2)][1:].max() == 0  # every later pixel
    assert grad[1, 1] > 0 and grad[2, 1] > 0 and grad[1, 3] > 0  # above left, left, above right


def test_the_masks_are_those_of_the_paper():
    a, b = MaskedConv2d(1, 1, 3, "A").mask[0, 0], MaskedConv2d(1, 1, 3, "B").mask[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="'A' or 'B'"):
        MaskedConv2d(1, 1, 3, "C")
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2d(1, 1, 4, "A")


# --- palette and quantization -----------------------------------------------------------------------


def test_palette_colours_map_to_themselves():
    palette = uniform_palette(2)
    idx = torch.randint(0, 64, (3, 5, 4))
    assert torch.equal(quantize(palette[idx].permute(0, 3, 1, 2), palette), idx)


def test_kmeans_is_deterministic_for_a_seed_and_finds_separated_colours():
    colours = torch.tensor([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.9, 0.9, 0.9]])
    gen = torch.Generator().manual_seed(0)
    pixels = colours[torch.randint(0, 4, (20, 6, 6), generator=gen)] + 0.02 * torch.randn(20, 6, 6, 3, generator=gen)
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 3, 1, 2)
    palette = palette_from_images(images, 4, seed=3)
    assert torch.equal(palette, palette_from_images(images, 4, seed=3))
    # sorted dark to bright: the colours' luma is 0.1, 0.41, 0.56, 0.9
    assert torch.allclose(palette, colours, atol=0.03)


def test_palette_and_quantize_refuse_bad_input():
    with pytest.raises(ValueError, match=r"uint8 images \(N, 3, H, W\)"):
        palette_from_images(torch.rand(2, 3, 4, 4), 4)
    with pytest.raises(ValueError, match=r"uint8 images \(N, 3, H, W\)"):
        palette_from_images(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="k must be in"):
        palette_from_images(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), 5)
    with pytest.raises(ValueError, match=r"float images \(B, 3, H, W\)"):
        quantize(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), uniform_palette())
    with pytest.raises(ValueError, match=r"\(K, 3\)"):
        quantize(torch.rand(2, 3, 4, 4), torch.rand(4, 4))


def test_set_palette_keeps_k_and_changes_the_quantization(palette):
    method = small(uniform_palette(1))
    x = torch.rand(2, 3, 4, 4)
    method.set_palette(palette)
    assert torch.equal(method.palette, palette) and torch.equal(quantize(x, method.palette), quantize(x, palette))
    with pytest.raises(ValueError, match="keep its shape"):
        method.set_palette(uniform_palette(2))


# --- learning and sampling ---------------------------------------------------------------------------


def test_a_short_run_beats_the_uniform_palette_and_random_weights(data, palette):
    train, test = data
    loader = [as_batch(train.images[i:i + 64]) for i in range(0, 512, 64)]
    random_weights, method = small(palette), small(palette)
    fit(method, loader, 120, lr=3e-3, progress=False, device="cpu", log_every=40)

    def test_bits(m: PixelCNN) -> float:
        m.eval()
        with torch.no_grad():
            return m.training_step(as_batch(test.images))["bits_per_dim"].item()

    learned, untrained = test_bits(method), test_bits(random_weights)
    assert learned < 0.5 * math.log2(K) and learned < untrained - 1.0, (learned, untrained)
    images = method.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 3, SIZE, SIZE) and not method.training
    assert torch.cdist(images.permute(0, 2, 3, 1).reshape(-1, 3), palette).min(1).values.max() == 0
    assert torch.equal(images, method.sample(3, generator=torch.Generator().manual_seed(0)))


def test_layer_features_pool_every_layer_and_encode_reads_the_probe_layer(palette):
    method = small(palette)
    x = torch.rand(4, 3, SIZE, SIZE)
    features = method.layer_features(x)
    assert [f.shape for f in features] == [(4, 16)] * 4 and method.backbone.probe_layer == 2
    assert torch.allclose(method.encode(x), features[2]) and torch.allclose(method.embed(x), features[2])
    assert torch.allclose(small(palette, probe_layer=0).encode(x), features[0])
    with pytest.raises(ValueError, match=r"probe_layer must be in \[0, 3\]"):
        small(palette, probe_layer=4)


# --- the contract -----------------------------------------------------------------------------------


def test_training_step_returns_detached_scalar_diagnostics_measured_on_embed(data, palette):
    method = small(palette)
    method.track_rank = True
    batch = as_batch(data[0].images[:16])
    out = method.training_step(batch)
    assert {"loss", "bits_per_dim", "z_std", "z_raw_std", "z_erank"} <= set(out)
    assert all(v.ndim == 0 for v in out.values()) and out["loss"].requires_grad
    assert not any(v.requires_grad for k, v in out.items() if k != "loss")
    assert out["bits_per_dim"].item() == pytest.approx(out["loss"].item() / math.log(2))
    with torch.no_grad():
        z = method.embed(batch.views[0])
    assert torch.allclose(out["z_std"], embedding_std(z), atol=1e-6)
    method.track_rank = False
    assert "z_erank" not in method.training_step(batch)


def test_the_spec_builds_a_pixelcnn_without_a_profile_backbone():
    method = SPEC.build(CourseContext(make_backbone=lambda c: None, image_size=SIZE))
    assert SPEC.name == "pixelcnn" and SPEC.in_channels == () and method.image_size == SIZE
    assert torch.equal(method.palette, uniform_palette(2)) and method.backbone.feature_dim == 64
