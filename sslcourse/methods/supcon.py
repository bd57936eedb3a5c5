"""Supervised contrastive learning (Khosla et al. 2020): SimCLR's views and head, with every
image of the same class counted as a positive. Course: :ref:`ch5-methods`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import supcon
from .base import Method, MethodSpec, feature_dim
from .simclr import _course_settings


class SupCon(Method):
    """Backbone + projection head; ``supcon`` over both views with the labels repeated.

    Args:
        hidden_dim, projection_dim: projection head 2048 -> 128 (the paper's).
        temperature: 0.1 (the paper's).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 temperature: float = 0.1) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim))
        self.temperature = temperature

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z = self.projection_head(self.backbone(torch.cat(batch.views)))  # (V*N, D)
        labels = batch.labels.repeat(len(batch.views))
        return {"loss": supcon(z, labels, self.temperature), **self.collapse_diagnostics(z[: len(batch)])}


# SimCLR's settings: the same head and temperature, so that the two differ only in the positives.
SPEC = MethodSpec(name="supcon", method=SupCon, settings=_course_settings)
