"""The contract every method of the course follows (Course: ch. 0 §"How the code is organised").

A method is an ``nn.Module`` holding its networks, with three calls:

- ``training_step(batch) -> dict``: the loss under key "loss" plus diagnostics (tensors,
  detached) such as the embedding std; ``fit`` logs every key.
- ``on_after_step(step, total_steps)``: updates that happen after the optimizer step
  (EMA targets, queues, centers); nothing by default.
- ``encode(x) -> features``: the representation used for evaluation (the backbone output).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..analysis import effective_rank_tensor, embedding_std
from ..data import Batch


class Method(nn.Module):
    """Base class: holds ``backbone`` and gives ``encode`` and a no-op ``on_after_step``."""

    # Log the effective rank of the embeddings at every step (one SVD per step: on for the
    # collapse plots of chapter 6, off by default because it costs time on a GPU).
    track_rank: bool = False

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        if not hasattr(backbone, "feature_dim"):
            raise TypeError(f"{type(backbone).__name__} has no feature_dim attribute; "
                            "backbones must expose the size of their output")
        self.backbone = backbone

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def collapse_diagnostics(self, z: Tensor) -> dict[str, Tensor]:
        """Return the collapse signals of embeddings ``z`` (N, D): "z_std" (``embedding_std``, of
        the L2-normalised embeddings), "z_raw_std" (per-dimension std before normalisation,
        averaged: it shows embeddings shrinking to a point) and, when ``track_rank`` is set,
        "z_erank" (effective rank). Course: ch. 6 §collapse."""
        z = z.detach()
        out = {"z_std": embedding_std(z), "z_raw_std": z.float().std(0).mean()}
        if self.track_rank:
            out["z_erank"] = effective_rank_tensor(z)
        return out

    def param_groups(self) -> list[dict]:
        """Parameter groups for the optimizer; ``lr_scale`` multiplies the learning rate.
        One group by default; fine-tuning gives the backbone a smaller scale."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def on_after_step(self, step: int, total_steps: int) -> None:
        """Called by ``fit`` after each optimizer step; override for EMA/queue/center updates."""

    def encode(self, x: Tensor) -> Tensor:
        """Return the representation (B, feature_dim) of images ``x`` (B, C, H, W) in [0, 1]."""
        return self.backbone(x)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target``'s parameters towards ``online``'s: t <- m t + (1 - m) o, and copy the
    buffers (batch-norm statistics). The update of MoCo's key encoder and BYOL's target
    (Course: ch. 5 §MoCo, ch. 6 §BYOL)."""
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.lerp_(po.detach(), 1 - momentum)
    for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
        bt.copy_(bo)
