"""Run profiles: how big every experiment of the course is on the machine at hand.

One function, ``get_profile``, decides: the name passed in, else the environment
variable ``SSLCOURSE_PROFILE``, else ``gpu`` when CUDA is available and ``cpu`` otherwise.
Notebooks read the profile and size their experiments from it, so the same notebook runs
in about a minute in CI and trains real models on a GPU (Course: :ref:`ch0-how-to-run`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

PROFILES = ["ci", "cpu", "gpu", "full"]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Sizes of the course's standard SSL experiment on the shapes dataset."""

    name: str  # "ci", "cpu", "gpu" or "full"
    description: str  # what the profile is for
    image_size: int  # side of the shapes images, pixels
    n_train: int  # images rendered for SSL training
    n_test: int  # images rendered for kNN evaluation
    batch_size: int  # images per SSL step (each seen as two views)
    steps: int  # optimizer steps of an SSL run
    backbone: str  # "convnet" (CPU-friendly) or "resnet18" (CIFAR stem)
    width: int  # ConvNet channels in the first block (ignored for ResNet-18)
    head_hidden_dim: int  # hidden width of projection heads, units (SimCLR's paper: 2048)
    # Temperature of the contrastive losses: SimCLR's CIFAR value is 0.5; 0.2 learns faster in
    # the short runs of the small profiles (measured on the shapes, ch. 5's temperature sweep).
    temperature: float
    lr: float  # peak learning rate of AdamW (``train.make_optimizer``), per step
    compile: bool  # torch.compile the training step (pays only for long GPU runs)
    checkpoint_every: int  # steps between checkpoints of a run with an output path (a few minutes)


_PROFILES = {p.name: p for p in [
    # ci: 2 CPU cores, 800 steps of a width-16 ConvNet in about a minute
    # (benchmarks/results/notebook_runtimes_ci.json: every notebook's time).
    Profile(name="ci", description="2 CPU cores, each notebook in about a minute; shows every phenomenon at "
            "small scale", image_size=20, n_train=6_000, n_test=2_000, batch_size=128, steps=800,
            backbone="convnet", width=16, head_hidden_dim=512, temperature=0.2, lr=2e-3, compile=False,
            checkpoint_every=200),
    Profile(name="cpu", description="a laptop: a few minutes per experiment", image_size=20, n_train=10_000,
            n_test=2_000, batch_size=256, steps=1_500, backbone="convnet", width=24, head_hidden_dim=1024,
            temperature=0.2, lr=2e-3, compile=False, checkpoint_every=250),
    Profile(name="gpu", description="one GPU (Colab T4 to H100): real ResNet-18 training, a chapter within "
            "about 30 min", image_size=32, n_train=50_000, n_test=10_000, batch_size=512, steps=5_000,
            backbone="resnet18", width=64, head_hidden_dim=2048, temperature=0.5, lr=2e-3, compile=True,
            checkpoint_every=1_000),
    Profile(name="full", description="paper-scale schedules on one or more GPUs: hours", image_size=64,
            n_train=100_000, n_test=10_000, batch_size=512, steps=50_000, backbone="resnet18", width=64,
            head_hidden_dim=2048, temperature=0.5, lr=2e-3, compile=True, checkpoint_every=2_000),
]}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile ``name``, else ``$SSLCOURSE_PROFILE``, else ``gpu``/``cpu`` by hardware."""
    name = name or os.environ.get("SSLCOURSE_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    if name not in _PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid names: {', '.join(PROFILES)}")
    return _PROFILES[name]
