"""Image–text supervision: the text encoder, CLIP, the bag-of-words model and zero-shot
classification (chapter 2)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sslcourse import augment
from sslcourse.backbones import ConvNet
from sslcourse.data import Batch, DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.methods import CLIP, BagOfWords, build_method
from sslcourse.text import TextEncoder, Vocabulary, zero_shot_classifier, zero_shot_predict
from sslcourse.train import fit


def test_zero_shot_is_perfect_when_each_image_sits_near_its_class_prompt():
    vocab = Vocabulary()
    table = torch.nn.Embedding(len(vocab), 6)
    encode_text = lambda tokens: table(tokens).sum(1)  # noqa: E731 - a stand-in text tower
    prompts = [[f"a {name}"] for name in ["circle", "star", "cross"]]
    classes = zero_shot_classifier(encode_text, prompts, vocab)
    assert classes.shape == (3, 6)
    torch.testing.assert_close(classes.norm(dim=1), torch.ones(3))
    labels = torch.arange(3).repeat(10)
    images = 5 * classes[labels] + 0.05 * torch.randn(30, 6)
    assert torch.equal(zero_shot_predict(images, classes), labels)


def test_prompt_ensembling_averages_the_normalised_prompt_embeddings():
    vocab = Vocabulary()
    table = torch.nn.Embedding(len(vocab), 4)
    encode_text = lambda tokens: table(tokens).sum(1)  # noqa: E731
    prompts = ["a star", "a photo of a star"]
    expected = F.normalize(F.normalize(encode_text(vocab.encode(prompts)), dim=1).mean(0), dim=0)
    torch.testing.assert_close(zero_shot_classifier(encode_text, [prompts], vocab)[0], expected)


def test_text_features_ignore_padding_and_survive_an_empty_caption():
    vocab, encoder = Vocabulary(), TextEncoder(len(Vocabulary()), dim=16).eval()
    short, padded = vocab.encode(["a red star"]), vocab.encode(["a red star"], length=8)
    torch.testing.assert_close(encoder(short), encoder(padded), atol=1e-5, rtol=0)
    assert torch.isfinite(encoder(vocab.encode([""], length=4))).all()
    with pytest.raises(ValueError, match="max_len"):
        encoder(torch.ones(1, 40, dtype=torch.long))


def _caption_loader(n: int = 64, batch_size: int = 32) -> MultiViewLoader:
    data = make_shapes(n, 16, seed=0)
    tokens = Vocabulary().encode(data.captions)
    view = augment.ViewRecipe(size=16, crop_scale=(0.8, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0)
    return MultiViewLoader(DeviceLoader(data, batch_size, tokens=tokens), [view])


def test_the_loader_batches_each_image_with_its_own_caption():
    data = make_shapes(40, 16, seed=1)
    tokens = Vocabulary().encode(data.captions)
    loader = DeviceLoader(data, 8, tokens=tokens, shuffle=False)
    images, labels, batch_tokens = next(iter(loader))
    assert torch.equal(batch_tokens, tokens[:8]) and torch.equal(images, data.images[:8])
    with pytest.raises(ValueError, match="one caption per image"):
        DeviceLoader(data, 8, tokens=tokens[:5])


@pytest.mark.parametrize("name", ["clip", "bag_of_words"])
def test_image_text_methods_learn_their_captions_through_fit(name):
    torch.manual_seed(0)
    method = build_method(name, lambda c: ConvNet(width=8, depth=2, in_channels=c))
    history = fit(method, _caption_loader(), 40, lr=3e-3, device="cpu", progress=False)
    first, last = history[0]["loss"], sum(h["loss"] for h in history[-5:]) / 5
    assert math.isfinite(last) and last < 0.8 * first, (first, last)


def test_clip_starts_at_the_papers_temperature_and_clips_it():
    method = CLIP(ConvNet(width=4, depth=2))
    assert method.temperature().item() == pytest.approx(0.07)
    with torch.no_grad():
        method.log_inverse_temperature.fill_(10.0)
    assert method.temperature().item() == pytest.approx(0.01)


def test_bag_of_words_targets_mark_each_word_of_the_caption_once_and_never_padding():
    method, vocab = BagOfWords(ConvNet(width=4, depth=2)), Vocabulary()
    targets = method.word_targets(vocab.encode(["a red star on a red background"], length=10))
    words = {vocab.words[i] for i in targets[0].nonzero().flatten().tolist()}
    assert words == {"a", "red", "star", "on", "background"} and targets[0, 0] == 0


@pytest.mark.parametrize("cls", [CLIP, BagOfWords])
def test_image_text_methods_without_captions_say_what_they_need(cls):
    method = cls(ConvNet(width=4, depth=2))
    with pytest.raises(ValueError, match="tokens"):
        method.training_step(Batch(views=[torch.rand(4, 3, 16, 16)], labels=torch.zeros(4, dtype=torch.long)))


def test_clip_trains_through_train_and_evaluate_and_classifies_zero_shot_from_class_names():
    from sslcourse.data.shapes import SHAPE_NAMES
    from sslcourse.experiment import train_and_evaluate
    from sslcourse.profiles import get_profile
    from sslcourse.text import zero_shot_accuracy

    train, test = make_shapes(256, 16, seed=0), make_shapes(128, 16, seed=1)
    run = train_and_evaluate("clip", profile=get_profile("ci"), data=(train, test), steps=3, batch_size=32,
                             progress=False)
    assert run.history[-1]["step"] == 3 and "temperature" in run.history[-1]
    accuracy = zero_shot_accuracy(run.method, test.images, test.labels, [[f"a {s}"] for s in SHAPE_NAMES])
    assert 0.0 <= accuracy <= 1.0


def test_the_bag_of_words_model_classifies_zero_shot_by_the_logits_of_the_prompt_words():
    from sslcourse.data.shapes import SHAPE_NAMES
    from sslcourse.text import zero_shot_accuracy

    vocab = Vocabulary()
    method = BagOfWords(ConvNet(width=4, depth=2)).eval()
    with torch.no_grad():  # a classifier that predicts only the word "star", whatever the image
        method.projection_head.weight.zero_()
        method.projection_head.bias.fill_(-5.0)
        method.projection_head.bias[vocab.index["star"]] = 5.0
    images = make_shapes(32, 16, seed=2, classes=["star"]).images
    star = SHAPE_NAMES.index("star")
    assert zero_shot_accuracy(method, images, torch.full((32,), star), [[f"a {s}"] for s in SHAPE_NAMES]) == 1.0
