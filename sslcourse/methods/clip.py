"""Image–text supervision with CLIP (Radford et al. 2021).

CLIP reads ``batch.tokens``, the token ids of each image's caption (``sslcourse.text``), embeds
image and caption in one space and trains with the symmetric InfoNCE of chapter 5
(``losses.clip_loss``); a class is then recognised *zero-shot* by the caption that fits it best
(``text.zero_shot_classifier``). Its simpler predecessor is ``methods.bag_of_words``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import augment
from ..data import Batch
from ..losses import clip_loss
from ..text import TextEncoder, Vocabulary
from .base import Method, MethodSpec, feature_dim


def caption_tokens(batch: Batch, method: str) -> Tensor:
    """Return ``batch.tokens``; a clear error when the batches carry no captions."""
    if batch.tokens is None:
        raise ValueError(f"{method} trains on captions: give it batches with tokens (Batch.tokens, "
                         "e.g. DeviceLoader(..., tokens=text.Vocabulary().encode(data.captions)))")
    return batch.tokens


class CLIP(Method):
    """Two towers, an image encoder and a text encoder, each with a linear projection into one
    ``embed_dim`` space; the loss is ``clip_loss`` at a learned temperature.

    Args:
        backbone: the image encoder.
        vocab_size: size of the caption vocabulary (default: ``text.Vocabulary()``'s).
        embed_dim: the shared embedding's dimension.
        temperature: initial temperature, 0.07 (the paper's); learned as log(1/temperature),
            clipped so that 1/temperature stays at most 100 (the paper's clip).
        text_dim, text_depth: width and layers of the text transformer.
    """

    def __init__(self, backbone: nn.Module, vocab_size: int | None = None, embed_dim: int = 128,
                 temperature: float = 0.07, text_dim: int = 64, text_depth: int = 1) -> None:
        super().__init__(backbone, nn.Linear(feature_dim(backbone), embed_dim, bias=False))
        self.text_encoder = TextEncoder(vocab_size or len(Vocabulary()), text_dim, text_depth)
        self.text_projection = nn.Linear(text_dim, embed_dim, bias=False)
        self.log_inverse_temperature = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def temperature(self) -> Tensor:
        """Return the current temperature, 1 / exp(log_inverse_temperature) with the clip."""
        return self.log_inverse_temperature.clamp(max=math.log(100)).neg().exp()

    def embed_text(self, tokens: Tensor) -> Tensor:
        """Return the caption embeddings (B, embed_dim) of token ids (B, L)."""
        return self.text_projection(self.text_encoder(tokens))

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        image = self.embed(batch.views[0])
        text = self.embed_text(caption_tokens(batch, "CLIP"))
        loss = clip_loss(image, text, self.temperature())
        return {"loss": loss, "temperature": self.temperature().detach(), **self.collapse_diagnostics(image)}


def image_text_views(dataset: str, size: int) -> list[augment.ViewRecipe]:
    """One mild view: a crop of at least 80% of the image, no flip, no colour change. The caption
    names the colour, the size and the side of the image the shape is on, so a view that
    changed them would contradict its caption (CLIP itself trains on a random square crop)."""
    return [augment.ViewRecipe(size=size, crop_scale=(0.8, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0)]


SPEC = MethodSpec(name="clip", method=CLIP, views=image_text_views, inputs="image-text")
