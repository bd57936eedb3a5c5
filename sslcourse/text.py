"""Captions as tokens: the shapes dataset's fixed vocabulary, a tokenizer and caption noise.

The shapes captions ("a small red star at the top left on a striped gray background") use a
closed set of words: the factor names of ``sslcourse.data.shapes`` and a few function words.
A vocabulary built from those names is therefore complete, and a word outside it is an error,
not a silent ``<unk>``: a typo in a prompt ("a {shape}" with a misspelt shape) must not pass
unnoticed. Image–text models (chapter 2) read the token ids; the noisy variants (words dropped or
swapped at a given rate) make weak supervision a dial.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data.shapes import COLOR_NAMES, SHAPE_NAMES, TEXTURE_NAMES

PAD = "<pad>"
SIZE_WORDS = ["small", "medium", "large"]
PLACE_WORDS = ["top", "bottom", "left", "right", "center"]
FUNCTION_WORDS = ["a", "at", "the", "on", "background", "photo", "of", "shape"]
# Words a swap may exchange: each for another of its own kind (a colour for a colour, ...), so
# a swapped caption stays a well-formed description of a different image.
WORD_KINDS = {"shape": SHAPE_NAMES, "color": COLOR_NAMES, "texture": TEXTURE_NAMES, "size": SIZE_WORDS}


class Vocabulary:
    """Fixed word list with id 0 for padding; ``encode``/``decode`` convert captions to ids.

    Args:
        words: the vocabulary (default: every word the shapes captions and prompts use).
    """

    def __init__(self, words: list[str] | None = None) -> None:
        if words is None:
            words = FUNCTION_WORDS + SIZE_WORDS + PLACE_WORDS + SHAPE_NAMES + COLOR_NAMES + TEXTURE_NAMES
        words = list(dict.fromkeys(words))  # "gray" is a colour and a word once
        if PAD in words:
            raise ValueError(f"{PAD!r} is reserved for padding")
        self.words = [PAD, *words]
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return 0

    def encode(self, captions: list[str], length: int | None = None) -> Tensor:
        """Return token ids (N, L) of ``captions``, padded with ``pad_id`` to ``length`` (default:
        the longest caption). Raises ValueError for a word outside the vocabulary or a caption
        longer than ``length``."""
        split = [c.split() for c in captions]
        length = max((len(s) for s in split), default=0) if length is None else length
        ids = torch.full((len(captions), length), self.pad_id, dtype=torch.long)
        for row, words in enumerate(split):
            unknown = [w for w in words if w not in self.index]
            if unknown:
                raise ValueError(f"unknown words {unknown} in caption {captions[row]!r}; "
                                 f"the vocabulary has {len(self) - 1} words: {', '.join(self.words[1:])}")
            if len(words) > length:
                raise ValueError(f"caption {captions[row]!r} has {len(words)} words, more than length={length}")
            ids[row, : len(words)] = torch.tensor([self.index[w] for w in words], dtype=torch.long)
        return ids

    def decode(self, ids: Tensor) -> list[str]:
        """Return the captions of token ids (N, L), padding removed."""
        return [" ".join(self.words[i] for i in row.tolist() if i != self.pad_id) for row in ids]


def noisy_captions(captions: list[str], drop: float = 0.0, swap: float = 0.0, seed: int = 0) -> list[str]:
    """Return ``captions`` with each word dropped with probability ``drop`` and each factor word
    (shape, colour, texture, size) that is kept swapped for another of its kind with probability
    ``swap``. The same seed gives the same noise (chapter 2: weak supervision)."""
    if not (0 <= drop <= 1 and 0 <= swap <= 1):
        raise ValueError(f"drop and swap are probabilities in [0, 1]; got drop={drop}, swap={swap}")
    kind_of = {w: kind for kind, words in WORD_KINDS.items() for w in words}
    gen = torch.Generator().manual_seed(seed)
    out = []
    for caption in captions:
        words = []
        for word in caption.split():
            if torch.rand((), generator=gen) < drop:
                continue
            if word in kind_of and torch.rand((), generator=gen) < swap:
                others = [w for w in WORD_KINDS[kind_of[word]] if w != word]
                word = others[int(torch.randint(len(others), (), generator=gen))]
            words.append(word)
        out.append(" ".join(words))
    return out
