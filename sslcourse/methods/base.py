"""The contract every method of the course follows (Course: :ref:`intro-library`, :ref:`ch0-first-run`).

A method is an ``nn.Module`` holding its networks: ``backbone`` (its output h is the
representation) and ``projection_head`` (the head above the backbone; z = projection_head(h)),
with these calls:

- ``training_step(batch) -> dict``: "loss" plus diagnostics (detached tensors) that ``fit``
  logs. Every method reports the same collapse signals under the same names, measured on z:
  "z_std", "z_raw_std" and, with ``track_rank``, "z_erank" (``collapse_diagnostics``).
  A diagnostic of another tensor (a teacher's output, say) gets a name of its own.
- ``on_after_step(step, total_steps)``: updates that follow the optimizer step (EMA targets,
  queues, centers); nothing by default. What it needs from this step's ``training_step``
  (MoCo's keys, DINO's teacher logits) travels in ``pending``, a dict that
  ``training_step`` fills and ``on_after_step`` empties.
- ``encode(x) -> h``: the representation used for evaluation; ``embed(x) -> z``: the head's
  output, for probing what the head keeps (``experiment.probe_before_and_after_head``).
- Methods updated by several optimizers in turn (a GAN's discriminator and generator) name
  them in ``players``, tag each of their ``param_groups`` with its player, and take the
  player as ``training_step(batch, player)``: ``fit`` then steps one optimizer per player, in
  the order of ``players``, each after its own forward and backward pass.
- Generative methods also have ``sample(n) -> images``.

Each method module also declares ``SPEC``, a ``MethodSpec``: how the course builds the
method (its settings, each with its source), which views it trains on, and what input it
reads. ``methods.SPECS`` collects them; the command line, ``experiment`` and the chapters read
only these declarations.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import augment
from ..analysis import effective_rank_tensor, embedding_std
from ..data import Batch


class Method(nn.Module):
    """Base class: holds ``backbone`` and ``projection_head``; gives ``encode``, ``embed``,
    ``collapse_diagnostics`` and a no-op ``on_after_step``."""

    # Log the effective rank of z at every step (one SVD per step: on for the collapse plots
    # of chapter 6, off by default because it costs time on a GPU).
    track_rank: bool = False
    # Names of the optimizers updated in turn (empty: one optimizer for every parameter).
    players: tuple[str, ...] = ()

    def __init__(self, backbone: nn.Module, projection_head: nn.Module | None = None) -> None:
        super().__init__()
        feature_dim(backbone)
        self.backbone = backbone
        self.projection_head = projection_head if projection_head is not None else nn.Identity()
        self.pending: dict[str, Tensor] = {}

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def collapse_diagnostics(self, z: Tensor) -> dict[str, Tensor]:
        """Return the collapse signals of embeddings ``z`` (N, D): "z_std" (``embedding_std``, of
        the L2-normalised embeddings), "z_raw_std" (per-dimension std before normalisation,
        averaged: it shows embeddings shrinking to a point) and, when ``track_rank`` is set,
        "z_erank" (effective rank). Course: :ref:`ch6-collapse`."""
        z = z.detach().flatten(1)
        out = {"z_std": embedding_std(z), "z_raw_std": z.float().std(0).mean()}
        if self.track_rank:
            out["z_erank"] = effective_rank_tensor(z)
        return out

    def param_groups(self) -> list[dict]:
        """Parameter groups for the optimizer; ``lr_scale`` multiplies the learning rate (and
        "player" names the optimizer of a group when ``players`` is set). One group by
        default; fine-tuning gives the backbone a smaller scale."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def on_after_step(self, step: int, total_steps: int) -> None:
        """Called by ``fit`` after each optimizer step; override for EMA/queue/center updates."""

    def encode(self, x: Tensor) -> Tensor:
        """Return the representation h (B, feature_dim) of images ``x`` (B, C, H, W) in [0, 1]."""
        return self.backbone(x)

    def embed(self, x: Tensor) -> Tensor:
        """Return z = projection_head(backbone(x)), the output the loss sees (B, D)."""
        return self.projection_head(self.backbone(x))

    def sample(self, n: int) -> Tensor:
        """Return ``n`` generated images (n, C, H, W) in [0, 1] (generative methods only)."""
        raise NotImplementedError(f"{type(self).__name__} is not a generative method: it has no sample()")


