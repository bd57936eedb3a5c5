"""Colorization as a pretext task (Zhang, Isola & Efros 2016, "Colorful image colorization"):
an encoder sees only the lightness L of an image and a dense decoder predicts its colour ab,
per pixel.

Course: :ref:`ch4b-colorization`. Two modes: "regression" (squared error
on ab: the prediction is the conditional mean, which desaturates) and "classification" (the
paper's: cross-entropy over the quantised ab bins with soft targets and class rebalancing;
pictures are decoded with the annealed mean). The networks see Lab scaled to about [-1, 1]:
L / 50 - 1 and ab / 110 (``color.lab_to_network``). The representation h is the encoder's
pooled feature of the L channel; ``encode`` takes RGB images and converts them inside.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones import ConvDecoder, resize_to
from ..color import (
    AB_SCALE,
    ab_bins,
    bins_to_ab,
    lab_to_network,
    lab_to_rgb,
    network_to_lab,
    rebalancing_weights,
    rgb_to_lab,
    soft_encode,
)
from ..data import Batch
from ..losses import ab_classification_loss, ab_regression_loss
from .base import Method, MethodSpec, feature_dim
from .supervised import supervised_views

MODES = ("regression", "classification")


def network_inputs(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return (Lab (B, 3, H, W), L / 50 - 1 (B, 1, H, W), ab / 110 (B, 2, H, W)) of RGB images
    ``x`` (B, 3, H, W) in [0, 1]."""
    # In float32 even under autocast: bfloat16 would round L to about 0.5 units.
    with torch.autocast(x.device.type, enabled=False):
        lab = rgb_to_lab(x.float())
    return (lab, *lab_to_network(lab))


def check_dense(net: nn.Module) -> nn.Module:
    """Return ``net`` if it gives a feature map (``feature_map`` and ``downsampling``, as
    ``backbones.ConvNet`` does); a clear error otherwise."""
    feature_dim(net)
    if not (hasattr(net, "feature_map") and hasattr(net, "downsampling")):
        raise TypeError(f"{type(net).__name__} has no feature_map/downsampling: dense pretext tasks need an encoder "
                        "that keeps a spatial map, such as backbones.ConvNet")
    return net


def dense_decoder(net: nn.Module, out_channels: int, reduction: int = 1) -> ConvDecoder:
    """Return a ``ConvDecoder`` from ``net``'s feature map to 1 / ``reduction`` of its input
    resolution (``reduction`` a power of two no larger than ``net.downsampling``)."""
    return ConvDecoder(net.feature_dim, out_channels, n_up=round(math.log2(net.downsampling / reduction)))


# Bin classifiers predict at half the input side and are scored against the targets averaged
# to that size: Zhang et al. (2016) predict at a quarter of it and upsample the colours, and
# the per-pixel work over Q = 261 logits falls with the number of predicted pixels
# (benchmarks/pretext_step.py times both settings).
BIN_REDUCTION = 2


def at_size(t: Tensor, size: tuple[int, int]) -> Tensor:
    """Return the map ``t`` (B, C, H, W) averaged over blocks to ``size`` (unchanged if equal)."""
    return t if t.shape[-2:] == size else F.adaptive_avg_pool2d(t, size)


def decode(decoder: nn.Module, feature_map: Tensor, size: tuple[int, int]) -> Tensor:
    """Return ``decoder(feature_map)`` (B, C, H, W) at the image ``size`` (H, W)."""
    return resize_to(decoder(feature_map), size)


def pooled(feature_map: Tensor) -> Tensor:
    """Return the global average (B, C) of a feature map (B, C, h, w): ConvNet's pooling."""
    return feature_map.mean(dim=(2, 3))


