"""Transfer of a pre-trained backbone to a labelled task by fine-tuning it.

Course: :ref:`ch1-fine-tuning`. This module sits above both ``evaluate`` (frozen features)
and ``train`` (``fit``), which it uses."""

from __future__ import annotations

import copy
import types

import torch
from torch import nn

from . import augment
from .data import DeviceLoader, ImageSet, MultiViewLoader
from .evaluate import extract_features
from .methods import Supervised
from .train import default_device, fit


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
              device: str | torch.device | None = None, *, frozen_blocks: int = 0) -> float:
    """Return the test accuracy after fine-tuning a *copy* of ``backbone`` with a new linear head.

    The head learns at ``lr``, the pre-trained backbone at ``lr * backbone_lr_scale`` (a lower
    rate keeps what pre-training learned), with crop-and-flip views, through ``train.fit``.
    Course: :ref:`ch1-fine-tuning` (few labels: linear probing often wins).

    ``frozen_blocks`` > 0 keeps the first that many blocks of the copy fixed (``freeze_blocks``):
    close to RotNet's semi-supervised protocol, which trains only the upper layers on the
    labelled subset; here those layers start from the pre-trained weights rather than being
    re-initialised (Course: :ref:`ch4-semi-supervised`).
    """
    device = torch.device(device) if device is not None else default_device()
    copied = copy.deepcopy(backbone)
    if frozen_blocks:
        freeze_blocks(copied, frozen_blocks)
    method = Supervised(copied, train.num_classes, backbone_lr_scale=backbone_lr_scale)
    view = augment.ViewRecipe(size=train.image_size, crop_scale=(0.6, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)
    loader = MultiViewLoader(DeviceLoader(train, min(batch_size, len(train)), device=device, seed=seed), [view])
    fit(method, loader, steps, lr=lr, device=device, progress=False, log_every=max(1, steps // 4))
    logits = extract_features(lambda x: method.embed(x), test, device=device)
    return (logits.argmax(1) == test.labels.cpu()).float().mean().item()
