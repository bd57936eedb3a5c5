"""Real datasets: scikit-learn digits (shipped), CIFAR-10/100 and STL-10 (downloaded).

CIFAR and STL are read from their published on-disk formats by the short readers below,
so the tests can write a small fake folder in the same format and exercise the real code
path offline. Downloading goes through torchvision's archive helper; when it fails (no
network) the error says where to put the files by hand. Course: :ref:`ch0-real-images`.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from .imageset import ImageSet

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]

# (folder inside root, archive URL, archive MD5) as published by the datasets' authors.
ARCHIVES = {
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "eb9058c3a382ffc7106e4002c42a8d85"),
    "stl10": ("stl10_binary", "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
              "91f7769df0f17e558f3565bffb0c7dfb"),
}


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a downloadable dataset is neither on disk nor downloadable."""


def default_root() -> Path:
    """Where datasets are stored: ``$SSLCOURSE_DATA`` or ``~/.cache/sslcourse``."""
    return Path(os.environ.get("SSLCOURSE_DATA", Path.home() / ".cache" / "sslcourse"))


def _ensure(name: str, root: Path, download: bool) -> Path:
    """Return the dataset folder, downloading it first if asked; raise a clear error otherwise."""
    folder, url, md5 = ARCHIVES[name]
    path = root / folder
    if path.is_dir():
        return path
    how = (
        f"Either run `python -m sslcourse download {name} --root {root}` on a machine with internet "
        f"access, or download {url} yourself and extract it so that {path} exists."
    )
    if not download:
        raise DatasetNotFoundError(f"{name} not found at {path} (download=False). {how}")
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(url, download_root=str(root), md5=md5)
    except Exception as err:  # network errors come in many types (URLError, OSError, HTTPError)
        raise DatasetNotFoundError(f"Downloading {name} from {url} failed ({err!r}). {how}") from err
    if not path.is_dir():
        raise DatasetNotFoundError(f"The {name} archive was extracted but {path} is missing. {how}")
    return path


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


def _rows_to_images(rows: np.ndarray) -> torch.Tensor:
    """CIFAR stores each image as a row of 3072 bytes: the R, G and B planes of 32x32."""
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, 3, 32, 32))


def load_cifar10(split: str = "train", root: Path | None = None, download: bool = True) -> ImageSet:
    """Return CIFAR-10 ``split`` ("train": 50,000 images, "test": 10,000) as an ImageSet."""
    path = _ensure("cifar10", Path(root or default_root()), download)
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    batches = [_unpickle(path / f) for f in files]
    images = _rows_to_images(np.concatenate([b["data"] for b in batches]))
    labels = torch.tensor(np.concatenate([b["labels"] for b in batches]), dtype=torch.long)
    return ImageSet(images, labels, list(CIFAR10_CLASSES), name="cifar10")


def load_cifar100(split: str = "train", root: Path | None = None, download: bool = True) -> ImageSet:
    """Return CIFAR-100 ``split`` with its 100 fine labels and 20 super-class (coarse) labels."""
    path = _ensure("cifar100", Path(root or default_root()), download)
    data = _unpickle(path / ("train" if split == "train" else "test"))
    meta = _unpickle(path / "meta")
    return ImageSet(
        images=_rows_to_images(data["data"]),
        labels=torch.tensor(data["fine_labels"], dtype=torch.long),
        class_names=list(meta["fine_label_names"]),
        coarse_labels=torch.tensor(data["coarse_labels"], dtype=torch.long),
        coarse_names=list(meta["coarse_label_names"]),
        name="cifar100",
    )


def load_stl10(split: str = "train", root: Path | None = None, download: bool = True) -> ImageSet:
    """Return STL-10 ``split`` ("train" 5,000 labelled, "test" 8,000, "unlabeled" 100,000), 96 px.

    Unlabelled images get label -1.
    """
    path = _ensure("stl10", Path(root or default_root()), download)
    raw = np.fromfile(path / f"{split}_X.bin", dtype=np.uint8)
    # STL-10 stores each image column-major: (3, 96, 96) with the two spatial axes swapped.
    images = torch.from_numpy(raw.reshape(-1, 3, 96, 96)).transpose(2, 3).contiguous()
    labels_file = path / f"{split}_y.bin"
    if labels_file.exists():
        labels = torch.from_numpy(np.fromfile(labels_file, dtype=np.uint8).astype(np.int64) - 1)
    else:
        labels = torch.full((len(images),), -1, dtype=torch.long)
    return ImageSet(images, labels, list(STL10_CLASSES), name="stl10")


def load_digits(split: str = "train", test_fraction: float = 0.3, seed: int = 0) -> ImageSet:
    """Return scikit-learn's 8x8 handwritten digits (1,797 images, shipped with scikit-learn).

    The grey values (0..16) are scaled to 0..255 and repeated over three channels so the
    same backbones apply. The split is a fixed random permutation of the 1,797 images.
    """
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    images = torch.from_numpy((data.images * (255 / 16)).round().astype(np.uint8))
    images = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(data.target.astype(np.int64))
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(images)))
    idx = perm[n_test:] if split == "train" else perm[:n_test]
    full = ImageSet(images, labels, [str(d) for d in range(10)], name="digits")
    return full.subset(idx)
