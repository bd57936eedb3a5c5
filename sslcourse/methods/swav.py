"""SwAV (Caron et al. 2020): swapping assignments between views. Embeddings are assigned to
learned prototypes with an equal-size constraint (Sinkhorn-Knopp), and each view predicts
the assignment (code) of the other.

Course: :ref:`ch6-clustering`. Collapse (every sample in one cluster) is prevented by the
equipartition constraint of ``losses.sinkhorn_knopp``, not by negatives or an EMA.
Not implemented from the paper: the queue of past embeddings for small batches with many
prototypes (our batches are larger than the number of prototypes), and freezing the
prototypes during the first epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..distributed import gather_with_grad, rank_and_world_size
from ..heads import mlp
from ..losses import sinkhorn_knopp, swav_loss
from .base import CourseContext, Method, MethodSpec, feature_dim, width


class SwAV(Method):
    """Backbone + projector (L2-normalised output) + prototypes (unit-norm rows).

    Args:
        hidden_dim, projection_dim: projector 2048 -> 128 (the paper's).
        n_prototypes: K, 3,000 in the paper for ImageNet (about 10x the classes suits small data).
        temperature: tau = 0.1 of the swapped prediction (the paper's).
        epsilon: entropy regularisation of Sinkhorn-Knopp, 0.05 (the paper's).
        sinkhorn_iterations: 3 (the paper's).
        n_coded: number of views (the first ones, global crops) whose codes are predicted: 2.
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 n_prototypes: int = 3000, temperature: float = 0.1, epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, n_coded: int = 2) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim))
        self.prototypes = nn.Linear(projection_dim, n_prototypes, bias=False)
        self.temperature, self.epsilon = temperature, epsilon
        self.iterations, self.n_coded = sinkhorn_iterations, n_coded
        self.normalize_prototypes()

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Project every prototype back onto the unit sphere (the paper does it each step)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def _codes(self, scores: Tensor) -> Tensor:
        """Sinkhorn-Knopp codes of ``scores`` (N, K); under DDP the equipartition is over the
        global batch, as in the paper, and each rank keeps its own rows."""
        rank, world = rank_and_world_size()
        all_scores = gather_with_grad(scores.detach())
        codes = sinkhorn_knopp(all_scores, self.epsilon, self.iterations)
        return codes.chunk(world)[rank]

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        raw = [self.embed(v) for v in batch.views]
        z = [F.normalize(r, dim=1) for r in raw]
        scores = torch.stack([self.prototypes(zi) for zi in z])  # (V, N, K)
        codes = torch.stack([self._codes(scores[t]) for t in range(self.n_coded)])
        loss = swav_loss(scores, codes, self.temperature)
        # Prototypes that win at least one sample (no host sync: a scatter, not unique()).
        used = torch.zeros(scores.shape[-1], device=scores.device).index_fill_(0, codes[0].argmax(1), 1.0).sum()
        return {"loss": loss, "prototypes_used": used, **self.collapse_diagnostics(raw[0])}

    def on_after_step(self, step: int, total_steps: int) -> None:
        self.normalize_prototypes()


def _course_settings(context: CourseContext) -> dict:
    w = width(context, 2048)
    # 30 prototypes, about 4x the shape classes (the paper: 3,000 for ImageNet's 1,000 classes).
    return {"hidden_dim": w, "projection_dim": min(128, w), "n_prototypes": 30}


SPEC = MethodSpec(name="swav", method=SwAV, settings=_course_settings)
