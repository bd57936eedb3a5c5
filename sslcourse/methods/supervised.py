"""Supervised baseline: backbone + linear classifier trained with cross-entropy on labels.

Course: ch. 0 (the reference point for SSL), ch. 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from .base import Method


class Supervised(Method):
    """Cross-entropy on the first view; ``label_smoothing`` 0 by default (ch. 2 varies it).

    Fine-tuning a pre-trained backbone is this method with ``backbone_lr_scale`` < 1: the new
    classifier learns at the full rate, the pre-trained weights move slowly (Course: ch. 1)."""

    def __init__(self, backbone: nn.Module, num_classes: int, label_smoothing: float = 0.0,
                 backbone_lr_scale: float = 1.0) -> None:
        super().__init__(backbone)
        self.classifier = nn.Linear(backbone.feature_dim, num_classes)
        self.label_smoothing = label_smoothing
        self.backbone_lr_scale = backbone_lr_scale

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.backbone.parameters()), "lr_scale": self.backbone_lr_scale},
                {"params": list(self.classifier.parameters()), "lr_scale": 1.0}]

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.classifier(self.backbone(batch.views[0]))
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss, "train_accuracy": accuracy}
