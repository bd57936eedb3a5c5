"""Split-brain autoencoders (Zhang, Isola & Efros 2017, "Split-brain autoencoders: unsupervised
learning by cross-channel prediction"): two encoders, one predicting ab from L, the other L
from ab; the representation concatenates both encoders' features.

Course: :ref:`ch4b-colorization` (split-brain autoencoders). Both directions are classification here, as in
the paper's best variant: ab over the in-gamut bins of colorization (soft targets), L over 50
bins of width 2 (one-hot targets). Without class rebalancing by default (``lam=1``): the goal is
the representation, not vivid pictures; ``lam=0.5`` gives colorization's rebalancing. The
networks see L / 50 - 1 and ab / 110 (about [-1, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..losses import ab_classification_loss, ab_regression_loss
from .base import Method, MethodSpec
from .colorization import (
    BIN_REDUCTION,
    MODES,
    ABTargets,
    at_size,
    check_dense,
    decode,
    dense_decoder,
    network_inputs,
    pooled,
)
from .supervised import supervised_views

L_BINS = 50  # bins of width 2 over L in [0, 100]


class SplitBrainEncoder(nn.Module):
    """Two encoders of one RGB image, of its L (1 channel) and of its ab (2 channels);
    forward returns their concatenated pooled features (B, l_dim + ab_dim)."""

    def __init__(self, l_net: nn.Module, ab_net: nn.Module) -> None:
        super().__init__()
        self.l_net, self.ab_net = check_dense(l_net), check_dense(ab_net)
        self.feature_dim = l_net.feature_dim + ab_net.feature_dim

    def feature_maps(self, l_in: Tensor, ab_in: Tensor) -> tuple[Tensor, Tensor]:
        """Return the maps of the L encoder on ``l_in`` and of the ab encoder on ``ab_in``."""
        return self.l_net.feature_map(l_in), self.ab_net.feature_map(ab_in)

    def forward(self, x: Tensor) -> Tensor:
        _, l_in, ab_in = network_inputs(x)
        l_map, ab_map = self.feature_maps(l_in, ab_in)
        return torch.cat([pooled(l_map), pooled(ab_map)], dim=1)


def lightness_bins(lightness: Tensor) -> Tensor:
    """Return the index (B, H, W) in 0..49 of the L bin (width 2) of ``lightness`` (B, 1, H, W)."""
    return (lightness[:, 0] / (100 / L_BINS)).floor().long().clamp(0, L_BINS - 1)


class SplitBrain(Method):
    """L -> ab and ab -> L on ``batch.views[0]``, by two disjoint encoders with a dense
    decoder each (``ab_decoder`` on the L encoder's map, ``l_decoder`` on the ab encoder's);
    the loss is the sum of the two directions'. z = h (identity head).

    Args:
        l_backbone: encoder of 1-channel images; ab_backbone: of 2-channel images (both with
            ``feature_map`` and ``downsampling``, e.g. ``backbones.ConvNet``).
        mode: "classification" (the paper's choice for both directions) or "regression".
        lam, sigma, k: ab rebalancing and soft encoding (``colorization.ABTargets``); lam=1: none.
        bin_reduction: the bin classifiers predict at 1 / bin_reduction of the input side.
    """

    def __init__(self, l_backbone: nn.Module, ab_backbone: nn.Module, mode: str = "classification",
                 lam: float = 1.0, sigma: float = 5.0, k: int = 5, bin_reduction: int = BIN_REDUCTION) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        super().__init__(SplitBrainEncoder(l_backbone, ab_backbone))
        self.mode = mode
        self.targets = ABTargets(lam, sigma, k) if mode == "classification" else None
        if self.targets is None:
            self.ab_decoder, self.l_decoder = dense_decoder(l_backbone, 2), dense_decoder(ab_backbone, 1)
        else:  # bin classifiers at half resolution, as colorization's
            self.ab_decoder = dense_decoder(l_backbone, len(self.targets.bins), bin_reduction)
            self.l_decoder = dense_decoder(ab_backbone, L_BINS, bin_reduction)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        lab, l_in, ab_in = network_inputs(x)
        l_map, ab_map = self.backbone.feature_maps(l_in, ab_in)
        z = self.projection_head(torch.cat([pooled(l_map), pooled(ab_map)], dim=1))  # = embed(x)
        if self.targets is None:
            ab_out = decode(self.ab_decoder, l_map, x.shape[-2:])  # L -> ab
            l_out = decode(self.l_decoder, ab_map, x.shape[-2:])  # ab -> L
            ab_loss, l_loss = ab_regression_loss(ab_out, ab_in), ab_regression_loss(l_out, l_in)
            accuracies = {}
        else:
            ab_out, l_out = self.ab_decoder(l_map), self.l_decoder(ab_map)  # L -> ab, ab -> L
            ab_loss, ab_accuracy = self.targets.loss(ab_out, lab[:, 1:])
            l_target = lightness_bins(at_size(lab[:, :1], l_out.shape[-2:]))
            l_loss = ab_classification_loss(l_out, F.one_hot(l_target, L_BINS).permute(0, 3, 1, 2).float())
            l_accuracy = (l_out.detach().argmax(1) == l_target).float().mean()
            accuracies = {"l_to_ab_accuracy": ab_accuracy, "ab_to_l_accuracy": l_accuracy,
                          "pretext_accuracy": (ab_accuracy + l_accuracy) / 2}
        return {"loss": ab_loss + l_loss, "l_to_ab_loss": ab_loss.detach(), "ab_to_l_loss": l_loss.detach(),
                **accuracies, **self.collapse_diagnostics(z)}


# The class defaults: classification both ways (the paper's), no rebalancing (see the module docstring).
# One mild view (crop and flip): colour jitter or greyscale would change the targets.
SPEC = MethodSpec(name="split_brain", method=SplitBrain, views=supervised_views, in_channels=(1, 2))