def classification_outputs(logits: Tensor, labels: Tensor, loss_name: str, z: Tensor,
                           method: Method) -> dict[str, Tensor]:
    """Return a pretext classification step's outputs: the cross-entropy of ``logits`` (N, K)
    against ``labels`` (N,) as "loss" (and, detached, as ``loss_name``), "pretext_accuracy" and
    the collapse diagnostics of ``z`` (Course: :ref:`ch6-collapse`)."""
    loss = F.cross_entropy(logits, labels)
    with torch.no_grad():
        accuracy = (logits.argmax(1) == labels).float().mean()
    return {"loss": loss, loss_name: loss.detach(), "pretext_accuracy": accuracy, **method.collapse_diagnostics(z)}


def feature_dim(backbone: nn.Module) -> int:
    """Return the size of ``backbone``'s output; a clear error when it does not say."""
    if not hasattr(backbone, "feature_dim"):
        raise TypeError(f"{type(backbone).__name__} has no feature_dim attribute; "
                        "backbones must expose the size of their output")
    return backbone.feature_dim


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target``'s parameters towards ``online``'s: t <- m t + (1 - m) o, and copy the
    buffers (batch-norm statistics). The update of MoCo's key encoder and BYOL's target
    (Course: :ref:`ch5b-moco`, :ref:`ch6-distillation`)."""
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.lerp_(po.detach(), 1 - momentum)
    for bt, bo in zip(target.buffers(), online.buffers(), strict=True):
        bt.copy_(bo)


@dataclass(frozen=True, kw_only=True)
class CourseContext:
    """What the course's settings of a method may depend on (the profile and the data)."""

    make_backbone: Callable[[int], nn.Module]  # in_channels -> a freshly initialised encoder
    num_classes: int = 10  # classes of the dataset (the supervised baseline's classifier)
    head_width: int | None = None  # the profile's head width (None: each method's paper value)
    temperature: float | None = None  # the profile's contrastive temperature (None: the method's)
    image_size: int | None = None  # side of the training images, px (a ViT's position grid; None: the method's)


def ssl_views(dataset: str, size: int) -> list[augment.ViewRecipe]:
    """The two views of the self-supervised methods: the shapes recipe on the shapes (strong
    colour changes, ch. 0), SimCLR's recipe on natural images."""
    return augment.shapes_views(size) if dataset == "shapes" else augment.simclr_views(size)


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """How the course builds and trains one method: the one place its course settings live.

    Attributes:
        name: the name used by the command line and ``build_method``.
        method: the class.
        settings: constructor arguments the course uses, from the context (each with its
            source in a comment where it is declared); arguments not given keep the class's
            paper defaults.
        views: (dataset, image size) -> the view recipes it trains on (None: no image views).
        in_channels: one backbone per entry, with that many input channels (CMC: (1, 2)); ()
            for a method that makes its own encoder (CPC).
        inputs: "images"; "sequences" (1-D signals: ``data.sequences``); "video" (frame pairs:
            ``data.video``); "image-text" (images with their captions' tokens in ``Batch.tokens``).
            Only image methods train through ``experiment`` and the CLI.
    """

    name: str
    method: type[Method]
    settings: Callable[[CourseContext], dict[str, Any]] = lambda context: {}
    views: Callable[[str, int], list[augment.ViewRecipe]] | None = ssl_views
    in_channels: tuple[int, ...] = (3,)
    inputs: str = "images"

    def build(self, context: CourseContext, **overrides: Any) -> Method:
        """Return a new method with the course's settings, except ``overrides``."""
        unknown = set(overrides) - set(inspect.signature(self.method.__init__).parameters)
        if unknown:
            raise TypeError(f"{self.method.__name__} has no argument(s) {sorted(unknown)}")
        backbones = [context.make_backbone(c) for c in self.in_channels]
        return self.method(*backbones, **{**self.settings(context), **overrides})


def width(context: CourseContext, paper: int) -> int:
    """The head width the profile sets, else the paper's."""
    return context.head_width or paper
