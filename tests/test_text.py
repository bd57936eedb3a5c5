"""The shapes captions' vocabulary, tokenizer and caption noise (sslcourse.text)."""

import pytest
import torch

from sslcourse.data import make_shapes
from sslcourse.text import WORD_KINDS, Vocabulary, noisy_captions


def test_every_shapes_caption_round_trips_through_the_tokenizer():
    captions = make_shapes(300, 16, seed=5).captions
    vocab = Vocabulary()
    ids = vocab.encode(captions)
    assert ids.dtype == torch.long and ids.shape[0] == 300
    assert vocab.decode(ids) == captions


def test_short_captions_are_padded_with_the_pad_id_to_the_requested_length():
    ids = Vocabulary().encode(["a star", "a red star"], length=5)
    assert ids.shape == (2, 5) and (ids[0, 2:] == 0).all() and (ids[1, 3:] == 0).all() and (ids[:, :2] > 0).all()


def test_an_unknown_word_is_an_error_that_lists_the_vocabulary():
    with pytest.raises(ValueError, match=r"unknown words \['hexagon'\].*circle"):
        Vocabulary().encode(["a red hexagon"])


def test_a_caption_longer_than_the_length_is_an_error():
    with pytest.raises(ValueError, match="more than length=2"):
        Vocabulary().encode(["a red star"], length=2)


def test_noise_free_captions_are_unchanged_and_full_drop_empties_them():
    captions = make_shapes(20, 16, seed=1).captions
    assert noisy_captions(captions) == captions
    assert noisy_captions(captions, drop=1.0) == [""] * 20


def test_swaps_exchange_factor_words_for_others_of_their_kind_at_the_given_rate():
    captions = make_shapes(400, 16, seed=2).captions
    swapped = noisy_captions(captions, swap=0.5, seed=3)
    changed = total = 0
    for before, after in zip(captions, swapped, strict=True):
        for a, b in zip(before.split(), after.split(), strict=True):
            kind = next((k for k, words in WORD_KINDS.items() if a in words), None)
            if kind is None:
                assert a == b  # function words are never swapped
                continue
            total += 1
            changed += a != b
            assert b in WORD_KINDS[kind]
    assert 0.45 < changed / total < 0.55
    assert noisy_captions(captions, swap=0.5, seed=3) == swapped  # the seed fixes the noise


def test_noise_rates_outside_zero_one_are_rejected():
    with pytest.raises(ValueError, match="probabilities"):
        noisy_captions(["a star"], drop=1.5)
