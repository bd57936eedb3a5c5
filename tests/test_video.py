"""Video colorization (Vondrick et al. 2018): the moving-shapes videos, the colour pointer and
its propagation, the loss, the tracking evaluation, and a learning test (tracking beats
copying the first mask)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sslcourse.analysis import embedding_std
from sslcourse.augment import grayscale
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, FramePairLoader, make_moving_shapes
from sslcourse.data.video import OBJECT_COLORS, bounce
from sslcourse.losses import colour_pointer, colour_propagation_loss, propagate
from sslcourse.methods import IMAGE_METHODS, SPECS, build_method
from sslcourse.methods.video_colorization import copy_first_mask, mask_iou, track_masks, tracking_iou
from sslcourse.train import fit


def small_method(width: int = 4, depth: int = 2, **overrides: object):
    torch.manual_seed(0)
    return build_method("video_colorization", lambda c: ConvNet(width=width, depth=depth, in_channels=c), **overrides)


# --- the videos -------------------------------------------------------------------------------


def test_moving_shapes_are_a_pure_function_of_the_seed():
    a, b, c = (make_moving_shapes(4, 5, 16, 3, seed=s) for s in (0, 0, 1))
    assert a.frames.shape == (4, 5, 3, 16, 16) and a.frames.dtype == torch.uint8
    assert a.masks.shape == (4, 5, 16, 16) and a.masks.dtype == torch.int64
    assert a.velocities.shape == (4, 3, 2) and a.positions.shape == (4, 5, 3, 2)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.frames, c.frames)


def test_bounce_is_the_identity_inside_the_range_and_reflects_at_the_walls():
    lo, hi = torch.tensor(1.0), torch.tensor(4.0)
    x = torch.tensor([1.0, 2.5, 4.0, 5.0, 7.0, 8.0, 0.0, -3.0])
    assert torch.allclose(bounce(x, lo, hi), torch.tensor([1.0, 2.5, 4.0, 3.0, 1.0, 2.0, 2.0, 3.0]))


def test_objects_move_by_their_velocity_between_frames_without_a_bounce():
    data = make_moving_shapes(32, 6, 24, 2, seed=3)
    r = data.radii[:, None, :, None]
    assert (data.positions >= r - 1e-4).all() and (data.positions <= 24 - r + 1e-4).all()  # always whole
    t = torch.arange(6, dtype=torch.float32).view(1, 6, 1, 1)
    straight = data.positions[:, :1] + t * data.velocities[:, None]  # the path without walls
    inside = (straight >= r) & (straight <= 24 - r)
    free = inside[:, 1:] & inside[:, :-1]  # (N, T-1, K, 2): no wall between frames t and t+1
    step = data.positions[:, 1:] - data.positions[:, :-1]
    velocity = data.velocities[:, None].expand_as(step)
    assert free.float().mean() > 0.5  # most steps are free: the check is not vacuous
    assert torch.allclose(step[free], velocity[free], atol=1e-4)
    assert (step[~free].abs() <= velocity[~free].abs() + 1e-4).all()  # a reflection never moves further


def test_mask_of_a_lone_object_is_centred_on_its_position():
    data = make_moving_shapes(16, 4, 24, 1, seed=0, noise=0.0)
    centres = torch.arange(24, dtype=torch.float32) + 0.5
    m = (data.masks == 1).float()  # (N, T, H, W)
    area = m.sum((2, 3))
    cx = (m * centres.view(1, 1, 1, 24)).sum((2, 3)) / area
    cy = (m * centres.view(1, 1, 24, 1)).sum((2, 3)) / area
    assert (area > 0).all()
    assert torch.allclose(torch.stack([cx, cy], -1), data.positions[:, :, 0], atol=0.5)  # pixel quantisation


def test_masks_are_exactly_the_pixels_drawn_in_each_objects_colour():
    data = make_moving_shapes(8, 4, 20, 3, seed=1, noise=0.0)
    pixels = data.frames.permute(0, 1, 3, 4, 2)  # (N, T, H, W, 3)
    for k in range(3):
        colour = (OBJECT_COLORS[data.colors[:, k]] * 255).round().to(torch.uint8)  # (N, 3)
        drawn = (pixels == colour[:, None, None, None]).all(-1)
        assert torch.equal(drawn, data.masks == k + 1)
    background = pixels[data.masks == 0]
    assert (background == background[:, :1]).all()  # grey: every object colour has chroma


def test_moving_shapes_reject_bad_arguments():
    with pytest.raises(ValueError, match="n_frames >= 2"):
        make_moving_shapes(2, 1)
    with pytest.raises(ValueError, match="n_objects must be in 1..8"):
        make_moving_shapes(2, 4, 16, 9)
    with pytest.raises(ValueError, match="size must be at least 8"):
        make_moving_shapes(2, 4, 6)


def test_frame_pair_loader_yields_a_reference_and_a_later_target_of_one_video():
    data = make_moving_shapes(12, 5, 16, 2, seed=0)
    loader = FramePairLoader(data, 4, max_gap=2, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    for batch in batches:
        reference, target = batch.views
        assert reference.shape == target.shape == (4, 3, 16, 16) and reference.dtype == torch.float32
        gap = batch.targets[:, 1] - batch.targets[:, 0]
        assert ((gap >= 1) & (gap <= 2)).all() and (batch.targets[:, 1] < 5).all()
        assert torch.equal(reference, data.frames[batch.labels, batch.targets[:, 0]].float() / 255)
        assert torch.equal(target, data.frames[batch.labels, batch.targets[:, 1]].float() / 255)
    with pytest.raises(ValueError, match="max_gap must be in 1..4"):
        FramePairLoader(data, 4, max_gap=5)


# --- the pointer, the propagation and the loss --------------------------------------------------


def test_pointer_reproduces_a_frame_exactly_when_target_is_reference():
    frame = torch.rand(2, 3, 6, 6)
    colours = frame.flatten(2).transpose(1, 2)  # (B, 36, 3)
    one_hot = torch.eye(36).expand(2, 36, 36)  # a distinct one-hot embedding per position
    pointer = colour_pointer(one_hot, one_hot, temperature=0.01)
    assert torch.allclose(pointer, torch.eye(36).expand(2, 36, 36), atol=1e-6)
    copied = propagate(pointer, colours)
    assert torch.allclose(copied.transpose(1, 2).reshape(frame.shape), frame, atol=1e-6)
    distinct = torch.nn.functional.normalize(torch.randn(2, 36, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    assert torch.allclose(propagate(colour_pointer(distinct, distinct, 1e-3), colours), colours, atol=1e-6)


def test_pointer_matches_a_naive_softmax_over_reference_positions():
    gen = torch.Generator().manual_seed(1)
    ft, fr = torch.randn(2, 5, 4, generator=gen), torch.randn(2, 7, 4, generator=gen)
    a = colour_pointer(ft, fr, temperature=0.5)
    naive = torch.empty(2, 5, 7)
    for b in range(2):
        for i in range(5):
            scores = torch.stack([torch.exp(ft[b, i] @ fr[b, j] / 0.5) for j in range(7)])
            naive[b, i] = scores / scores.sum()
    assert torch.allclose(a, naive, atol=1e-6)


def test_propagated_one_hot_masks_are_distributions_over_labels():
    gen = torch.Generator().manual_seed(2)
    a = colour_pointer(torch.randn(3, 10, 8, generator=gen), torch.randn(3, 12, 8, generator=gen), 0.3)
    masks = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 12), generator=gen), 4)
    soft = propagate(a, masks)
    assert soft.shape == (3, 10, 4) and (soft >= 0).all()
    assert torch.allclose(soft.sum(-1), torch.ones(3, 10), atol=1e-6)


def test_colour_propagation_loss_is_the_mse_of_copied_colours_and_trains_only_the_pointer():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 6, generator=gen, requires_grad=True)
    ref = torch.rand(2, 6, 3, generator=gen).requires_grad_()
    tgt = torch.rand(2, 4, 3, generator=gen).requires_grad_()
    pointer = logits.softmax(-1)
    loss = colour_propagation_loss(pointer, ref, tgt)
    naive = sum(((pointer[b, i] @ ref[b] - tgt[b, i]) ** 2).sum() for b in range(2) for i in range(4)) / (2 * 4 * 3)
    assert torch.allclose(loss, naive)
    loss.backward()
    assert logits.grad is not None and ref.grad is None and tgt.grad is None  # colours are data


def test_pointer_and_propagation_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        colour_pointer(torch.randn(5, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="share the batch size B and the embedding size D"):
        colour_pointer(torch.randn(2, 5, 4), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="temperature must be positive"):
        colour_pointer(torch.randn(2, 5, 4), torch.randn(2, 5, 4), 0.0)
    with pytest.raises(ValueError, match="same B and Nr"):
        propagate(torch.rand(2, 5, 6), torch.rand(2, 5, 3))


# --- the tracking evaluation ---------------------------------------------------------------------


def test_mask_iou_is_one_with_itself_zero_when_disjoint_and_ignores_the_background():
    a = torch.zeros(2, 6, 6, dtype=torch.long)
    a[:, :2, :2], a[:, 4:, 4:] = 1, 2
    assert mask_iou(a, a) == 1.0
    disjoint = torch.zeros_like(a)
    disjoint[:, 2:4, 2:4], disjoint[:, 0, 5] = 1, 2
    assert mask_iou(disjoint, a) == 0.0
    shifted = torch.zeros_like(a)
    shifted[:, :2, 1:3] = 1  # object 1: 2 of 6 pixels shared; object 2 missing: IoU 0
    assert torch.isclose(mask_iou(shifted, a), torch.tensor((2 / 6 + 0.0) / 2))


def test_mask_iou_and_track_masks_reject_bad_input():
    a = torch.zeros(3, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="one shape"):
        mask_iou(a, a[:, :3])
    with pytest.raises(ValueError, match="integer labels"):
        mask_iou(a.float(), a)
    with pytest.raises(ValueError, match="no object"):
        mask_iou(a, a)
    method = small_method()
    frames = torch.zeros(2, 3, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"first_mask must be integer labels of shape \(2, 8, 8\)"):
        track_masks(method, frames, torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown references"):
        track_masks(method, frames, torch.zeros(2, 8, 8, dtype=torch.long), references="last")


def test_track_masks_gives_one_label_map_per_later_frame():
    data = make_moving_shapes(3, 4, 16, 2, seed=0)
    method = small_method()
    out = track_masks(method, data.frames, data.masks[:, 0])
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.int64 and 0 <= out.min() and out.max() <= 2
    single = track_masks(method, data.frames[0], data.masks[0, 0], n_objects=2, references="first")
    assert single.shape == (3, 16, 16)
    assert torch.equal(copy_first_mask(data.masks[:, 0], 4), data.masks[:, :1].expand(-1, 3, -1, -1))


# --- the method --------------------------------------------------------------------------------


def test_video_colorization_is_declared_as_a_video_method_outside_the_image_methods():
    spec = SPECS["video_colorization"]
    assert (spec.inputs, spec.views, spec.in_channels) == ("video", None, (1,))
    assert "video_colorization" not in IMAGE_METHODS


def test_training_step_reports_the_loss_and_z_std_of_the_reference_frames_embedding():
    data = make_moving_shapes(8, 4, 16, 2, seed=0)
    batch = next(iter(FramePairLoader(data, 8)))
    method = small_method()
    out = method.training_step(batch)
    assert {"loss", "pretext_accuracy", "static_copy_loss", "z_std", "z_raw_std"} <= set(out)
    assert out["loss"].requires_grad and not any(v.requires_grad for k, v in out.items() if k != "loss")
    method.eval()
    with torch.no_grad():
        out = method.training_step(batch)
        z = method.embed(batch.views[0])
    assert z.shape == (8, method.backbone.feature_dim)
    assert torch.allclose(out["z_std"], embedding_std(z), atol=1e-6)
    assert torch.equal(method.encode(batch.views[0]), method.encode(grayscale(batch.views[0])))  # grey is encoded


def test_video_colorization_rejects_bad_batches_and_backbones():
    method = small_method()
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"views = \[reference, target\]"):
        method.training_step(Batch(views=[x], labels=torch.zeros(2)))
    with pytest.raises(ValueError, match="RGB frames of one shape"):
        method.training_step(Batch(views=[x, x[:, :, :4]], labels=torch.zeros(2)))

    class Pooled(nn.Linear):
        feature_dim = 4

    with pytest.raises(TypeError, match="no feature_map"):
        build_method("video_colorization", lambda c: Pooled(c, 4))


# --- learning --------------------------------------------------------------------------------


def test_tracking_after_colorization_training_beats_copying_the_first_mask():
    # Measured with data seeds 0, 1, 2 (train set and loader seed s, test set seed s + 100, weights
    # seed 0; 100 steps, 1-4 s on one core): tracking IoU 0.425 / 0.405 / 0.418 against 0.164 /
    # 0.179 / 0.171 for the copied first mask (margins 0.26, 0.23, 0.25). The untrained network
    # tracks nothing (IoU 0.00): its embeddings are alike at every position, so the pointer
    # spreads out and the background label wins everywhere.
    train = make_moving_shapes(128, 6, 16, 2, seed=0)
    test = make_moving_shapes(64, 6, 16, 2, seed=100)
    method = small_method(width=8)
    fit(method, FramePairLoader(train, 16, max_gap=2, seed=0), 100, lr=3e-3, log_every=25, progress=False,
        device="cpu")
    iou = tracking_iou(method, test.frames, test.masks)
    assert iou["model"] > iou["copy_first_mask"] + 0.15, iou
