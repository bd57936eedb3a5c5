"""Context encoder (Pathak et al. 2016, Context Encoders: Feature Learning by Inpainting).

Course: :ref:`ch4b-inpainting`. The central region of each image is hidden (filled with
the batch's per-channel mean, a stand-in for the paper's dataset-mean fill); a convolutional
encoder reads the rest and a decoder paints the whole image back; the loss
(``losses.masked_reconstruction_loss``) reads the hidden region only. The paper's adversarial
term, which sharpens the paintings but matters little for the features, is left out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..backbones import ConvDecoder, resize_to
from ..data import Batch
from ..losses import masked_reconstruction_loss
from ..masking import center_mask
from .base import Method, MethodSpec, feature_dim
from .supervised import supervised_views


class ContextEncoder(Method):
    """Encoder (``backbone.feature_map``) -> ``ConvDecoder`` -> sigmoid, to RGB in [0, 1].

    z = h: the projection head is the identity (the pretext head, ``decoder``, reads the
    feature map, not the pooled feature). ``encode(x)`` pools the feature map of full,
    unmasked images.

    Args:
        backbone: an encoder with ``feature_map(x)`` and ``downsampling`` (``backbones.ConvNet``).
        hole_fraction: side of the hidden central square over the image's side (the paper:
            64 of 128 px, 0.5).
        context_weight: weight of the loss on the visible pixels (0: the hole only; the paper
            weighs only a thin border overlapping the context, by 10).
        out_channels: channels the decoder paints (3, RGB).
    """

    def __init__(self, backbone: nn.Module, hole_fraction: float = 0.5, context_weight: float = 0.0,
                 out_channels: int = 3) -> None:
        super().__init__(backbone)
        if not (hasattr(backbone, "feature_map") and hasattr(backbone, "downsampling")):
            raise TypeError(f"{type(backbone).__name__} has no feature_map/downsampling: the context encoder "
                            "decodes the backbone's spatial map (use backbones.ConvNet)")
        if not 0.0 < hole_fraction < 1.0:
            raise ValueError(f"hole_fraction must be in (0, 1), got {hole_fraction}")
        self.hole_fraction, self.context_weight = hole_fraction, context_weight
        n_up = int(round(math.log2(backbone.downsampling)))
        self.decoder = ConvDecoder(feature_dim(backbone), out_channels, n_up)

    def paint(self, x: Tensor) -> Tensor:
        """Return the decoder's image (B, out_channels, H, W) in [0, 1] from input images ``x``;
        resized to x's size where the encoder's pooling floored an odd side (20 px -> 2 x 2 -> 16 px)."""
        out = resize_to(self.decoder(self.backbone.feature_map(x)), x.shape[-2:])
        return torch.sigmoid(out)

    def mask_input(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (x with its central region filled with the batch's per-channel mean, the (H, W)
        bool mask, True = hidden)."""
        mask = center_mask(tuple(x.shape[-2:]), self.hole_fraction, device=x.device)
        fill = x.detach().mean(dim=(0, 2, 3), keepdim=True)
        return torch.where(mask, fill, x), mask

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.views[0]
        masked, mask = self.mask_input(x)
        loss = masked_reconstruction_loss(self.paint(masked), x, mask, self.context_weight)
        with torch.no_grad():  # z on the full image, as evaluation sees it
            z = self.embed(x)
        return {"loss": loss, **self.collapse_diagnostics(z)}

    @torch.no_grad()
    def inpaint(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (x with the painted centre pasted in (B, C, H, W), the (H, W) mask), for pictures."""
        masked, mask = self.mask_input(x)
        return torch.where(mask, self.paint(masked), x), mask


# The paper hides the central half of each side; one mild view (crop + flip).
SPEC = MethodSpec(name="inpainting", method=ContextEncoder, views=supervised_views)
