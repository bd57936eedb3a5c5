"""Loss functions of the course: pure functions, one per equation, grouped by family.

Each docstring gives the returned value, the equation, the course section, the paper and
the tensor shapes. Nothing here calls ``torch.distributed``: under DDP the caller gathers
embeddings first (``sslcourse.distributed.gather_with_grad``) and passes the global batch.
Argument order is always (online/student/query, target/teacher/key).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""Return the NT-Xent (normalized temperature-scaled cross-entropy) loss of SimCLR.

    With the 2N embeddings :math:`z_k` of both views L2-normalized and
    :math:`s_{ij} = z_i^\top z_j / \tau`, each sample :math:`i` must pick its other view
    :math:`p(i)` out of the 2N - 1 other samples of the batch:

    .. math::
        \mathcal{L} = \frac{1}{2N} \sum_{i=1}^{2N}
        -\log \frac{\exp(s_{i,p(i)})}{\sum_{k \ne i} \exp(s_{ik})}

    For identical embeddings (every pair equally similar) and :math:`\tau = 1` the loss is
    :math:`\log(2N - 1)`.

    Course: ch. 0 (first SimCLR run), ch. 5 §InfoNCE and SimCLR.
    Paper: Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive
    Learning of Visual Representations", eq. (1).

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views; row i is the positive of row i of z1.
        temperature: :math:`\tau`; 0.5 is SimCLR's CIFAR-10 setting (0.1 for ImageNet).
    Returns:
        scalar loss, averaged over the 2N anchors.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent expects two (N, D) tensors of equal shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    n = z1.shape[0]
    dtype = torch.promote_types(z1.dtype, torch.float32)  # bf16 under autocast -> fp32; fp64 stays
    z = F.normalize(torch.cat([z1, z2]).to(dtype), dim=1)  # (2N, D)
    logits = z @ z.T / temperature  # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # p(i)
    return F.cross_entropy(logits, positives)
