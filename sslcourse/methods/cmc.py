"""Contrastive Multiview Coding (Tian, Krishnan & Isola 2019) with two "sensory" views of
one image: its luminance (Y) and its chrominance (Cb, Cr), each seen by its own encoder.

Course: :ref:`ch5-positives`, :ref:`ch5-methods`. The positive pair is the luminance of one
crop of an image and the chrominance of another crop of the same image (the course's two
views, ``_views``); the other images of the batch are the negatives, in both directions
(Y -> CbCr and CbCr -> Y), which is CLIP's symmetric loss. The representation used for
evaluation concatenates both encoders' features, as in the paper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from .. import augment
from ..data import Batch
from ..heads import mlp
from ..losses import clip_loss
from .base import CourseContext, Method, MethodSpec, feature_dim, ssl_views

# ITU-R BT.601 RGB -> YCbCr (without the offsets, which batch norm removes anyway).
_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def luma_chroma(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split RGB images (B, 3, H, W) into luminance (B, 1, H, W) and chrominance (B, 2, H, W)."""
    ycc = torch.einsum("ij,bjhw->bihw", _YCBCR.to(x), x)  # i: output channel, j: RGB channel
    return ycc[:, :1], ycc[:, 1:]


class LumaChromaEncoder(nn.Module):
    """Two encoders, one per channel group; forward returns their concatenated features."""

    def __init__(self, luma: nn.Module, chroma: nn.Module) -> None:
        super().__init__()
        self.luma, self.chroma = luma, chroma
        self.feature_dim = luma.feature_dim + chroma.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        y, c = luma_chroma(x)
        return torch.cat([self.luma(y), self.chroma(c)], dim=1)


class LumaChromaHeads(nn.Module):
    """One projection head per channel group; forward maps the concatenated features of
    ``LumaChromaEncoder`` to the concatenated projections."""

    def __init__(self, luma_dim: int, chroma_dim: int, hidden_dim: int, projection_dim: int) -> None:
        super().__init__()
        self.luma, self.chroma = mlp(luma_dim, hidden_dim, projection_dim), mlp(chroma_dim, hidden_dim, projection_dim)
        self.luma_dim = luma_dim

    def forward(self, h: Tensor) -> Tensor:
        return torch.cat([self.luma(h[:, : self.luma_dim]), self.chroma(h[:, self.luma_dim :])], dim=1)


class CMC(Method):
    """CMC between luminance and chrominance encoders: the luminance of ``batch.views[0]``
    against the chrominance of ``batch.views[-1]``.

    The course trains it on two views, two independent crops (with flips) of each image
    (``_views``): the two channel groups then come from different crops, so what they share is
    the object, not its position and size in the frame, which one crop would let the encoders
    match on. Given one view, both groups come from the same crop: the pure cross-channel task.
    ``color_jitter`` (the course's setting) changes the colour of each group's input
    independently, so that they do not share the object's colour either. Give it views without
    random greyscale (a grey image has no chrominance to contrast).

    Args:
        luma_backbone: encoder of 1-channel images; chroma_backbone: encoder of 2-channel images.
        hidden_dim, projection_dim: one projection head per view.
        temperature: 0.07 (the paper's NCE temperature).
    """

    def __init__(self, luma_backbone: nn.Module, chroma_backbone: nn.Module, hidden_dim: int = 512,
                 projection_dim: int = 128, temperature: float = 0.07,
                 color_jitter: Callable[[Tensor], Tensor] | None = None) -> None:
        heads = LumaChromaHeads(feature_dim(luma_backbone), feature_dim(chroma_backbone), hidden_dim, projection_dim)
        super().__init__(LumaChromaEncoder(luma_backbone, chroma_backbone), heads)
        self.temperature, self.color_jitter = temperature, color_jitter

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        luma_view, chroma_view = batch.views[0], batch.views[-1]
        if self.color_jitter is not None:
            luma_view, chroma_view = self.color_jitter(luma_view), self.color_jitter(chroma_view)
        y, _ = luma_chroma(luma_view)
        _, c = luma_chroma(chroma_view)
        z_luma = self.projection_head.luma(self.backbone.luma(y))
        z_chroma = self.projection_head.chroma(self.backbone.chroma(c))
        return {"loss": clip_loss(z_luma, z_chroma, self.temperature), **self.collapse_diagnostics(z_luma)}


def _course_settings(context: CourseContext) -> dict:
    # A separate colour jitter for the luminance and the chrominance input: with the two crops
    # of ``_views`` they then share the object's shape, but neither its colour nor its place
    # (ch. 5). Temperature 0.1 instead of the paper's 0.07.
    jitter = partial(augment.color_jitter, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5, p=1.0)
    settings = {"temperature": 0.1, "color_jitter": jitter}
    if context.head_width is not None:
        settings["hidden_dim"] = context.head_width
    return settings


def _views(dataset: str, size: int) -> list[augment.ViewRecipe]:
    # Two independent crops (and flips) without colour changes: the luminance of the first is
    # contrasted with the chrominance of the second, so the pair does not share the object's
    # place in the frame; CMC jitters each channel group's colour itself (``color_jitter``).
    recipe = dataclasses.replace(ssl_views(dataset, size)[0], jitter_p=0.0, gray_p=0.0)
    return [recipe, recipe]


SPEC = MethodSpec(name="cmc", method=CMC, settings=_course_settings, views=_views, in_channels=(1, 2))
