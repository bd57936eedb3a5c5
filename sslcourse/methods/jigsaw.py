"""Jigsaw puzzles (Noroozi & Favaro 2016): shuffle the 3x3 tiles of an image by one of P
permutations and classify which.

Course: :ref:`ch4-jigsaw`. The classes are a subset of the
9! permutations chosen far apart in Hamming distance (``pretext.jigsaw_permutations``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..pretext import enlarge_patches, jigsaw_permutations, jigsaw_tiles
from .base import CourseContext, Method, MethodSpec, classification_outputs, feature_dim, width
from .supervised import supervised_views


class Jigsaw(Method):
    """A shared backbone on every tile (the paper's context-free network), the tiles' features
    concatenated in their shuffled order, then ``permutation_classifier``: an MLP to P logits.

    The backbone sees tiles but ``encode(x)`` runs it on whole images (global average pooling
    makes that work). The contract's z is defined on one image, so the ``projection_head`` is
    the identity and z = h; the classifier, which reads all tiles together, has its own name.
    The permutations are a buffer (saved with the weights: they define the classes), chosen
    with a fixed seed.

    Args:
        backbone: encoder with ``feature_dim``; tiles smaller than its ``downsampling`` are
            enlarged to that side (``pretext.enlarge_patches``).
        grid: tiles per side (3: the paper).
        n_permutations: P, the number of classes (the paper: 1,000 on ImageNet; 24-100 at 12-20 px).
        tile: side of the tiles (None: ``pretext.jigsaw_tiles``'s default, a crop slightly
            smaller than the cell).
        hidden_dim: width of the classifier's hidden layer.
        permutation_seed: seed of the permutation selection.
    """

    def __init__(self, backbone: nn.Module, grid: int = 3, n_permutations: int = 24, tile: int | None = None,
                 hidden_dim: int = 256, permutation_seed: int = 0) -> None:
        super().__init__(backbone)
        perms = jigsaw_permutations(grid * grid, n_permutations, torch.Generator().manual_seed(permutation_seed))
        self.register_buffer("permutations", perms)
        self.grid, self.tile = grid, tile
        self.permutation_classifier = mlp(grid * grid * feature_dim(backbone), hidden_dim, n_permutations)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        tiles, labels = jigsaw_tiles(x, self.permutations, self.grid, tile=self.tile)
        n, k = tiles.shape[:2]
        tiles = enlarge_patches(tiles.flatten(0, 1), getattr(self.backbone, "downsampling", 1))
        h = self.backbone(tiles).view(n, k * self.backbone.feature_dim)  # (B, tiles * d)
        with torch.no_grad():
            z = self.embed(x)
        return classification_outputs(self.permutation_classifier(h), labels, "jigsaw_loss", z, self)


def _course_settings(context: CourseContext) -> dict:
    return {"hidden_dim": width(context, 256)}  # the profile's head width; 256: the course's choice


SPEC = MethodSpec(name="jigsaw", method=Jigsaw, settings=_course_settings, views=supervised_views)
