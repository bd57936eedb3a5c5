"""One small class per method, all with the contract of ``methods.base.Method``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from ..augment import color_jitter
from .barlow_twins import BarlowTwins
from .base import Method
from .byol import BYOL
from .cmc import CMC
from .dino import DINO
from .moco import MoCo
from .simclr import SimCLR
from .simsiam import SimSiam
from .supcon import SupCon
from .supervised import Supervised
from .swav import SwAV
from .vicreg import VICReg
from .wmse import WMSE

METHODS = ["simclr", "moco", "supcon", "cmc", "byol", "simsiam", "vicreg", "barlow_twins", "wmse", "dino", "swav",
           "supervised"]


def build_method(name: str, make_backbone: Callable[[int], nn.Module], num_classes: int = 10,
                 head_hidden_dim: int | None = None, temperature: float | None = None) -> Method:
    """Return method ``name`` (one of ``METHODS``) with paper defaults, except the
    projection-head width and temperature when given (the profiles set them).

    ``make_backbone(in_channels)`` returns a fresh encoder of images with that many channels:
    3 for most methods; CMC asks for a 1-channel (luminance) and a 2-channel (chrominance) one."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(METHODS)}")
    hidden = {} if head_hidden_dim is None else {"hidden_dim": head_hidden_dim}
    if name == "cmc":
        # One crop, a separate colour jitter for the luminance and the chrominance input: they
        # then share the object's outline but not its colour (measured on the shapes, ch. 5).
        # Temperature 0.1 instead of the paper's 0.07 (measured on the shapes: 0.1 and 0.2 within 2 kNN points).
        jitter = partial(color_jitter, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.5, p=1.0)
        return CMC(make_backbone(1), make_backbone(2), temperature=0.1, colour_jitter=jitter, **hidden)
    if name == "moco":
        # The official MoCo CIFAR-10 demo's settings for small data: symmetric loss, tau 0.1.
        return MoCo(make_backbone(3), temperature=0.1, symmetric=True, **hidden)
    backbone = make_backbone(3)
    width = head_hidden_dim or 2048  # the non-contrastive heads use the profile's width for every layer
    if name == "byol":
        # A fast target (momentum 0.9) and a predictor learning 10x faster: measured on the shapes
        # (ci, 1,600 steps) +10 kNN points over random weights, against +3 with 0.99 and 1x
        # (benchmarks/results/ch6_distillation_curves_ci*.json).
        return BYOL(backbone, hidden_dim=width, projection_dim=min(256, width), base_momentum=0.9,
                    predictor_lr_scale=10.0)
    if name == "simsiam":
        return SimSiam(backbone, projection_dim=width, predictor_hidden_dim=max(width // 4, 1))
    if name == "vicreg":
        return VICReg(backbone, hidden_dim=width, projection_dim=width)
    if name == "barlow_twins":  # lambda ~ 1/D keeps the two terms balanced at smaller D
        return BarlowTwins(backbone, hidden_dim=width, projection_dim=width, off_diagonal_weight=min(5e-3, 1 / width))
    if name == "wmse":  # 64 dimensions (the paper's CIFAR setting), fewer for very narrow heads
        return WMSE(backbone, hidden_dim=width, projection_dim=min(64, width // 2))
    if name == "dino":
        # BatchNorm in the head: measured to learn faster on the shapes. Momentum 0.95: +10 to +13
        # kNN points over random weights after 1,600 ci steps (three seeds), +12 to +15 after 2,000;
        # 0.99: +8 to +11.
        return DINO(backbone, out_dim=1024, hidden_dim=width, bottleneck_dim=min(256, width), base_momentum=0.95,
                    head_batch_norm=True)
    if name == "swav":  # 30 prototypes, about 4x the shape classes: measured +12 vs +10.5 kNN points with 100-300
        return SwAV(backbone, hidden_dim=width, projection_dim=min(128, width), n_prototypes=30)
    kw = dict(hidden)
    if temperature is not None:
        kw["temperature"] = temperature
    if name == "simclr":
        return SimCLR(backbone, **kw)
    if name == "supcon":
        return SupCon(backbone, **kw)
    return Supervised(backbone, num_classes)


__all__ = ["BYOL", "CMC", "DINO", "METHODS", "WMSE", "BarlowTwins", "Method", "MoCo", "SimCLR", "SimSiam", "SupCon",
           "Supervised", "SwAV", "VICReg", "build_method"]
