"""Diagnostics of learned embeddings (collapse, spread) used during training and in ch. 6-7."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def embedding_std(z: Tensor) -> Tensor:
    r"""Return the mean per-dimension std of the L2-normalized embeddings ``z`` (N, D).

    Complete collapse (every input mapped to one point) gives 0; embeddings spread evenly
    over the unit sphere give about :math:`1/\sqrt{D}`. Course: ch. 6 §collapse.
    Used as the collapse signal in SimSiam (Chen & He 2021, fig. 2).
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean()
