"""BYOL (Grill et al. 2020): an online network with a predictor regresses the projection of
a slowly moving target network; no negatives.

Course: :ref:`ch6-distillation`. The target is an exponential moving average of the online
backbone and projector, with the momentum rising from ``base_momentum`` to 1 along a cosine
(``schedules.cosine_momentum``). Removing the predictor (``predictor=False``) is the ablation
that collapses.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import negative_cosine
from ..schedules import cosine_momentum
from .base import CourseContext, Method, MethodSpec, ema_update, feature_dim, width


class BYOL(Method):
    """Online backbone + projector + predictor; EMA target backbone + projector.

    Args:
        hidden_dim, projection_dim: projector and predictor MLPs 4096 -> 256 (the paper's).
        base_momentum: starting EMA momentum (0.996 in the paper for ImageNet). A run of a
            few thousand steps needs a faster target: the course uses 0.9 (``SPEC``).
        predictor: keep the predictor (False: the collapsing ablation).
        predictor_lr_scale: multiplies the predictor's learning rate (1 in the paper's main
            runs). The paper's appendix trains BYOL without a moving average by giving the
            predictor a larger learning rate; a faster predictor also speeds up short runs
            with the moving average (ch. 6 measures both on the shapes).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 4096, projection_dim: int = 256,
                 base_momentum: float = 0.996, predictor: bool = True, predictor_lr_scale: float = 1.0) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim))
        self.predictor = mlp(projection_dim, hidden_dim, projection_dim) if predictor else nn.Identity()
        self.target_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.target_head = copy.deepcopy(self.projection_head).requires_grad_(False)
        self.base_momentum, self.momentum = base_momentum, base_momentum
        self.predictor_lr_scale = predictor_lr_scale

    def param_groups(self) -> list[dict]:
        """Two groups: the predictor (``predictor_lr_scale``) and the rest of the online network."""
        predictor = set(self.predictor.parameters())
        rest = [p for p in self.parameters() if p.requires_grad and p not in predictor]
        return [{"params": rest, "lr_scale": 1.0},
                {"params": list(predictor), "lr_scale": self.predictor_lr_scale}]

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x1, x2 = batch.views[0], batch.views[1]
        z1, z2 = self.embed(x1), self.embed(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        t1 = self.target_head(self.target_backbone(x1))
        t2 = self.target_head(self.target_backbone(x2))
        # The paper's loss ||p/|p| - t/|t|||^2 = 2 - 2 cos, summed over the two directions.
        loss = (2 + 2 * negative_cosine(p1, t2)) + (2 + 2 * negative_cosine(p2, t1))
        return {"loss": loss, **self.collapse_diagnostics(z1)}

    def on_after_step(self, step: int, total_steps: int) -> None:
        """EMA update of the target with the cosine-scheduled momentum."""
        self.momentum = cosine_momentum(step, total_steps, self.base_momentum)
        ema_update(self.target_backbone, self.backbone, self.momentum)
        ema_update(self.target_head, self.projection_head, self.momentum)


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)
    # A fast target (momentum 0.9) and a predictor learning 10x faster: the runs of the course are
    # short (benchmarks/results/ch6_distillation_curves_ci*.json compares them with 0.99 and 1x).
    return {"hidden_dim": w, "projection_dim": min(256, w), "base_momentum": 0.9, "predictor_lr_scale": 10.0}


SPEC = MethodSpec(name="byol", method=BYOL, settings=_course_settings)
