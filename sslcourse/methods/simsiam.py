"""SimSiam (Chen & He 2021): BYOL without the moving-average target; the stop-gradient alone
keeps the two branches from collapsing.

Course: :ref:`ch6-distillation`. ``stop_gradient=False`` is the paper's ablation (fig. 2): the
embeddings collapse to a constant within a few hundred steps.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import negative_cosine
from .base import CourseContext, Method, MethodSpec, feature_dim, width


class SimSiam(Method):
    """Backbone + projector (3 layers, BatchNorm on the output) + bottleneck predictor.

    Args:
        projection_dim: 2048 (the paper's, with a 3-layer projector).
        predictor_hidden_dim: 512 (the paper's bottleneck).
        stop_gradient: detach the target branch (False: the collapsing ablation).
    """

    def __init__(self, backbone: nn.Module, projection_dim: int = 2048, predictor_hidden_dim: int = 512,
                 stop_gradient: bool = True) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), projection_dim, projection_dim, n_layers=3,
                                       last_batch_norm=True))
        self.predictor = mlp(projection_dim, predictor_hidden_dim, projection_dim)
        self.stop_gradient = stop_gradient

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z1, z2 = self.embed(batch.views[0]), self.embed(batch.views[1])
        p1, p2 = self.predictor(z1), self.predictor(z2)
        if self.stop_gradient:  # negative_cosine detaches its target
            loss = 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))
        else:  # the same loss with gradients through both branches
            loss = -0.5 * (nn.functional.cosine_similarity(p1, z2).mean()
                           + nn.functional.cosine_similarity(p2, z1).mean())
        return {"loss": loss, **self.collapse_diagnostics(z1)}


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)  # the paper's predictor is a 4x bottleneck (2048 -> 512)
    return {"projection_dim": w, "predictor_hidden_dim": max(w // 4, 1)}


SPEC = MethodSpec(name="simsiam", method=SimSiam, settings=_course_settings)
