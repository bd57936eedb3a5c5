"""Procedural videos for self-supervised tracking (Course: :ref:`ch4b-video`): a
few coloured discs and squares moving at constant velocity over a still, mildly textured
background, with the instance segmentation of every frame.

Because the motion is known exactly, the chapter can check what colour propagation learns:
a model trained only to recolour grey frames from a colour reference frame is evaluated by
propagating the first frame's object masks through the video (``methods.video_colorization``).

Rendering is vectorised over videos, frames and objects: every object is a signed distance
function of its centre, evaluated on the pixel grid, with hard edges so that the masks are
exactly the pixels drawn in the object's colour. Objects bounce off the borders (their
position is a triangle wave of the straight-line path) and stay whole inside the frame; a
later object is drawn over an earlier one where they overlap, and the mask says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .loaders import Batch
from .shapes import PALETTE

OBJECT_SHAPES = ["disc", "square"]
# The chromatic entries of the shapes palette (no white or grey, which the background uses).
# Their luma is not all distinct (orange and cyan are about equal in grey): colour is not a
# function of the grey frame, so recolouring needs the reference frame.
OBJECT_COLORS = PALETTE[:8]
BACKGROUND_LEVEL = (0.15, 0.35)  # grey level of the background, uniform per video
TEXTURE_CONTRAST = 0.25  # depth of the background's stripes, as a fraction of its level


@dataclass
class VideoSet:
    """Videos and what generated them.

    Attributes:
        frames: (N, T, 3, H, W) uint8 RGB frames.
        masks: (N, T, H, W) int64 instance labels: 0 background, k = 1..K object k (the one
            drawn on top where objects overlap).
        positions: (N, T, K, 2) float centre of every object in every frame, in pixels (x, y),
            pixel (i, j) having its centre at (j + 0.5, i + 0.5).
        velocities: (N, K, 2) float initial velocity in pixels per frame (x, y); the sign of
            a component flips when the object bounces off a border.
        radii: (N, K) float radius (disc) or half-side (square) in pixels.
        shapes: (N, K) int64 index into ``OBJECT_SHAPES``.
        colors: (N, K) int64 index into ``OBJECT_COLORS``, distinct within a video.
    """

    frames: Tensor
    masks: Tensor
    positions: Tensor
    velocities: Tensor
    radii: Tensor
    shapes: Tensor
    colors: Tensor

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_objects(self) -> int:
        return self.velocities.shape[1]


def bounce(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Return the straight-line coordinates ``x`` folded into [lo, hi] by reflection at both
    ends: the path of a point bouncing elastically between two walls (a triangle wave of
    period 2 (hi - lo)). Broadcasts over all arguments."""
    span = hi - lo
    phase = torch.remainder(x - lo, 2 * span)
    return lo + span - (phase - span).abs()


