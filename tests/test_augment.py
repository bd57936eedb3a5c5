from __future__ import annotations

import pytest
import torch

from sslcourse import augment


@pytest.fixture
def batch() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(32, 3, 16, 16)


def test_views_keep_range_and_shape(batch):
    for recipe in augment.simclr_views(12, blur=True) + augment.byol_views(12) + augment.shapes_views(12):
        out = recipe(batch)
        assert out.shape == (32, 3, 12, 12) and out.min() >= 0 and out.max() <= 1


def test_parameters_are_drawn_per_image():
    """The same image repeated across the batch must get different views."""
    x = torch.rand(1, 3, 16, 16).expand(8, -1, -1, -1).contiguous()
    out = augment.simclr_views(16)[0](x)
    assert len({tuple(v.flatten()[:20].tolist()) for v in out}) == 8


def test_full_crop_without_flip_is_identity(batch):
    out = augment.random_resized_crop(batch, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)
    assert torch.allclose(out, batch, atol=1e-5)


def test_flip_is_a_mirror(batch):
    out = augment.random_resized_crop(batch, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0)
    assert torch.allclose(out, batch.flip(-1), atol=1e-5)


def test_jitter_with_probability_zero_changes_nothing(batch):
    assert torch.equal(augment.color_jitter(batch, p=0.0), batch)


def test_hue_rotation_keeps_grey_pixels_grey():
    grey = torch.rand(4, 1, 8, 8).expand(-1, 3, -1, -1)
    out = augment.color_jitter(grey, brightness=0, contrast=0, saturation=0, hue=0.5, p=1.0)
    assert torch.allclose(out, grey, atol=1e-4)


def test_grayscale_makes_channels_equal(batch):
    out = augment.random_grayscale(batch, p=1.0)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


def test_blur_keeps_a_constant_image_constant():
    x = torch.full((4, 3, 32, 32), 0.3)
    assert torch.allclose(augment.gaussian_blur(x, p=1.0), x, atol=1e-5)


def test_blur_reduces_high_frequencies(batch):
    out = augment.gaussian_blur(torch.rand(4, 3, 64, 64), p=1.0, sigma=(2.0, 2.0), kernel_fraction=0.2)
    assert out.diff(dim=-1).abs().mean() < 0.5 * torch.rand(4, 3, 64, 64).diff(dim=-1).abs().mean()


def test_solarize_inverts_bright_pixels_only():
    x = torch.tensor([0.2, 0.7]).view(1, 1, 1, 2).expand(2, 3, 1, 2)
    out = augment.solarize(x, p=1.0)
    assert torch.allclose(out[..., 0], x[..., 0]) and torch.allclose(out[..., 1], 1 - x[..., 1])
