"""Supervised baseline: backbone + linear classifier trained with cross-entropy on labels.

Course: :ref:`ch0-first-run` (the reference point for SSL), :ref:`ch1-fine-tuning`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import augment
from ..data import Batch
from .base import Method, MethodSpec, feature_dim


class Supervised(Method):
    """Cross-entropy on the first view; ``label_smoothing`` 0 by default.

    Its ``projection_head`` is the linear classifier (z is the logits). Fine-tuning a
    pre-trained backbone is this method with ``backbone_lr_scale`` < 1: the new classifier
    learns at the full rate, the pre-trained weights move slowly."""

    def __init__(self, backbone: nn.Module, num_classes: int, label_smoothing: float = 0.0,
                 backbone_lr_scale: float = 1.0) -> None:
        super().__init__(backbone, nn.Linear(feature_dim(backbone), num_classes))
        self.label_smoothing = label_smoothing
        self.backbone_lr_scale = backbone_lr_scale

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.backbone.parameters()), "lr_scale": self.backbone_lr_scale},
                {"params": list(self.projection_head.parameters()), "lr_scale": 1.0}]

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.embed(batch.views[0])
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss, "train_accuracy": accuracy, **self.collapse_diagnostics(logits)}


def supervised_views(dataset: str, size: int) -> list[augment.ViewRecipe]:
    """One mild view, crop and flip: the usual supervised augmentation."""
    return [augment.ViewRecipe(size=size, crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)]


SPEC = MethodSpec(name="supervised", method=Supervised, settings=lambda c: {"num_classes": c.num_classes},
                  views=supervised_views)
