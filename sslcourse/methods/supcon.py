"""Supervised contrastive learning (Khosla et al. 2020): SimCLR's views and head, with every
image of the same class counted as a positive. Course: ch. 5 §SupCon.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..analysis import embedding_std
from ..data import Batch
from ..heads import mlp
from ..losses import supcon
from .base import Method


class SupCon(Method):
    """Backbone + projection head; ``supcon`` over both views with the labels repeated.

    Args:
        hidden_dim, projection_dim: projection head 2048 -> 128 (the paper's).
        temperature: 0.1 (the paper's).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 temperature: float = 0.1) -> None:
        super().__init__(backbone)
        self.projection_head = mlp(backbone.feature_dim, hidden_dim, projection_dim)
        self.temperature = temperature

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z = self.projection_head(self.backbone(torch.cat(batch.views)))  # (V*N, D)
        labels = batch.labels.repeat(len(batch.views))
        return {"loss": supcon(z, labels, self.temperature), "z_std": embedding_std(z)}
