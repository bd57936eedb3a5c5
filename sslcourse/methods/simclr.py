"""SimCLR (Chen et al. 2020): two augmented views, a projection head, the NT-Xent loss.

Course: ch. 0 (first run), ch. 5 §SimCLR.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..analysis import embedding_std
from ..data import Batch
from ..heads import mlp
from ..losses import nt_xent
from .base import Method


class SimCLR(Method):
    """Backbone f, projection head g; loss NT-Xent between g(f(view1)) and g(f(view2)).

    Args:
        backbone: encoder with ``feature_dim``; its output h is the representation.
        hidden_dim: width of the projection head's hidden layer (2048: SimCLR v1 code).
        projection_dim: output size of z = g(h) (128: SimCLR paper, section 4.2).
        temperature: NT-Xent temperature (0.5: SimCLR's CIFAR-10 setting, appendix B.9).
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 temperature: float = 0.5) -> None:
        super().__init__(backbone)
        self.projection_head = mlp(backbone.feature_dim, hidden_dim, projection_dim)
        self.temperature = temperature

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x1, x2 = batch.views[0], batch.views[1]
        z1 = self.projection_head(self.backbone(x1))
        z2 = self.projection_head(self.backbone(x2))
        loss = nt_xent(z1, z2, self.temperature)
        return {"loss": loss, "z_std": embedding_std(z1)}
