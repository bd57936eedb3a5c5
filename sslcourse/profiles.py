"""Run profiles: how big every experiment of the course is on the machine at hand.

One function, ``get_profile``, decides: the name passed in, else the environment
variable ``SSLCOURSE_PROFILE``, else ``gpu`` when CUDA is available and ``cpu`` otherwise.
Notebooks read the profile and size their experiments from it, so the same notebook runs
in about a minute in CI and trains real models on a GPU (Course: ch. 0 §how to run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

PROFILES = ["ci", "cpu", "gpu", "full"]


@dataclass(frozen=True)
class Profile:
    """Sizes of the course's standard SSL experiment on the shapes dataset.

    Attributes:
        name: "ci", "cpu", "gpu" or "full".
        image_size: side of the shapes images in pixels.
        n_train, n_test: images rendered for SSL training / kNN evaluation.
        batch_size: images per SSL step (each seen as two views).
        steps: optimizer steps of an SSL run.
        backbone: "convnet" (CPU-friendly) or "resnet18" (CIFAR stem).
        width: ConvNet width (ignored for ResNet-18).
        head_hidden_dim: hidden width of projection heads (SimCLR's paper uses 2048).
        temperature: temperature of contrastive losses (SimCLR's CIFAR value is 0.5; 0.2
            learns faster in the short runs of the small profiles, measured on the shapes).
        lr: learning rate of the optimizer (Adam-style; see ``train.make_optimizer``).
        compile: use ``torch.compile`` (pays only for long GPU runs).
        description: what the profile is for.
    """

    name: str
    image_size: int
    n_train: int
    n_test: int
    batch_size: int
    steps: int
    backbone: str
    width: int
    head_hidden_dim: int
    temperature: float
    lr: float
    compile: bool
    description: str


_PROFILES = {
    # ci: calibrated on 2 cores: 800 steps of a width-16 ConvNet take about 55 s and lift
    # SimCLR's kNN accuracy on the shapes from about 27% (random weights) to about 48%.
    "ci": Profile("ci", 20, 6_000, 2_000, 128, 800, "convnet", 16, 512, 0.2, 2e-3, False,
                  "2 CPU cores, each notebook in about a minute; shows every phenomenon at small scale"),
    "cpu": Profile("cpu", 20, 10_000, 2_000, 256, 1_500, "convnet", 24, 1024, 0.2, 2e-3, False,
                   "a laptop: a few minutes per experiment"),
    "gpu": Profile("gpu", 32, 50_000, 10_000, 512, 5_000, "resnet18", 64, 2048, 0.5, 2e-3, True,
                   "one GPU (Colab T4 to H100): real ResNet-18 training, a chapter within about 30 min"),
    "full": Profile("full", 64, 100_000, 10_000, 512, 50_000, "resnet18", 64, 2048, 0.5, 2e-3, True,
                    "paper-scale schedules on one or more GPUs: hours"),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile ``name``, else ``$SSLCOURSE_PROFILE``, else ``gpu``/``cpu`` by hardware."""
    name = name or os.environ.get("SSLCOURSE_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid names: {', '.join(PROFILES)}")
    return _PROFILES[name]
