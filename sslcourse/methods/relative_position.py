"""Relative patch position, context prediction (Doersch, Gupta & Efros 2015): given the centre
patch of a 3x3 grid and one of its 8 neighbours, classify where the neighbour is.

Course: :ref:`ch4-relative-position`; the touching-patches shortcut and its fixes (a gap,
per-patch jitter, colour changes): :ref:`ch4-shortcuts`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..pretext import enlarge_patches, relative_position_pairs
from .base import CourseContext, Method, MethodSpec, classification_outputs, feature_dim, width
from .supervised import supervised_views


class RelativePosition(Method):
    """A shared backbone on both patches, then ``pair_classifier``: an MLP on the concatenated
    pair features (2 * feature_dim) to 8 logits (the paper's late fusion of two towers).

    The backbone is trained on patches but ``encode(x)`` runs it on whole images: global
    average pooling makes the output size independent of the input's. The contract's z is
    defined on one image, so the ``projection_head`` is the identity and z = h; the pair
    classifier, which reads two images, lives under its own name. Batch norm's running
    statistics come from the patches and from the whole images of the diagnostics (z = h of
    ``batch.views[0]``, computed in the same mode).

    Args:
        backbone: encoder with ``feature_dim``; patches smaller than its ``downsampling`` are
            enlarged to that side (``pretext.enlarge_patches``).
        patch: side of the patches (None: the largest whose grid fits the images, e.g. 3 px at
            12 px with a 1 px gap, 6 px at 20 px).
        gap, jitter, color_shift, drop_channels: see ``pretext.relative_position_pairs``
            (the paper: 96 px patches, 48 px gap, jitter up to 7 px; at 12-20 px a 1 px gap
            and no jitter is what fits).
        hidden_dim: width of the pair classifier's hidden layer.
    """

    def __init__(self, backbone: nn.Module, patch: int | None = None, gap: int = 1, jitter: int | None = None,
                 color_shift: float = 0.0, drop_channels: bool = False, hidden_dim: int = 256) -> None:
        super().__init__(backbone)
        self.pair_classifier = mlp(2 * feature_dim(backbone), hidden_dim, 8)
        self.patch, self.gap, self.jitter = patch, gap, gap // 2 if jitter is None else jitter
        self.color_shift, self.drop_channels = color_shift, drop_channels

    def patch_size(self, image_side: int) -> int:
        """Return the patch side used on images of side ``image_side``."""
        if self.patch is not None:
            return self.patch
        return max(1, (image_side - 2 * self.gap - 2 * self.jitter) // 3)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        center, neighbour, labels = relative_position_pairs(
            x, self.patch_size(min(x.shape[2:])), self.gap, jitter=self.jitter, color_shift=self.color_shift,
            drop_channels=self.drop_channels)
        pairs = enlarge_patches(torch.cat([center, neighbour]), getattr(self.backbone, "downsampling", 1))
        h = self.backbone(pairs)  # one pass: batch norm sees both patches
        logits = self.pair_classifier(torch.cat(h.chunk(2), dim=1))
        with torch.no_grad():
            z = self.embed(x)
        return classification_outputs(logits, labels, "position_loss", z, self)


def _course_settings(context: CourseContext) -> dict:
    return {"hidden_dim": width(context, 256)}  # the profile's head width; 256: the course's choice


SPEC = MethodSpec(name="relative_position", method=RelativePosition, settings=_course_settings,
                  views=supervised_views)
