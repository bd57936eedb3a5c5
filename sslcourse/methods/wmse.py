"""W-MSE (Ermolov et al. 2021): whiten each view's embeddings over (sub-)batches, then pull
positive pairs together with a normalised MSE. Whitening makes the embedding covariance the
identity, so the embeddings cannot collapse to a point or to a subspace, whatever the MSE does.

Course: :ref:`ch6-infomax`; the loss is ``losses.wmse``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import wmse
from .base import CourseContext, Method, MethodSpec, feature_dim, width


class WMSE(Method):
    """Backbone + projector to a small embedding (64 in the paper for CIFAR); W-MSE loss
    averaged over every pair of views.

    Args:
        hidden_dim, projection_dim: projector 1024 -> 64 (the paper's CIFAR setting).
        sub_batch: whitening sub-batch size (the paper's ``w_size`` = 128); must exceed
            ``projection_dim``.
        eps: added to the covariance diagonal before the Cholesky factorisation.
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 1024, projection_dim: int = 64,
                 sub_batch: int = 128, eps: float = 0.0) -> None:
        if sub_batch <= projection_dim:
            raise ValueError(f"sub_batch ({sub_batch}) must exceed projection_dim ({projection_dim}) "
                             "for the covariance to be invertible")
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim))
        self.sub_batch, self.eps = sub_batch, eps

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z = [self.embed(v) for v in batch.views]
        pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z))]
        loss = sum(wmse(z[i], z[j], self.sub_batch, self.eps) for i, j in pairs) / len(pairs)
        return {"loss": loss, **self.collapse_diagnostics(z[0])}


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)  # 64 dimensions (the paper's CIFAR setting), fewer for very narrow heads
    return {"hidden_dim": w, "projection_dim": min(64, w // 2)}


SPEC = MethodSpec(name="wmse", method=WMSE, settings=_course_settings)
