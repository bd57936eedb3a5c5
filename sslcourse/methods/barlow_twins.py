"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation of the two views'
embeddings the identity. Course: :ref:`ch6-infomax`."""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import barlow_twins_terms
from .base import CourseContext, Method, MethodSpec, feature_dim, width


class BarlowTwins(Method):
    """Backbone + projector (3 layers); loss ``on + off_diagonal_weight * off``.

    Args:
        hidden_dim, projection_dim: 8192 and 8192 in the paper (3 layers).
        off_diagonal_weight: lambda, 5e-3 in the paper (for 8,192 dimensions; smaller
            projections tolerate larger values).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 8192, projection_dim: int = 8192,
                 off_diagonal_weight: float = 5e-3) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim, n_layers=3))
        self.off_diagonal_weight = off_diagonal_weight

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z1, z2 = self.embed(batch.views[0]), self.embed(batch.views[1])
        on, off = barlow_twins_terms(z1, z2)
        return {"loss": on + self.off_diagonal_weight * off, "on_diagonal": on.detach(),
                "off_diagonal": off.detach(), **self.collapse_diagnostics(z1)}


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)
    # lambda ~ 1/D keeps the two terms balanced at smaller D (the paper's 5e-3 is for D = 8,192).
    return {"hidden_dim": w, "projection_dim": w, "off_diagonal_weight": min(5e-3, 1 / w)}


SPEC = MethodSpec(name="barlow_twins", method=BarlowTwins, settings=_course_settings)
