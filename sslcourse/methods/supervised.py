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
    """Cross-entropy on the first view, with the regularisers whose effect on transfer
    chapter 2 measures (each off by default).

    Its ``projection_head`` is the linear classifier (z is the logits). Fine-tuning a
    pre-trained backbone is this method with ``backbone_lr_scale`` < 1: the new classifier
    learns at the full rate, the pre-trained weights move slowly.

    Args:
        label_smoothing: the target puts 1 - s on the label and s/K on every class
            (``F.cross_entropy``'s definition; Szegedy et al. 2016).
        dropout: dropout probability on the features, before the classifier.
        head_weight_decay: the classifier's own weight decay (None: the optimizer's).
        adversarial_steps: train on adversarial examples of L-infinity radius
            ``adversarial_epsilon`` (pixels in [0, 1]): 1 step is FGSM (Goodfellow et al. 2015),
            more is PGD from a random start (Madry et al. 2018) with steps of 2.5 eps / steps.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, label_smoothing: float = 0.0,
                 backbone_lr_scale: float = 1.0, dropout: float = 0.0, head_weight_decay: float | None = None,
                 adversarial_steps: int = 0, adversarial_epsilon: float = 2 / 255) -> None:
        super().__init__(backbone, nn.Linear(feature_dim(backbone), num_classes))
        self.label_smoothing, self.dropout = label_smoothing, dropout
        self.backbone_lr_scale, self.head_weight_decay = backbone_lr_scale, head_weight_decay
        self.adversarial_steps, self.adversarial_epsilon = adversarial_steps, adversarial_epsilon

    def param_groups(self) -> list[dict]:
        head = {"params": list(self.projection_head.parameters()), "lr_scale": 1.0}
        if self.head_weight_decay is not None:
            head["weight_decay"] = self.head_weight_decay
        return [{"params": list(self.backbone.parameters()), "lr_scale": self.backbone_lr_scale}, head]

    def _logits(self, x: Tensor) -> Tensor:
        return self.projection_head(F.dropout(self.backbone(x), self.dropout, self.training))

    def adversarial_examples(self, x: Tensor, labels: Tensor) -> Tensor:
        """Return inputs within ``adversarial_epsilon`` of ``x`` (L-infinity, clamped to [0, 1])
        that raise the loss: ``adversarial_steps`` signed-gradient ascent steps (detached)."""
        eps, steps = self.adversarial_epsilon, self.adversarial_steps
        step_size = eps if steps == 1 else 2.5 * eps / steps
        x_adv = x if steps == 1 else (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(self._logits(x_adv), labels), x_adv)
            x_adv = torch.minimum(torch.maximum(x_adv + step_size * grad.sign(), x - eps), x + eps).clamp(0, 1)
        return x_adv.detach()

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        if self.adversarial_steps:
            x = self.adversarial_examples(x, batch.labels)
        logits = self._logits(x)
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            accuracy = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss, "train_accuracy": accuracy, **self.collapse_diagnostics(logits)}


def supervised_views(dataset: str, size: int) -> list[augment.ViewRecipe]:
    """One mild view, crop and flip: the usual supervised augmentation."""
    return [augment.ViewRecipe(size=size, crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)]


SPEC = MethodSpec(name="supervised", method=Supervised, settings=lambda c: {"num_classes": c.num_classes},
                  views=supervised_views)
