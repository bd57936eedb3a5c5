"""MoCo v2 (He et al. 2020; Chen et al. 2020, "Improved baselines with momentum contrastive
learning"): a queue of negatives and a momentum (EMA) key encoder.

Course: :ref:`ch5b-moco`. The queue decouples the number of negatives from the batch size: a
batch of 64 can be contrasted against 4,096 keys from earlier batches, which stay
consistent because the key encoder changes slowly.

Batch norm without shuffling across GPUs: MoCo shuffles the key batch across GPUs so that a
query and its key never share batch statistics (otherwise the network can find its
positive through the statistics). On one device we get the same separation by computing
the keys on a random permutation of the batch split into ``bn_splits`` chunks, each with its
own BatchNorm statistics, then undoing the permutation.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..distributed import is_distributed
from ..heads import mlp
from ..losses import info_nce
from .base import CourseContext, Method, MethodSpec, ema_update, feature_dim, width


class MoCo(Method):
    """Query encoder (backbone + projection head) trained by InfoNCE against a momentum key
    encoder and a FIFO queue of past keys.

    Args:
        backbone: encoder with ``feature_dim``.
        hidden_dim, projection_dim: MLP head 2048 -> 128 (MoCo v2).
        temperature: 0.2 (MoCo v2).
        queue_size: number of negative keys (65,536 on ImageNet; 4,096 is common on CIFAR).
        momentum: EMA rate of the key encoder (0.999 on ImageNet; 0.99 on CIFAR-scale runs).
        bn_splits: chunks for the key encoder's BatchNorm (see the module docstring).
        symmetric: also use view 2 as query against view 1's key and average the two losses
            (the ``symmetric`` option of the official MoCo CIFAR-10 demo): twice the learning
            signal per batch, which short runs need; the paper's loss is the asymmetric one.
    """

    def __init__(self, backbone: nn.Module, hidden_dim: int = 2048, projection_dim: int = 128,
                 temperature: float = 0.2, queue_size: int = 4096, momentum: float = 0.99, bn_splits: int = 4,
                 symmetric: bool = False) -> None:
        super().__init__(backbone, mlp(feature_dim(backbone), hidden_dim, projection_dim, batch_norm=False))
        self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        self.key_head = copy.deepcopy(self.projection_head).requires_grad_(False)
        self.temperature, self.momentum, self.bn_splits = temperature, momentum, bn_splits
        self.symmetric = symmetric
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _keys(self, x: Tensor) -> Tensor:
        perm = torch.randperm(len(x), device=x.device)
        chunks = [self.key_head(self.key_backbone(c)) for c in x[perm].chunk(self.bn_splits)]
        keys = torch.empty_like(torch.cat(chunks))
        keys[perm] = torch.cat(chunks)
        return F.normalize(keys.float(), dim=1)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        if is_distributed():
            raise RuntimeError("MoCo here is single-device: across GPUs its keys would need the paper's "
                               "shuffling between ranks (see the 'Scaling up' page); run it without torchrun")
        x1, x2 = batch.views[0], batch.views[1]
        q1 = self.projection_head(self.backbone(x1))
        k2 = self._keys(x2)
        negatives = self.queue.clone()
        loss = info_nce(q1, k2, negatives, self.temperature)
        if self.symmetric:  # each view is once the query and once the key
            q2 = self.projection_head(self.backbone(x2))
            loss = 0.5 * (loss + info_nce(q2, self._keys(x1), negatives, self.temperature))
        self.pending["keys"] = k2  # enqueued by on_after_step, after the optimizer step
        return {"loss": loss, **self.collapse_diagnostics(q1)}

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` over the oldest entries of the queue (first in, first out)."""
        n, size = len(keys), len(self.queue)
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    @torch.no_grad()
    def on_after_step(self, step: int, total_steps: int) -> None:
        """EMA update of the key encoder, then enqueue this step's keys (``pending["keys"]``)."""
        ema_update(self.key_backbone, self.backbone, self.momentum)
        ema_update(self.key_head, self.projection_head, self.momentum)
        if "keys" in self.pending:
            self.enqueue(self.pending.pop("keys"))


def _course_settings(context: CourseContext) -> dict:
    # The official MoCo CIFAR-10 demo's settings for small data: the symmetric loss and tau = 0.1.
    return {"hidden_dim": width(context, 2048), "temperature": 0.1, "symmetric": True}


SPEC = MethodSpec(name="moco", method=MoCo, settings=_course_settings)
