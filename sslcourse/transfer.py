"""Transfer of a pre-trained backbone to a labelled task by fine-tuning it.

Course: :ref:`ch1-fine-tuning`. This module sits above both ``evaluate`` (frozen features)
and ``train`` (``fit``), which it uses."""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import augment
from .data import DeviceLoader, ImageSet, MultiViewLoader
from .evaluate import extract_features
from .methods import Supervised
from .train import default_device, fit


def fine_tune(backbone: nn.Module, train: ImageSet, test: ImageSet, steps: int = 200, lr: float = 2e-3,
              backbone_lr_scale: float = 0.1, batch_size: int = 64, seed: int = 0,
              device: str | torch.device | None = None) -> float:
    """Return the test accuracy after fine-tuning a *copy* of ``backbone`` with a new linear head.

    The head learns at ``lr``, the pre-trained backbone at ``lr * backbone_lr_scale`` (a lower
    rate keeps what pre-training learned), with crop-and-flip views, through ``train.fit``.
    Course: :ref:`ch1-fine-tuning` (few labels: linear probing often wins).
    """
    device = torch.device(device) if device is not None else default_device()
    method = Supervised(copy.deepcopy(backbone), train.num_classes, backbone_lr_scale=backbone_lr_scale)
    view = augment.ViewRecipe(size=train.image_size, crop_scale=(0.6, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)
    loader = MultiViewLoader(DeviceLoader(train, min(batch_size, len(train)), device=device, seed=seed), [view])
    fit(method, loader, steps, lr=lr, device=device, progress=False, log_every=max(1, steps // 4))
    logits = extract_features(lambda x: method.embed(x), test, device=device)
    return (logits.argmax(1) == test.labels.cpu()).float().mean().item()
