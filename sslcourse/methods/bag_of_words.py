"""Predicting a caption's bag of words (Li et al. 2017, "Learning visual n-grams from web
data"; Joulin et al. 2016): the simplest image–text supervision, and CLIP's baseline in its
efficiency comparison (Radford et al. 2021, fig. 2).

The model predicts which vocabulary words an image's caption contains (multi-label logistic
regression on ``batch.tokens``). It classifies zero-shot too, by how strongly an image predicts
the words of each class prompt (``text.zero_shot_classifier``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch
from ..text import Vocabulary
from .base import Method, MethodSpec, feature_dim
from .clip import caption_tokens, image_text_views


class BagOfWords(Method):
    """Predict the set of words of each image's caption: one logistic output per vocabulary
    word (padding excluded), binary cross-entropy against the caption's words.

    Its ``projection_head`` is the linear word classifier, so ``embed`` gives word logits;
    ``embed_text`` gives a prompt's words over the same vocabulary, so ``text.zero_shot_classifier``
    works for it as for CLIP (a class scores by how strongly the image predicts the prompt's words).
    """

    def __init__(self, backbone: nn.Module, vocab_size: int | None = None) -> None:
        self.vocab_size = vocab_size or len(Vocabulary())
        super().__init__(backbone, nn.Linear(feature_dim(backbone), self.vocab_size))

    def word_targets(self, tokens: Tensor) -> Tensor:
        """Return (B, vocab_size) 0/1 targets: 1 where the word occurs in the caption (never padding)."""
        targets = torch.zeros(len(tokens), self.vocab_size, device=tokens.device)
        targets.scatter_(1, tokens, 1.0)
        targets[:, 0] = 0.0
        return targets

    def embed_text(self, tokens: Tensor) -> Tensor:
        """Return (B, vocab_size): each caption's words, as 0/1 over the vocabulary. Its dot product
        with the image's word logits (``embed``) sums the logits of the caption's words, so the
        class whose prompt words the image predicts most strongly wins a zero-shot vote."""
        return self.word_targets(tokens)

    def training_step(self, batch: Batch) -> dict[str, Tensor]:
        logits = self.embed(batch.views[0])
        targets = self.word_targets(caption_tokens(batch, "BagOfWords"))
        loss = F.binary_cross_entropy_with_logits(logits[:, 1:], targets[:, 1:])
        return {"loss": loss, **self.collapse_diagnostics(logits)}



SPEC = MethodSpec(name="bag_of_words", method=BagOfWords, views=image_text_views, inputs="image-text")
