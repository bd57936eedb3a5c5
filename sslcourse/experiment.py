"""The course's standard experiment in one call: train a method on a dataset at the size the
profile says, then measure kNN accuracy of its frozen features against two baselines
(the same backbone with random weights, and raw pixels). Used by chapter 0 and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from . import augment
from .backbones import build_backbone
from .data import DeviceLoader, ImageSet, MultiViewLoader, load_dataset
from .evaluate import extract_features, knn_accuracy, raw_pixels
from .methods import Method, build_method
from .profiles import Profile, get_profile
from .train import default_device, fit, seed_everything


@dataclass
class RunResult:
    """What ``train_and_evaluate`` measured."""

    method: Method
    history: list[dict]
    knn: float  # kNN accuracy of the trained backbone on the test set
    train_seconds: float
    images_per_s: float  # training images (each seen as all its views) per second
    extra: dict = field(default_factory=dict)


def load_profile_data(dataset: str, profile: Profile, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Return (train, test) of ``dataset`` sized by ``profile`` (shapes: rendered at its size)."""
    if dataset == "shapes":
        kw = dict(image_size=profile.image_size, seed=seed)
        return (load_dataset("shapes", "train", n=profile.n_train, **kw),
                load_dataset("shapes", "test", n=profile.n_test, **kw))
    return load_dataset(dataset, "train"), load_dataset(dataset, "test")


def make_backbone(profile: Profile, in_channels: int = 3) -> torch.nn.Module:
    """Return the profile's backbone with freshly initialised weights."""
    if profile.backbone == "convnet":
        return build_backbone("convnet", width=profile.width, in_channels=in_channels)
    return build_backbone(profile.backbone, in_channels=in_channels)


def knn_of(encoder: object, train: ImageSet, test: ImageSet, device: torch.device | None = None) -> float:
    """Return the kNN accuracy (k = 20, cosine, weighted) of ``encoder``'s features on ``test``."""
    f_train = extract_features(encoder, train, device=device)
    f_test = extract_features(encoder, test, device=device)
    return knn_accuracy(f_train, train.labels, f_test, test.labels)


def raw_pixel_knn(train: ImageSet, test: ImageSet) -> float:
    """Return the kNN accuracy of raw pixels (the no-learning baseline)."""
    return knn_accuracy(raw_pixels(train), train.labels, raw_pixels(test), test.labels)


def views_for(method_name: str, dataset: str, size: int) -> list[augment.ViewRecipe]:
    """Return the view recipes the course uses for ``method_name`` on ``dataset``.

    Supervised training gets one mild view (crop and flip); SSL methods get the shapes
    recipe on the shapes dataset and SimCLR's recipe elsewhere."""
    if method_name == "supervised":
        return [augment.ViewRecipe(size=size, crop_scale=(0.5, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)]
    return augment.shapes_views(size) if dataset == "shapes" else augment.simclr_views(size)


def train_and_evaluate(method_name: str = "simclr", dataset: str = "shapes", profile: Profile | str | None = None,
                       seed: int = 0, steps: int | None = None, progress: bool = True,
                       data: tuple[ImageSet, ImageSet] | None = None,
                       checkpoint_path: str | None = None) -> RunResult:
    """Train ``method_name`` on ``dataset`` with the profile's sizes; return the kNN result.

    ``data`` skips loading when the caller already has (train, test); ``steps`` overrides
    the profile's number of steps.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    seed_everything(seed)
    train, test = data or load_profile_data(dataset, profile, seed)
    device = default_device()
    loader = MultiViewLoader(DeviceLoader(train, profile.batch_size, device=device, seed=seed),
                             views_for(method_name, dataset, train.image_size))
    method = build_method(method_name, make_backbone(profile, train.images.shape[1]), train.num_classes,
                          head_hidden_dim=profile.head_hidden_dim, temperature=profile.temperature)
    t0 = time.perf_counter()
    history = fit(method, loader, steps or profile.steps, lr=profile.lr, device=device,
                  compile=profile.compile, progress=progress, checkpoint_path=checkpoint_path)
    seconds = time.perf_counter() - t0
    n_images = history[-1]["step"] * profile.batch_size
    return RunResult(method, history, knn_of(method, train, test, device), seconds, n_images / seconds)
