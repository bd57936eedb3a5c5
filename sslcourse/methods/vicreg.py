"""VICReg (Bardes, Ponce & LeCun 2022): variance, invariance and covariance terms on the two
views' embeddings. Course: :ref:`ch6-infomax`; setting ``variance_weight=0`` is
the ablation that collapses."""

from __future__ import annotations

from torch import Tensor, nn

from ..data import Batch
from ..heads import mlp
from ..losses import vicreg_terms
from .base import Method, MethodSpec, feature_dim, width


class VICReg(Method):
    """Backbone + expander (3 layers); loss 25 invariance + 25 variance + 1 covariance.

    Args:
        hidden_dim, projection_dim: 8192 and 8192 in the paper (3 layers).
        invariance_weight, variance_weight, covariance_weight: 25, 25, 1 (the paper's).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 8192, projection_dim: int = 8192,
                 invariance_weight: float = 25.0, variance_weight: float = 25.0,
                 covariance_weight: float = 1.0) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim, n_layers=3))
        self.weights = {"invariance": invariance_weight, "variance": variance_weight,
                        "covariance": covariance_weight}

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        z1, z2 = self.embed(batch.views[0]), self.embed(batch.views[1])
        terms = vicreg_terms(z1, z2)
        loss = sum(self.weights[k] * v for k, v in terms.items())
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}, **self.collapse_diagnostics(z1)}


# The paper's 8,192-wide expander scaled to the profile's width (every layer as wide).
SPEC = MethodSpec(name="vicreg", method=VICReg,
                  settings=lambda c: {"hidden_dim": width(c, 2048), "projection_dim": width(c, 2048)})
