"""Device-resident batching: the whole dataset is one tensor; a batch is one index operation.

The usual PyTorch pipeline (Dataset -> per-image transforms -> DataLoader workers) spends
its time in Python and on the CPU; for small images the GPU then waits. Here the uint8
images live on the training device, an epoch is a ``randperm``, and augmentations are
applied to the whole batch on the device (``sslcourse.augment``). Idea taken from the
fast CIFAR training scripts (airbench).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .imageset import ImageSet


@dataclass
class Batch:
    """One training batch: the views of every image and the labels (for supervised methods).

    ``views`` is a list of float tensors (B, C, H, W) in [0, 1]; ``views[0]`` is the only
    view for supervised training. ``labels`` are never read by the self-supervised methods.
    """

    views: list[Tensor]
    labels: Tensor


class DeviceLoader:
    """Yield shuffled batches ``(images uint8 (B, C, H, W), labels (B,))`` from device tensors.

    Args:
        data: the images; moved to ``device`` once.
        batch_size: images per batch.
        shuffle: draw a new permutation each epoch.
        drop_last: skip the final incomplete batch (keeps batch statistics comparable).
        device: where the data and batches live.
        seed: seed of the shuffling generator (the order is reproducible).
        rank, world_size: under DDP each rank takes every ``world_size``-th index of the
            same permutation (what ``DistributedSampler`` does), so ranks never overlap.
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        n_local = len(self.images) // world_size
        if n_local < batch_size and drop_last:
            raise ValueError(f"{n_local} images per rank cannot fill one batch of {batch_size}")

    def __len__(self) -> int:
        n_local = len(self.images) // self.world_size
        return n_local // self.batch_size if self.drop_last else -(-n_local // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order[self.rank : n - n % self.world_size : self.world_size].to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx]


class MultiViewLoader:
    """Wrap a ``DeviceLoader`` and turn each uint8 batch into ``n_views`` augmented views.

    Args:
        loader: the source of uint8 batches.
        view_transforms: one callable per view, each mapping a float batch in [0, 1] to an
            augmented float batch (e.g. the two entries of ``augment.simclr_views(32)``).
            Pass the same callable twice for symmetric recipes.
    """

    def __init__(self, loader: DeviceLoader, view_transforms: list[Callable[[Tensor], Tensor]]) -> None:
        if not view_transforms:
            raise ValueError("view_transforms needs at least one transform")
        self.loader, self.view_transforms = loader, view_transforms

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for images, labels in self.loader:
            x = images.float().div_(255)
            yield Batch(views=[t(x) for t in self.view_transforms], labels=labels)
