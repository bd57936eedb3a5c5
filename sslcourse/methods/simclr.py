"""SimCLR (Chen et al. 2020): two augmented views, a projection head, the NT-Xent loss.

Course: :ref:`ch0-first-run`, :ref:`ch5-methods`.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..distributed import gather_with_grad
from ..heads import mlp
from ..losses import hard_negative_nt_xent, nt_xent
from .base import CourseContext, Method, MethodSpec, feature_dim, width


class SimCLR(Method):
    """Backbone f, projection head g; loss NT-Xent between g(f(view1)) and g(f(view2)).

    Args:
        backbone: encoder with ``feature_dim``; its output h is the representation.
        hidden_dim: width of the projection head's hidden layer (2048: SimCLR v1 code).
        projection_dim: output size of z = g(h) (128: SimCLR paper, section 4.2).
        temperature: NT-Xent temperature (0.5: SimCLR's CIFAR-10 setting, appendix B.9).
        hard_negative_beta: > 0 re-weights the negatives towards hard ones
            (``losses.hard_negative_nt_xent``; Robinson et al. 2021 use 0.5-1); 0 is plain SimCLR.
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 temperature: float = 0.5, hard_negative_beta: float = 0.0) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim))
        self.temperature, self.hard_negative_beta = temperature, hard_negative_beta

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x1, x2 = batch.views[0], batch.views[1]
        z1 = self.projection_head(self.backbone(x1))
        z2 = self.projection_head(self.backbone(x2))
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)  # under DDP: negatives from all ranks
        if self.hard_negative_beta > 0:
            loss = hard_negative_nt_xent(z1, z2, self.temperature, self.hard_negative_beta)
        else:
            loss = nt_xent(z1, z2, self.temperature)
        return {"loss": loss, **self.collapse_diagnostics(z1)}


def _course_settings(context: CourseContext) -> dict:
    settings = {"hidden_dim": width(context, 2048)}  # the head width the profile sets
    if context.temperature is not None:  # the profile's: 0.2 learns faster in the short runs (profiles.py)
        settings["temperature"] = context.temperature
    return settings


SPEC = MethodSpec(name="simclr", method=SimCLR, settings=_course_settings)
