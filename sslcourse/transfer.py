"""Transfer of a pre-trained backbone to a labelled task: fine-tuning, linear probes, and chapter 2's
supervised pre-train-and-transfer run.

Course: :ref:`ch1-fine-tuning`, :ref:`ch2-transfer`. This module sits above ``evaluate`` (frozen
features), ``train`` (``fit``) and ``experiment``, which it uses."""

from __future__ import annotations

import copy
import math
import statistics
import types

import torch
from torch import nn

from . import augment
from .analysis import class_separation
from .backbones import build_backbone
from .data import DeviceLoader, ImageSet, MultiViewLoader
from .data.tasks import TARGETS, source_task, target_task
from .evaluate import extract_features, linear_probe
from .experiment import train_and_evaluate
from .methods import Supervised
from .profiles import Profile, get_profile
from .records import load_record, records_dir
from .train import default_device, fit, seed_everything


def _stay_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train`` of a frozen module: whatever ``mode`` is asked, it (and its children) stays in
    eval mode, so its batch norm normalises with the pre-trained running statistics."""
    return nn.Module.train(self, False)


def freeze_blocks(backbone: nn.Module, n: int) -> nn.Module:
    """Return ``backbone`` (changed in place) with its first ``n`` blocks frozen: no gradients,
    and every module of those blocks kept in eval mode even when the whole model is put in
    training mode (``fit`` calls ``method.train()``), so their batch norm normalises with the
    pre-trained running statistics and never updates them. A frozen block
    computes the same function during fine-tuning and at evaluation.

    The blocks are the backbone's ``stages()`` (those ``block_features`` pools): a ConvNet's
    conv-BN-ReLU groups, a ResNet's four stages (the stem counted with the first). Course: :ref:`ch4-semi-supervised`.
    """
    if not hasattr(backbone, "stages"):
        raise ValueError(f"freeze_blocks needs a ConvNet or a ResNetBackbone, got {type(backbone).__name__}")
    blocks = backbone.stages()
    if not 0 <= n <= len(blocks):
        raise ValueError(f"n must be in [0, {len(blocks)}] (the backbone's blocks), got {n}")
    for block in blocks[:n]:
        for module in block.modules():
            module.train = types.MethodType(_stay_eval, module)  # model.train() leaves it in eval
            nn.Module.train(module, False)
        for p in block.parameters():
            p.requires_grad_(False)
    return backbone


def fine_tune(backbone: nn.Module, train: ImageSet, test: ImageSet, steps: int = 200, lr: float = 2e-3,
              backbone_lr_scale: float = 0.1, batch_size: int = 64, seed: int = 0,
              device: str | torch.device | None = None, *, frozen_blocks: int = 0, flip: bool = True) -> float:
    """Return the test accuracy after fine-tuning a *copy* of ``backbone`` with a new linear head.

    The head learns at ``lr``, the pre-trained backbone at ``lr * backbone_lr_scale`` (a lower
    rate keeps what pre-training learned), with crop-and-flip views, through ``train.fit``.
    Course: :ref:`ch1-fine-tuning` (few labels: linear probing often wins).

    ``frozen_blocks`` > 0 keeps the first that many blocks of the copy fixed (``freeze_blocks``):
    close to RotNet's semi-supervised protocol, which trains only the upper layers on the
    labelled subset; here those layers start from the pre-trained weights rather than being
    re-initialised (Course: :ref:`ch4-semi-supervised`).

    ``flip=False`` trains without horizontal flips, for classes a mirror changes (digits:
    Course: :ref:`ch2-transfer`).
    """
    device = torch.device(device) if device is not None else default_device()
    copied = copy.deepcopy(backbone)
    if frozen_blocks:
        freeze_blocks(copied, frozen_blocks)
    method = Supervised(copied, train.num_classes, backbone_lr_scale=backbone_lr_scale)
    view = augment.ViewRecipe(size=train.image_size, crop_scale=(0.6, 1.0), flip_p=0.5 if flip else 0.0, jitter_p=0.0,
                              gray_p=0.0, blur_p=0.0)
    loader = MultiViewLoader(DeviceLoader(train, min(batch_size, len(train)), device=device, seed=seed), [view])
    fit(method, loader, steps, lr=lr, device=device, progress=False, log_every=max(1, steps // 4))
    return classifier_accuracy(method, test, device)


def probe_accuracy(encoder: object, train: ImageSet, test: ImageSet, device: str | torch.device | None = None,
                   l2_grid: tuple[float, ...] = (1e-2, 1e-3), max_iter: int = 50) -> float:
    """Return the linear-probe accuracy on ``test`` of ``encoder``'s frozen features, the probe
    trained on ``train`` (``evaluate.linear_probe``; a short L2 grid and L-BFGS run by default,
    since chapter 2 probes many networks on many targets). Course: :ref:`ch2-transfer`."""
    f_train = extract_features(encoder, train, device=device)
    f_test = extract_features(encoder, test, device=device)
    return linear_probe(f_train, train.labels, f_test, test.labels, l2_grid=l2_grid, max_iter=max_iter).accuracy


def classifier_accuracy(method: nn.Module, data: ImageSet, device: str | torch.device | None = None) -> float:
    """Return the accuracy on ``data`` of a classifier whose ``embed`` gives the logits (e.g.
    ``methods.Supervised``): the *source* accuracy of a pre-trained network."""
    was_training = method.training
    method.eval()  # a lambda is not a module: extract_features cannot switch batch norm and dropout itself
    logits = extract_features(lambda x: method.embed(x), data, device=device or next(method.parameters()).device)
    method.train(was_training)
    return (logits.argmax(1) == data.labels.cpu()).float().mean().item()


def pretrain_and_transfer(source: tuple[ImageSet, ImageSet], targets: dict[str, tuple[ImageSet, ImageSet]],
                          profile: Profile, steps: int, seed: int = 0, width: int | None = None, depth: int = 4,
                          norm: str = "batch", **options: float) -> tuple[Supervised, dict[str, float]]:
    """Pre-train a supervised ConvNet on ``source`` (train, test) and measure what transfers.

    The network is ``ConvNet(width, depth, norm)`` (width: the profile's) trained for ``steps``
    steps of the profile's batch and learning rate through ``fit``, with ``Supervised``'s
    ``options`` (label smoothing, dropout, head weight decay, adversarial training). Returns the
    method and one row: ``source`` (its classifier's accuracy on the source test set),
    ``separation`` (``analysis.class_separation`` of the backbone's features of the source test
    images) and, for each target name, the linear-probe accuracy of the frozen backbone
    (``probe_accuracy``). Course: :ref:`ch2-tradeoffs`.
    """
    seed_everything(seed)
    backbone = build_backbone("convnet", width=width or profile.width, depth=depth, norm=norm)
    method = Supervised(backbone, source[0].num_classes, **options)
    train_and_evaluate("supervised", profile=profile, seed=seed, steps=steps, progress=False, data=source,
                       method=method)
    device = next(method.parameters()).device
    features = extract_features(method.backbone, source[1], device=device)
    row = {"source": classifier_accuracy(method, source[1]),
           "separation": class_separation(features, source[1].labels.cpu())}
    row |= {name: probe_accuracy(method.backbone, *data, device=device) for name, data in targets.items()}
    return method, row


# The regularisers of chapter 2's trade-off table: options of ``pretrain_and_transfer``. Label
# smoothing and dropout on the penultimate layer are two of the losses Kornblith et al. (2021)
# compare (their table 1: label smoothing 0.1 on 1000 classes; 0.2 spreads a comparable share over
# our four classes); extra weight decay on the last layer is another of theirs; GroupNorm with
# weight standardization is BiT's normalisation (Kolesnikov et al. 2020); adversarial training
# with a small radius is what Salman et al. (2020) find transfers better.
TRADEOFFS: dict[str, dict[str, float | str]] = {
    "cross-entropy": {},
    "label smoothing 0.2": {"label_smoothing": 0.2},
    "dropout 0.5": {"dropout": 0.5},
    "last-layer weight decay 0.5": {"head_weight_decay": 0.5},
    "GroupNorm + WS": {"norm": "group"},
    "adversarial (FGSM, 4/255)": {"adversarial_steps": 1, "adversarial_epsilon": 4 / 255},
}


def profile_tasks(profile: Profile) -> tuple[tuple[ImageSet, ImageSet], dict[str, tuple[ImageSet, ImageSet]], int]:
    """Return chapter 2's source task, its targets (``data.tasks.TARGETS`` order) and the steps of
    every pre-training run, sized by ``profile``: two thirds of its training images for the
    source, half its test images for each target's labelled and test sets, 3/8 of its steps."""
    n_source, n_target = profile.n_train * 2 // 3, profile.n_test // 2
    source = source_task(n_source, n_target, profile.image_size)
    targets = {name: target_task(name, n_target, n_target, profile.image_size) for name in TARGETS}
    return source, targets, profile.steps * 3 // 8


def seed_spread(record: dict, variant: str = "cross-entropy") -> tuple[float, float]:
    """Return the smallest differences chapter 2 reads as real: twice the standard deviation of
    the difference between two single runs (sqrt(2) times one run's, over the seeds of
    ``variant`` in a ``benchmarks/ch2_tradeoffs.py`` record), for one target's probe accuracy
    (averaged over the targets) and for the mean over targets. Course: :ref:`ch2-transfer`."""
    runs = list(record["runs"][variant].values())
    if len(runs) < 2:
        raise ValueError(f"the record holds {len(runs)} run of {variant!r}; a spread needs at least 2 seeds")
    targets = record["targets"]
    one_target = statistics.mean(statistics.stdev(run[t] for run in runs) for t in targets)
    mean_over_targets = statistics.stdev(statistics.mean(run[t] for t in targets) for run in runs)
    return 2 * math.sqrt(2) * one_target, 2 * math.sqrt(2) * mean_over_targets


def tradeoff_record(profile: str | None = None) -> dict:
    """Return the committed ``benchmarks/ch2_tradeoffs.py`` record of ``profile`` (default: the
    current profile, ``profiles.get_profile()``), or the ``ci`` one when that profile has none;
    its ``"profile"`` entry says which was read. Course: :ref:`ch2-tradeoffs`."""
    name = f"ch2_tradeoffs_{get_profile(profile).name}.json"
    return load_record(name if (records_dir() / name).is_file() else "ch2_tradeoffs_ci.json")