def make_moving_shapes(n_videos: int, n_frames: int = 6, size: int = 24, n_objects: int = 2, seed: int = 0, *,
                       speed: tuple[float, float] = (1.0, 2.5), radius: tuple[float, float] = (0.12, 0.2),
                       texture: bool = True, noise: float = 0.02) -> VideoSet:
    """Return ``n_videos`` videos of ``n_frames`` frames (``size`` px square) in which
    ``n_objects`` coloured discs and squares move at constant speed and bounce off the borders.

    The position of object k in frame t is ``bounce(p_k + t v_k)`` inside [r_k, size - r_k] on
    each axis (``bounce``), so an object is always whole in the frame and moves by exactly its
    velocity between frames that contain no bounce. Colours are distinct within a video;
    the background is one grey level per video with faint stripes (``texture``) and Gaussian
    pixel noise of std ``noise`` over the whole frame (the masks are drawn without it).
    The videos are a pure function of the arguments.

    Args:
        n_videos: N.
        n_frames: T, at least 2.
        size: H = W in pixels, at least 8.
        n_objects: K, 1..8 (the number of object colours).
        seed: seed of every random draw.
        speed: (min, max) speed in pixels per frame, direction uniform.
        radius: (min, max) radius (disc) or half-side (square) as a fraction of ``size``.
        texture: draw stripes on the background (else it is plain).
        noise: std of the pixel noise in [0, 1] units.
    """
    if n_videos < 1 or n_frames < 2:
        raise ValueError(f"need n_videos >= 1 and n_frames >= 2, got n_videos={n_videos}, n_frames={n_frames}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if not 1 <= n_objects <= len(OBJECT_COLORS):
        raise ValueError(f"n_objects must be in 1..{len(OBJECT_COLORS)} (one colour each), got {n_objects}")
    if not 0 < radius[0] <= radius[1] < 0.5:
        raise ValueError(f"radius must be (min, max) fractions of the size with 0 < min <= max < 0.5, got {radius}")
    if not 0 <= speed[0] <= speed[1]:
        raise ValueError(f"speed must be (min, max) with 0 <= min <= max, got {speed}")
    gen = torch.Generator().manual_seed(seed)
    n, t_len, k = n_videos, n_frames, n_objects

    def uniform(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=gen)

    radii = uniform(*radius, n, k) * size
    shapes = torch.randint(0, len(OBJECT_SHAPES), (n, k), generator=gen)
    colors = torch.rand(n, len(OBJECT_COLORS), generator=gen).argsort(1)[:, :k]  # distinct per video
    lo, hi = radii.unsqueeze(-1), size - radii.unsqueeze(-1)  # (N, K, 1): the centre's range
    start = lo + (hi - lo) * torch.rand(n, k, 2, generator=gen)
    angle = uniform(0, 2 * math.pi, n, k)
    velocities = uniform(*speed, n, k).unsqueeze(-1) * torch.stack([angle.cos(), angle.sin()], -1)  # (N, K, 2)
    bg_level = uniform(*BACKGROUND_LEVEL, n)
    stripe_angle, stripe_freq = uniform(0, math.pi, n), uniform(0.25, 0.6, n)  # radians per pixel
    pixel_noise = torch.randn(n, t_len, 3, size, size, generator=gen) * noise

    t = torch.arange(t_len, dtype=torch.float32).view(1, t_len, 1, 1)
    positions = bounce(start.unsqueeze(1) + t * velocities.unsqueeze(1), lo.unsqueeze(1), hi.unsqueeze(1))

    centres = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(centres, centres, indexing="ij")  # (H, W)
    dx = x - positions[..., 0, None, None]  # (N, T, K, H, W)
    dy = y - positions[..., 1, None, None]
    r = radii.view(n, 1, k, 1, 1)
    disc = torch.sqrt(dx * dx + dy * dy) - r
    square = torch.maximum(dx.abs(), dy.abs()) - r
    inside = torch.where(shapes.view(n, 1, k, 1, 1) == 1, square, disc) < 0
    # Later objects are drawn on top: the label is the largest k + 1 among the objects covering a pixel.
    labels = torch.arange(1, k + 1).view(1, 1, k, 1, 1)
    masks = (inside * labels).amax(2)  # (N, T, H, W)

    a = stripe_angle.view(n, 1, 1)
    stripes = 0.5 + 0.5 * torch.sin(stripe_freq.view(n, 1, 1) * (x * a.cos() + y * a.sin()))  # (N, H, W)
    background = bg_level.view(n, 1, 1) * (1 - TEXTURE_CONTRAST * stripes * float(texture))
    palette = torch.cat([torch.zeros(n, 1, 3), OBJECT_COLORS[colors]], 1)  # (N, K + 1, 3); row 0 unused
    drawn = palette[torch.arange(n).view(n, 1, 1, 1), masks]  # (N, T, H, W, 3)
    image = torch.where((masks > 0).unsqueeze(-1), drawn, background.view(n, 1, size, size, 1).expand_as(drawn))
    image = (image.permute(0, 1, 4, 2, 3) + pixel_noise).clamp(0, 1)
    frames = (image * 255).round().to(torch.uint8)
    return VideoSet(frames=frames, masks=masks, positions=positions, velocities=velocities, radii=radii,
                    shapes=shapes, colors=colors)


class FramePairLoader:
    """Yield shuffled ``Batch``es of (reference frame, later target frame) pairs, one pair per
    video and batch: the input of ``methods.VideoColorization``.

    How a video batch travels through the ``Batch`` contract: ``views = [reference, target]``,
    both float RGB (B, 3, H, W) in [0, 1] (the method takes their grey levels as input and their
    colours as what is copied and what is predicted); ``labels`` = the video's index (B,),
    never read in training; ``targets`` = (B, 2) the frame indices (t_ref, t_target). The
    instance masks stay out of the batch: training never sees them, only the tracking
    evaluation does (``VideoSet.masks``).

    Args:
        data: the videos; moved to ``device`` once.
        batch_size: pairs per batch (one video each).
        max_gap: the target frame is 1..max_gap frames after the reference (uniform).
        seed: seed of the order and of the frame choice (reproducible batches).
    """

    def __init__(self, data: VideoSet, batch_size: int, max_gap: int = 2, device: torch.device | str = "cpu",
                 seed: int = 0) -> None:
        if not 1 <= batch_size <= len(data):
            raise ValueError(f"batch_size must be in 1..{len(data)}, got {batch_size}")
        n_frames = data.frames.shape[1]
        if not 1 <= max_gap < n_frames:
            raise ValueError(f"max_gap must be in 1..{n_frames - 1} for videos of {n_frames} frames, got {max_gap}")
        self.frames = data.frames.to(device)
        self.batch_size, self.max_gap = batch_size, max_gap
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.frames) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        n, t_len = self.frames.shape[:2]
        device = self.frames.device
        order = torch.randperm(n, generator=self.generator)
        gap = torch.randint(1, self.max_gap + 1, (n,), generator=self.generator)
        t_ref = (torch.rand(n, generator=self.generator) * (t_len - gap)).long()  # uniform in 0..T-1-gap
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            ref, tgt = t_ref[idx], t_ref[idx] + gap[idx]
            idx_d = idx.to(device)
            reference = self.frames[idx_d, ref.to(device)].float().div_(255)
            target = self.frames[idx_d, tgt.to(device)].float().div_(255)
            yield Batch(views=[reference, target], labels=idx_d, targets=torch.stack([ref, tgt], 1).to(device))
