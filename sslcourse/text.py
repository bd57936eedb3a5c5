"""Captions as tokens: the shapes dataset's fixed vocabulary, a tokenizer and caption noise.

The shapes captions ("a small red star at the top left on a striped gray background") use a
closed set of words: the factor names of ``sslcourse.data.shapes`` and a few function words.
A vocabulary built from those names is therefore complete, and a word outside it is an error,
not a silent ``<unk>``: a typo in a prompt ("a {shape}" with a misspelt shape) must not pass
unnoticed. Image–text models (chapter 2) read the token ids; the noisy variants (words dropped or
swapped at a given rate) make weak supervision a dial.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


class TextEncoder(nn.Module):
    """Token ids (B, L) -> text features (B, ``feature_dim``): word embeddings plus learned
    positions, ``depth`` pre-norm transformer layers, then the mean over the non-padding tokens.

    Small on purpose: the shapes captions have at most 13 words from a closed vocabulary.
    A caption left empty by noise still gets a feature (its first position is kept)."""

    def __init__(self, vocab_size: int, dim: int = 64, depth: int = 1, heads: int = 4, max_len: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.position = nn.Parameter(0.02 * torch.randn(max_len, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.feature_dim, self.max_len = dim, max_len

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"captions of {tokens.shape[1]} tokens exceed max_len={self.max_len}")
        pad = tokens == 0
        pad[:, 0] &= ~pad.all(dim=1)  # an all-padding row would leave attention nothing to attend to
        x = self.layers(self.embedding(tokens) + self.position[: tokens.shape[1]], src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.norm((x * keep).sum(1) / keep.sum(1))


def zero_shot_classifier(encode_text: Callable[[Tensor], Tensor], class_prompts: list[list[str]],
                         vocabulary: Vocabulary | None = None) -> Tensor:
    """Return unit class embeddings (K, D) for zero-shot classification: each class's prompts
    (e.g. ``[["a circle", "a photo of a circle"], ...]``) encoded by ``encode_text`` (token ids
    -> embeddings), normalised, averaged and renormalised (CLIP's prompt ensembling, Radford et
    al. 2021, sec. 3.1.4). Predict with ``zero_shot_predict``."""
    vocabulary = vocabulary or Vocabulary()
    with torch.no_grad():
        classes = [F.normalize(encode_text(vocabulary.encode(prompts)), dim=1).mean(0) for prompts in class_prompts]
    return F.normalize(torch.stack(classes), dim=1)


def zero_shot_predict(image_embeddings: Tensor, class_embeddings: Tensor) -> Tensor:
    """Return the class (N,) whose embedding (K, D) has the largest cosine with each image's (N, D)."""
    return (F.normalize(image_embeddings, dim=1) @ class_embeddings.T).argmax(dim=1)


def zero_shot_accuracy(method: nn.Module, images: Tensor, labels: Tensor, class_prompts: list[list[str]],
                       batch_size: int = 512) -> float:
    """Return the accuracy of classifying uint8 ``images`` (N, C, H, W) by the class whose
    prompts an image–text ``method`` (``embed`` for images, ``embed_text`` for token ids) finds
    most similar; ``class_prompts[k]`` are class k's prompts. No label is used for training."""
    from .evaluate import extract_features  # batches, device, eval mode (a method's embed, not encode)

    device = next(method.parameters()).device
    was_training = method.training
    method.eval()
    with torch.no_grad():
        classes = zero_shot_classifier(lambda t: method.embed_text(t.to(device)), class_prompts).cpu()
    image_embeddings = extract_features(method.embed, images, batch_size, device)
    method.train(was_training)
    return (zero_shot_predict(image_embeddings, classes) == labels.cpu()).float().mean().item()
