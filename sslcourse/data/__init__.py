"""Datasets of the course and the device-resident loaders (Course: :ref:`ch0-datasets`)."""

from __future__ import annotations

from pathlib import Path

from .imageset import ImageSet
from .loaders import Batch, DeviceLoader, MultiViewLoader
from .real import (
    DatasetNotFoundError,
    default_root,
    load_cifar10,
    load_cifar100,
    load_digits,
    load_stl10,
)
from .shapes import SHAPE_NAMES, SUPERCLASS_NAMES, make_shapes
from .video import FramePairLoader, VideoSet, make_moving_shapes

DATASETS = ["shapes", "digits", "cifar10", "cifar100", "stl10"]

# The shapes test set uses a seed far from any training seed so the two never share images.
_SHAPES_TEST_SEED_OFFSET = 1_000_003


def load_dataset(
    name: str,
    split: str = "train",
    *,
    n: int | None = None,
    image_size: int = 32,
    seed: int = 0,
    root: str | Path | None = None,
    download: bool = True,
    upright: bool = False,
    **factor_ranges: list[str] | tuple[float, float],
) -> ImageSet:
    """Return dataset ``name`` (one of ``DATASETS``) split ``split`` as an ImageSet.

    Args:
        name: "shapes", "digits", "cifar10", "cifar100" or "stl10".
        split: "train" or "test" ("unlabeled" too for STL-10).
        n: number of images (shapes: how many to render, default 10,000 train / 2,000
            test; others: keep the first ``n``).
        image_size: side of the rendered shapes images (the real datasets keep their size).
        seed: shapes only: seed of the training set; the test set derives its own.
        root: where CIFAR/STL live or are downloaded to (default ``default_root()``).
        download: try to download CIFAR/STL when they are not on disk.
        upright: shapes only: every shape drawn at rotation 0 (``make_shapes``).
        factor_ranges: shapes only: ``classes``, ``colors``, ``textures``, ``scale_range`` of
            ``make_shapes`` (a domain shift).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    valid_splits = ["train", "test", "unlabeled"] if name == "stl10" else ["train", "test"]
    if split not in valid_splits:
        raise ValueError(f"unknown split {split!r} for {name}; valid: {', '.join(valid_splits)}")
    if name == "shapes":
        default_n = 10_000 if split == "train" else 2_000
        split_seed = seed if split == "train" else seed + _SHAPES_TEST_SEED_OFFSET
        return make_shapes(n or default_n, image_size=image_size, seed=split_seed, upright=upright, **factor_ranges)
    if factor_ranges:
        raise ValueError(f"{', '.join(factor_ranges)}: factor ranges exist only for the shapes dataset, not {name}")
    if name == "digits":
        data = load_digits(split)
    else:
        loader = {"cifar10": load_cifar10, "cifar100": load_cifar100, "stl10": load_stl10}[name]
        data = loader(split, root=Path(root) if root else None, download=download)
    return data if n is None else data.subset(slice(0, n))


__all__ = [
    "DATASETS", "Batch", "DatasetNotFoundError", "DeviceLoader", "ImageSet", "MultiViewLoader",
    "SHAPE_NAMES", "SUPERCLASS_NAMES", "default_root", "load_cifar10", "load_cifar100",
    "load_dataset", "load_digits", "load_stl10", "make_shapes",
    "FramePairLoader", "VideoSet", "make_moving_shapes",
]
