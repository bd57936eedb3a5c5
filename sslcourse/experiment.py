"""The course's standard experiment in one call: train a method on a dataset at the size the
profile says, then measure kNN accuracy of its frozen features against two baselines
(the same backbone with random weights, and raw pixels). Used by chapter 0 and the CLI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from . import augment
from .backbones import build_backbone
from .data import DeviceLoader, ImageSet, MultiViewLoader, load_dataset
from .distributed import prepare_for_distributed, rank_and_world_size
from .evaluate import extract_features, knn_accuracy, linear_probe, raw_pixels
from .methods import Method, build_method, method_spec
from .profiles import Profile, get_profile
from .text import Vocabulary
from .train import default_device, fit, load_checkpoint, seed_everything


@dataclass
class RunResult:
    """What ``train_and_evaluate`` measured."""

    method: Method
    history: list[dict]
    knn: float  # kNN accuracy of the trained backbone on the test set
    train_seconds: float
    images_per_s: float | None  # training images (each seen as all its views) per second; None: none trained
    extra: dict = field(default_factory=dict)


def load_profile_data(dataset: str, profile: Profile, seed: int = 0,
                      upright: bool = False) -> tuple[ImageSet, ImageSet]:
    """Return (train, test) of ``dataset`` sized by ``profile`` (shapes: rendered at its size,
    ``upright`` at rotation 0)."""
    if dataset == "shapes":
        kw = dict(image_size=profile.image_size, seed=seed, upright=upright)
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
    """Return the view recipes the course trains ``method_name`` on, for ``dataset`` at ``size``
    pixels: its declaration's (``methods.SPECS[method_name].views``)."""
    spec = method_spec(method_name)
    if spec.views is None:
        raise ValueError(f"{method_name} trains on {spec.inputs}, not on image views")
    return spec.views(dataset, size)


def build_for_profile(method_name: str, profile: Profile, num_classes: int = 10, **overrides: object) -> Method:
    """Return ``method_name`` with the course's settings at ``profile``'s sizes (its backbone, head
    width, temperature and image size), except ``overrides`` of constructor arguments (an
    ``image_size`` override: the data's, when it is not the profile's shapes)."""
    settings = {"head_hidden_dim": profile.head_hidden_dim, "temperature": profile.temperature,
                "image_size": profile.image_size}
    settings.update((k, overrides.pop(k)) for k in list(settings) if k in overrides)
    return build_method(method_name, partial(make_backbone, profile), num_classes, **settings, **overrides)


def train_and_evaluate(method_name: str = "simclr", dataset: str = "shapes", profile: Profile | str | None = None,
                       seed: int = 0, steps: int | None = None, progress: bool = True,
                       data: tuple[ImageSet, ImageSet] | None = None,
                       checkpoint_path: str | None = None, method: Method | None = None,
                       batch_size: int | None = None, knn_every: int = 0,
                       compile: bool | None = None, checkpoint_every: int | None = None,
                       checkpoint_extra: dict | None = None) -> RunResult:
    """Train ``method_name`` on ``dataset`` with the profile's sizes; return the kNN result.

    ``data`` skips loading when the caller already has (train, test); ``steps`` and
    ``batch_size`` override the profile's; ``method`` trains that instance (e.g. SimCLR with
    another temperature) instead of ``build_method(method_name)``, with ``method_name``'s views.
    ``knn_every`` > 0 adds the test kNN accuracy ("knn") to the history every that many steps,
    for time-to-accuracy curves (the evaluation time is not counted as training time).
    ``compile`` overrides the profile's ``torch.compile`` choice. With ``checkpoint_path`` the run
    is saved every ``checkpoint_every`` steps (default: the profile's), with ``checkpoint_extra``
    entries, and resumed from there.
    """
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    seed_everything(seed)
    train, test = data or load_profile_data(dataset, profile, seed)
    device = default_device()
    batch_size = batch_size or profile.batch_size
    rank, world_size = rank_and_world_size()  # under torchrun each rank takes 1/world of the batch
    tokens = None
    if method_spec(method_name).inputs == "image-text":  # each image's caption, as token ids
        if train.captions is None:
            raise ValueError(f"{method_name} trains on captions; the {dataset} dataset has none")
        tokens = Vocabulary().encode(train.captions)
    loader = MultiViewLoader(DeviceLoader(train, batch_size // world_size, device=device, seed=seed, rank=rank,
                                          world_size=world_size, tokens=tokens),
                             views_for(method_name, dataset, train.image_size))
    method = method or build_for_profile(method_name, profile, train.num_classes, image_size=train.image_size)
    method = prepare_for_distributed(method.to(device))
    done_before = load_checkpoint(checkpoint_path)["step"] if checkpoint_path and Path(checkpoint_path).exists() else 0
    t0 = time.perf_counter()
    evaluate = (lambda m: {"knn": knn_of(m, train, test, device)}) if knn_every else None
    history = fit(method, loader, profile.steps if steps is None else steps, lr=profile.lr, device=device,
                  compile=profile.compile if compile is None else compile, progress=progress,
                  checkpoint_path=checkpoint_path, evaluate=evaluate, evaluate_every=knn_every,
                  checkpoint_every=profile.checkpoint_every if checkpoint_every is None else checkpoint_every,
                  checkpoint_extra=checkpoint_extra)
    # with knn_every, fit's clock (which stops while evaluating) is the training time
    seconds = history[-1]["time_s"] if knn_every else time.perf_counter() - t0
    n_images = (history[-1]["step"] - done_before) * batch_size  # what this call trained, not the resumed part
    knn = history[-1].get("knn")  # fit evaluated the last step when knn_every is set
    if knn is None:
        knn = knn_of(method, train, test, device)
    return RunResult(method, history, knn, seconds, n_images / seconds if n_images else None)


