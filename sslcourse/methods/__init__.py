"""One small class per method, all with the contract of ``methods.base.Method``; each module
declares ``SPEC``, the course's settings of its method, and ``SPECS`` collects them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from . import (  # one line per module: chapter by chapter, each adds its own
    autoencoder,
    bag_of_words,
    barlow_twins,
    bigan,
    byol,
    clip,
    cmc,
    colorization,
    cpc,
    dino,
    gan,
    inpainting,
    jigsaw,
    mae,
    moco,
    pixelcnn,
    relative_position,
    rotation,
    simclr,
    simsiam,
    split_brain,
    supcon,
    supervised,
    swav,
    vae,
    vicreg,
    video_colorization,
    wmse,
)
from .autoencoder import Autoencoder
from .bag_of_words import BagOfWords
from .barlow_twins import BarlowTwins
from .base import CourseContext, Method, MethodSpec
from .bigan import BiGAN
from .byol import BYOL
from .clip import CLIP
from .cmc import CMC
from .cpc import CPC
from .dino import DINO
from .gan import DCGAN
from .inpainting import ContextEncoder
from .jigsaw import Jigsaw
from .mae import MAE
from .moco import MoCo
from .pixelcnn import PixelCNN
from .relative_position import RelativePosition
from .rotation import RotationPrediction
from .simclr import SimCLR
from .simsiam import SimSiam
from .supcon import SupCon
from .supervised import Supervised
from .swav import SwAV
from .vae import VAE
from .vicreg import VICReg
from .wmse import WMSE

SPECS: dict[str, MethodSpec] = {m.SPEC.name: m.SPEC for m in [
    simclr, moco, supcon, cmc, cpc,  # ch. 0 and 5
    byol, simsiam, vicreg, barlow_twins, wmse, dino, swav,  # ch. 6
    supervised, bag_of_words, clip,  # ch. 2
    autoencoder, vae, gan, bigan, pixelcnn,  # ch. 3
    rotation, relative_position, jigsaw,  # ch. 4, transformations
    inpainting, colorization, split_brain, video_colorization, mae,  # ch. 4, masked prediction
]}
METHODS = list(SPECS)
# The methods that train on image views alone (CPC reads 1-D sequences, video colorization frame
# pairs, CLIP and the bag-of-words model images with their captions).
IMAGE_METHODS = [name for name, spec in SPECS.items() if spec.inputs == "images"]


def method_spec(name: str) -> MethodSpec:
    """Return the declaration of method ``name``; a clear error lists the valid names."""
    if name not in SPECS:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(METHODS)}")
    return SPECS[name]


def build_method(name: str, make_backbone: Callable[[int], nn.Module] | None = None, num_classes: int = 10,
                 head_hidden_dim: int | None = None, temperature: float | None = None, image_size: int | None = None,
                 **overrides: object) -> Method:
    """Return method ``name`` (one of ``METHODS``) with the course's settings (``SPECS[name]``),
    the profile's head width and temperature where given, and ``overrides`` of any constructor
    argument (e.g. ``build_method("moco", ..., queue_size=256)``).

    ``make_backbone(in_channels)`` returns a fresh encoder of images with that many channels:
    3 for most methods; CMC asks for a 1-channel (luminance) and a 2-channel (chrominance) one;
    CPC makes its own sequence encoder and needs none; MAE makes its own TinyViT, for images of
    ``image_size`` pixels when given."""
    spec = method_spec(name)
    if make_backbone is None and spec.in_channels:
        raise TypeError(f"{name} needs make_backbone(in_channels) to build its encoder(s)")
    context = CourseContext(make_backbone=make_backbone or (lambda c: nn.Identity()), num_classes=num_classes,
                            head_width=head_hidden_dim, temperature=temperature, image_size=image_size)
    return spec.build(context, **overrides)


__all__ = ["BYOL", "CLIP", "CMC", "CPC", "DINO", "IMAGE_METHODS", "METHODS", "SPECS", "WMSE", "BagOfWords",
           "BarlowTwins", "CourseContext", "Method", "MethodSpec", "MoCo", "SimCLR", "SimSiam", "SupCon",
           "Supervised", "SwAV", "VICReg", "build_method", "method_spec", "MAE", "ContextEncoder", "Jigsaw",
           "RelativePosition", "RotationPrediction", "Autoencoder", "VAE", "DCGAN", "BiGAN", "PixelCNN"]
