"""Shared fixtures: small datasets and fake on-disk dataset folders in the real formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


def _dump(path: Path, obj: dict) -> None:
    """Write ``obj`` as the CIFAR python versions do: one pickle per file."""
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


@pytest.fixture
def fake_cifar10(tmp_path: Path) -> Path:
    """Write a CIFAR-10 folder in the published python-pickle format: 5 train batches + test."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 6)]:
        _dump(folder / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                              "labels": list(rng.integers(0, 10, n)), "batch_label": name})
    _dump(folder / "batches.meta", {"label_names": ["airplane"] * 10})
    return tmp_path


@pytest.fixture
def fake_cifar100(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in [("train", 8), ("test", 4)]:
        _dump(folder / name, {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                              "fine_labels": list(rng.integers(0, 100, n)),
                              "coarse_labels": list(rng.integers(0, 20, n))})
    _dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                            "coarse_label_names": [f"c{i}" for i in range(20)]})
    return tmp_path


@pytest.fixture
def fake_stl10(tmp_path: Path) -> Path:
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (3, 3, 96, 96), dtype=np.uint8)
    # STL-10 writes each image column-major: transpose the spatial axes before writing.
    images.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")
    np.array([1, 5, 10], dtype=np.uint8).tofile(folder / "train_y.bin")
    np.save(tmp_path / "expected.npy", images)
    return tmp_path