def contrastive_sweeps(profile: Profile, data: tuple[ImageSet, ImageSet], steps: int, batch_size: int,
                       temperatures: list[float], batch_sizes: list[int], queue_sizes: list[int],
                       queue_batch_size: int, queue_steps: int | None = None) -> dict[str, dict]:
    """Chapter 5's ablations: kNN accuracy of SimCLR against its temperature and batch size,
    and of MoCo v2 against its queue length at a fixed small batch.

    SimCLR runs use ``batch_size`` (temperature sweep) or the profile's temperature (batch
    sweep), ``steps`` steps each; the run with the profile's temperature and ``batch_size``
    is shared by both sweeps. MoCo runs use ``queue_batch_size`` and ``queue_steps``
    (default ``steps``). Returns {"temperature": {tau: acc}, "batch_size": {b: acc},
    "queue": {k: acc}}.
    """
    done: dict[tuple[float, int], float] = {}

    def simclr(temperature: float, batch: int) -> float:
        if (temperature, batch) not in done:
            seed_everything(0)
            method = build_for_profile("simclr", profile, temperature=temperature)
            done[temperature, batch] = train_and_evaluate("simclr", "shapes", profile, data=data, steps=steps,
                                                          batch_size=batch, method=method, progress=False).knn
        return done[temperature, batch]

    def moco(queue_size: int) -> float:
        seed_everything(0)  # MoCo with the course's settings, only the queue length varies
        method = build_for_profile("moco", profile, queue_size=queue_size)
        return train_and_evaluate("moco", "shapes", profile, data=data, steps=queue_steps or steps,
                                  batch_size=queue_batch_size, method=method, progress=False).knn

    return {"temperature": {t: simclr(t, batch_size) for t in temperatures},
            "batch_size": {b: simclr(profile.temperature, b) for b in batch_sizes},
            "queue": {k: moco(k) for k in queue_sizes}}


def position_cells(data: ImageSet, reference: ImageSet, bins: int = 3) -> Tensor:
    """Return each image's position as a cell of a ``bins`` x ``bins`` grid (int64 (N,), in
    [0, bins^2)): its shape's ``pos_x`` and ``pos_y`` cut at the ``reference`` set's quantiles
    (the training set's, so every cell holds about as many training images)."""
    cells = torch.zeros(len(data), dtype=torch.int64)
    quantiles = torch.linspace(0, 1, bins + 1)[1:-1]
    for axis in ("pos_x", "pos_y"):
        edges = torch.quantile(reference.factors[axis].double(), quantiles.double())
        cells = cells * bins + torch.bucketize(data.factors[axis].double(), edges)
    return cells


def probe_targets(encoder: object, train: ImageSet, test: ImageSet, targets: tuple[str, ...] = ("class", "color"),
                  device: torch.device | None = None) -> dict[str, float]:
    """Return the linear-probe accuracy of ``encoder``'s features (a method, module or callable,
    as ``extract_features`` takes) on each of ``targets``: "class" (the labels), a discrete
    generating factor of the shapes ("color", "bg_color", "texture") or "position" (the 3 x 3
    cell of the shape's centre, ``position_cells``). What a representation keeps of the class and
    of the nuisances (Course: :ref:`ch5-why-h`)."""
    f_train = extract_features(encoder, train, device=device)
    return probe_features(f_train, extract_features(encoder, test, device=device), train, test, targets)


def probe_features(f_train: Tensor, f_test: Tensor, train: ImageSet, test: ImageSet,
                   targets: tuple[str, ...] = ("class", "color")) -> dict[str, float]:
    """Return ``probe_targets``'s accuracies for features already extracted: ``f_train`` (N, d) of
    ``train``'s images and ``f_test`` of ``test``'s (e.g. one layer of a network probed layer by layer)."""
    result = {}
    for t in targets:
        if t == "class":
            y_train, y_test = train.labels, test.labels
        elif t == "position":
            y_train, y_test = position_cells(train, train), position_cells(test, train)
        else:
            y_train, y_test = train.factors[t], test.factors[t]
        result[t] = linear_probe(f_train, y_train, f_test, y_test).accuracy
    return result


def probe_before_and_after_head(method: Method, train: ImageSet, test: ImageSet,
                                factors: tuple[str, ...] = ("color", "bg_color")) -> dict[str, dict[str, float]]:
    """Linear-probe accuracy of the backbone output h (``encode``) and of z = projection_head(h)
    (``embed``) of any image method, on the class and on generating ``factors`` of the shapes
    (Course: :ref:`ch5-why-h`).

    Returns {"h": {"class": acc, factor: acc, ...}, "z": {...}}."""
    device = next(method.parameters()).device  # `embed` is not a module to ask
    return {name: probe_targets(encoder, train, test, ("class", *factors), device)
            for name, encoder in [("h", method), ("z", method.embed)]}
