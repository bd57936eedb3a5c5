"""The one container every dataset of the course is returned in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


@dataclass
class ImageSet:
    """Images as one uint8 tensor plus labels and, where known, the factors that made them.

    Keeping a whole dataset in one tensor (instead of a list of PIL images) is what lets
    the course move it to the GPU once and cut batches from it with no per-sample Python
    work (Course: :ref:`ch0-datasets`, :ref:`scaling-time`).

    Attributes:
        images: uint8 tensor of shape (N, C, H, W), values 0..255.
        labels: int64 tensor of shape (N,), the class of each image.
        class_names: name of each class, indexed by label.
        coarse_labels: int64 (N,) super-class of each image, or None.
        coarse_names: name of each super-class, or None.
        factors: generating factors (shapes dataset only), each a tensor with N rows.
        captions: one sentence per image built from its factors (shapes dataset only).
        name: the dataset's name, e.g. "shapes" or "cifar10".
    """

    images: Tensor
    labels: Tensor
    class_names: list[str]
    coarse_labels: Tensor | None = None
    coarse_names: list[str] | None = None
    factors: dict[str, Tensor] = field(default_factory=dict)
    captions: list[str] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"ImageSet.images must be a uint8 tensor (N, C, H, W); got {self.images.dtype} "
                f"with shape {tuple(self.images.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def subset(self, index: Tensor | slice) -> ImageSet:
        """Return the images selected by ``index`` (a slice, boolean mask or index tensor)."""
        if isinstance(index, Tensor):
            index = index.to(self.images.device)
        captions = None
        if self.captions is not None:
            idx = torch.arange(len(self))[index.cpu() if isinstance(index, Tensor) else index]
            captions = [self.captions[i] for i in idx.tolist()]
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            coarse_labels=None if self.coarse_labels is None else self.coarse_labels[index],
            factors={k: v[index] for k, v in self.factors.items()},
            captions=captions,
        )

    def to(self, device: torch.device | str) -> ImageSet:
        """Return a copy whose tensors live on ``device`` (captions stay on the host)."""
        return replace(
            self,
            images=self.images.to(device),
            labels=self.labels.to(device),
            coarse_labels=None if self.coarse_labels is None else self.coarse_labels.to(device),
            factors={k: v.to(device) for k, v in self.factors.items()},
        )

    def per_class(self, n: int, seed: int = 0) -> ImageSet:
        """Return ``n`` randomly chosen images of every class (few-shot subsets)."""
        gen = torch.Generator().manual_seed(seed)
        labels = self.labels.cpu()
        chosen = []
        for c in range(self.num_classes):
            idx = torch.nonzero(labels == c).flatten()
            if len(idx) < n:
                raise ValueError(f"class {c} ({self.class_names[c]}) has {len(idx)} images, asked for {n}")
            chosen.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
        return self.subset(torch.cat(chosen))

    def resized(self, size: int) -> ImageSet:
        """Return the images resized to ``size`` x ``size`` (bilinear, antialiased): e.g. the 8 px
        digits at the shapes' size, so one network reads both."""
        images = torch.nn.functional.interpolate(self.images.float(), size=(size, size), mode="bilinear",
                                                 antialias=True, align_corners=False)
        return replace(self, images=images.round().clamp(0, 255).to(torch.uint8))

    def with_label_noise(self, rate: float, seed: int = 0) -> ImageSet:
        """Return a copy whose label is replaced, with probability ``rate`` per image, by one of the
        *other* classes drawn uniformly (symmetric label noise); images and factors unchanged.
        Chapter 2 (weak supervision): more labels of lower quality against fewer clean ones."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate is a probability in [0, 1], got {rate}")
        gen = torch.Generator().manual_seed(seed)
        labels = self.labels.cpu()
        flip = torch.rand(len(labels), generator=gen) < rate
        shift = torch.randint(1, self.num_classes, (len(labels),), generator=gen)  # never the true class
        noisy = torch.where(flip, (labels + shift) % self.num_classes, labels)
        return replace(self, labels=noisy.to(self.labels.device))
