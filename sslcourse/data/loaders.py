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
    """One training batch: the views of every image, the labels, and what some methods need
    beside images. Every field holds one row per sample; ``to(device)`` moves them all.

    Attributes:
        views: float tensors (B, C, H, W) in [0, 1] (or (B, C, L) signals); ``views[0]`` is
            the only view for supervised training.
        labels: (B,) class indices; never read by the self-supervised methods.
        tokens: (B, L) integer token ids of a text paired with each image (image-text methods).
        masks: (B, ...) boolean masks, True where an input is hidden (masked prediction, inpainting).
        targets: (B, ...) what a pretext task asks to predict (a rotation index, a permutation,
            colour channels).
    """

    views: list[Tensor]
    labels: Tensor
    tokens: Tensor | None = None
    masks: Tensor | None = None
    targets: Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: str | torch.device) -> Batch:
        """Return the batch on ``device``; 4-D float views in channels_last (the layout the fast
        convolution kernels of cuDNN and oneDNN use), everything else as it is."""
        def image(v: Tensor) -> Tensor:
            fmt = torch.channels_last if v.ndim == 4 and v.is_floating_point() else torch.contiguous_format
            return v.to(device, non_blocking=True).contiguous(memory_format=fmt)

        def other(v: Tensor | None) -> Tensor | None:
            return None if v is None else v.to(device, non_blocking=True)

        return Batch(views=[image(v) for v in self.views], labels=other(self.labels), tokens=other(self.tokens),
                     masks=other(self.masks), targets=other(self.targets))


class DeviceLoader:
    """Yield shuffled batches ``(images uint8 (B, C, H, W), labels (B,))`` from device tensors,
    or ``(images, labels, tokens (B, L))`` when given the token ids of each image's caption.

    Args:
        data: the images; moved to ``device`` once.
        batch_size: images per batch.
        shuffle: draw a new permutation each epoch.
        drop_last: skip the final incomplete batch (keeps batch statistics comparable).
        device: where the data and batches live.
        seed: seed of the shuffling generator (the order is reproducible).
        rank, world_size: under DDP each rank takes every ``world_size``-th index of the
            same permutation (what ``DistributedSampler`` does), so ranks never overlap.
        tokens: (N, L) token ids of each image's caption (``text.Vocabulary.encode``), batched
            with their images (image–text methods).
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
        tokens: Tensor | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        if tokens is not None and len(tokens) != len(self.images):
            raise ValueError(f"{len(tokens)} token rows for {len(self.images)} images: one caption per image")
        self.tokens = None if tokens is None else tokens.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self._epoch_start_state, self._position, self._skip = self.generator.get_state(), 0, 0
        n_local = len(self.images) // world_size
        if n_local < batch_size and drop_last:
            raise ValueError(f"{n_local} images per rank cannot fill one batch of {batch_size}")

    def __len__(self) -> int:
        n_local = len(self.images) // self.world_size
        return n_local // self.batch_size if self.drop_last else -(-n_local // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.images)
        self._epoch_start_state = self.generator.get_state()
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order[self.rank : n - n % self.world_size : self.world_size].to(self.device)
        skip, self._skip = self._skip, 0
        for i in range(skip, len(self)):
            self._position = i + 1
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield (self.images[idx], self.labels[idx]) + (() if self.tokens is None else (self.tokens[idx],))

    def state_dict(self) -> dict:
        """Return where the loader is: the shuffling generator at the start of the current epoch
        and the batches of that epoch already given. ``fit`` saves it in checkpoints so that a
        resumed run sees the same batches as an uninterrupted one."""
        return {"generator": self._epoch_start_state.clone(), "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        """Make the next iteration continue the epoch ``state`` describes (``state_dict``)."""
        self.generator.set_state(state["generator"])
        self._epoch_start_state, self._skip, self._position = state["generator"].clone(), state["position"], 0


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

    def state_dict(self) -> dict:
        """The wrapped loader's position (``DeviceLoader.state_dict``)."""
        return self.loader.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.loader.load_state_dict(state)

    def __iter__(self) -> Iterator[Batch]:
        for images, labels, *tokens in self.loader:
            x = images.float().div_(255)
            yield Batch(views=[t(x) for t in self.view_transforms], labels=labels, tokens=tokens[0] if tokens else None)