class LightnessEncoder(nn.Module):
    """An encoder of the L channel that takes RGB images: forward(x) returns the pooled
    features (B, feature_dim) of ``net`` on L / 50 - 1."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = check_dense(net)
        self.feature_dim = net.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        _, l_in, _ = network_inputs(x)
        return pooled(self.net.feature_map(l_in))


class ABTargets(nn.Module):
    """The ab classification of Zhang et al. 2016: the Q in-gamut bins (``color.ab_bins``),
    soft targets, and class rebalancing from a running count of the bins seen in training.

    The paper counts the bins over all of ImageNet before training; here ``bin_counts``
    accumulates the hard bins of every training batch (the empirical distribution so far), so
    the method needs no pass over the data first. In eval mode the counts are not updated.

    Args:
        lam: rebalancing mix with the uniform distribution (0.5: the paper; 1: no rebalancing).
        sigma: width of the Gaussians of the soft encoding and of the smoothing of p (5: the paper).
        k: bins per pixel in the soft encoding (5: the paper).
    """

    def __init__(self, lam: float = 0.5, sigma: float = 5.0, k: int = 5) -> None:
        super().__init__()
        self.register_buffer("bins", ab_bins())
        self.register_buffer("bin_counts", torch.zeros(len(self.bins)))
        self.lam, self.sigma, self.k = lam, sigma, k

    def loss(self, logits: Tensor, ab: Tensor) -> tuple[Tensor, Tensor]:
        """Return (the rebalanced cross-entropy, the accuracy of the nearest bin) of ``logits``
        (B, Q, h, w) against the true ``ab`` (B, 2, H, W) in Lab units, averaged over blocks to
        (h, w) when the logits are coarser (``BIN_REDUCTION``)."""
        with torch.no_grad():
            ab = at_size(ab, logits.shape[-2:])
            targets = soft_encode(ab, self.bins, self.k, self.sigma)  # (B, Q, H, W)
            nearest = targets.argmax(1)  # (B, H, W), the hard bins
            counts = torch.bincount(nearest.flatten(), minlength=len(self.bins)).to(self.bin_counts)
            if self.training:
                self.bin_counts += counts
                counts = self.bin_counts
            else:
                counts = self.bin_counts + counts
            weights = rebalancing_weights(counts, self.lam, self.sigma, self.bins)[nearest]  # (B, H, W)
            accuracy = (logits.argmax(1) == nearest).float().mean()
        return ab_classification_loss(logits, targets, weights), accuracy

    def to_ab(self, logits: Tensor, temperature: float = 0.38) -> Tensor:
        """Return the annealed-mean ab (B, 2, H, W), Lab units, of bin logits (B, Q, H, W)."""
        return bins_to_ab(logits.float().softmax(1), self.bins, temperature)


class Colorization(Method):
    """Predict the ab channels of ``batch.views[0]`` from its L channel.

    ``backbone`` is a ``LightnessEncoder`` around the given encoder of 1-channel images (which
    must keep a feature map: ``backbones.ConvNet``); ``decoder`` is a ``ConvDecoder`` from its
    map to 2 ab channels ("regression", in units of ab / 110) or to the Q bin logits
    ("classification"). z = h: the projection head is the identity (the decoder works on the
    map, not on the pooled feature).

    Args:
        backbone: encoder of 1-channel images with ``feature_map`` and ``downsampling``.
        mode: "classification" (the paper's) or "regression".
        lam, sigma, k: the classification's rebalancing and soft encoding (``ABTargets``).
        temperature: of the annealed mean in ``colorize`` (0.38: the paper).
        bin_reduction: the bin classifier predicts at 1 / bin_reduction of the input side.
    """

    def __init__(self, backbone: nn.Module, mode: str = "classification", lam: float = 0.5, sigma: float = 5.0,
                 k: int = 5, temperature: float = 0.38, bin_reduction: int = BIN_REDUCTION) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        super().__init__(LightnessEncoder(backbone))
        self.mode, self.temperature = mode, temperature
        self.targets = ABTargets(lam, sigma, k) if mode == "classification" else None
        self.decoder = (dense_decoder(backbone, 2) if self.targets is None
                        else dense_decoder(backbone, len(self.targets.bins), bin_reduction))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        lab, l_in, ab_scaled = network_inputs(x)
        feature_map = self.backbone.net.feature_map(l_in)
        z = self.projection_head(pooled(feature_map))  # = embed(x): the head is the identity
        if self.targets is None:
            loss = ab_regression_loss(decode(self.decoder, feature_map, x.shape[-2:]), ab_scaled)
            return {"loss": loss, "regression_loss": loss.detach(), **self.collapse_diagnostics(z)}
        loss, accuracy = self.targets.loss(self.decoder(feature_map), lab[:, 1:])
        return {"loss": loss, "classification_loss": loss.detach(), "pretext_accuracy": accuracy,
                **self.collapse_diagnostics(z)}

    @torch.no_grad()
    def colorize(self, x: Tensor) -> Tensor:
        """Return colour images (B, 3, H, W) in [0, 1]: the L of RGB images ``x`` (B, 3, H, W)
        with the predicted ab (the annealed mean in classification mode), in eval mode."""
        was_training = self.training
        self.eval()
        _, l_in, _ = network_inputs(x)
        feature_map = self.backbone.net.feature_map(l_in)
        if self.targets is None:
            ab_scaled = decode(self.decoder, feature_map, x.shape[-2:]).float()
        else:  # the annealed mean at the bins' resolution, upsampled as in the paper
            ab = self.targets.to_ab(self.decoder(feature_map).float(), self.temperature) / AB_SCALE
            ab_scaled = F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
        lab = network_to_lab(l_in, ab_scaled)
        self.train(was_training)
        return lab_to_rgb(lab).clamp(0, 1)


# The paper's settings are the class defaults (classification, lam 0.5, sigma 5, k 5, T 0.38).
# One mild view (crop and flip): colour jitter or greyscale would change the targets.
SPEC = MethodSpec(name="colorization", method=Colorization, views=supervised_views, in_channels=(1,))
