from __future__ import annotations

import pytest
import torch

from sslcourse.backbones import ConvNet
from sslcourse.data import make_shapes
from sslcourse.evaluate import extract_features, knn_accuracy, linear_probe, linear_probe_sgd, ncc_accuracy, raw_pixels


def blobs(n_per_class: int = 50, dim: int = 10, spread: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, dim, generator=gen) * 3
    y = torch.arange(4).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=gen)
    return x, y


def test_knn_and_ncc_are_perfect_on_separated_clusters():
    x, y = blobs()
    xt, yt = blobs(seed=1)
    xt = xt - blobs(seed=1)[0] + blobs(seed=0)[0]  # same centres as training
    assert knn_accuracy(x, y, xt, yt) == 1.0
    assert ncc_accuracy(x, y, xt, yt) == 1.0


def test_knn_with_k1_returns_the_nearest_label():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert knn_accuracy(train, torch.tensor([0, 1]), torch.tensor([[0.9, 0.1]]), torch.tensor([0]), k=1) == 1.0


def test_linear_probe_solves_a_linear_problem_and_sweeps_warm():
    x, y = blobs(spread=1.0)
    result = linear_probe(x, y, x, y)
    assert result.accuracy > 0.95
    assert [l2 for l2, _ in result.sweep] == sorted([l2 for l2, _ in result.sweep], reverse=True)


def test_sgd_probe_agrees_with_lbfgs_on_easy_data():
    x, y = blobs(spread=1.0)
    assert abs(linear_probe_sgd(x, y, x, y, epochs=20) - linear_probe(x, y, x, y).accuracy) < 0.05


def test_extract_features_uses_inference_mode_and_restores_it():
    net = ConvNet(width=4, depth=2)
    data = make_shapes(10, 8, captions=False)
    net.train()
    f1 = extract_features(net, data)
    f2 = extract_features(net, data.images[:5])
    assert f1.shape == (10, 8) and torch.allclose(f1[:5], f2, atol=1e-6) and net.training


def test_raw_pixels_flatten_to_unit_range():
    data = make_shapes(3, 8, captions=False)
    x = raw_pixels(data)
    assert x.shape == (3, 192) and 0 <= x.min() and x.max() <= 1


def test_mismatched_features_and_labels_are_rejected():
    with pytest.raises(ValueError, match="labels"):
        knn_accuracy(torch.randn(5, 2), torch.zeros(4, dtype=torch.long), torch.randn(2, 2),
                     torch.zeros(2, dtype=torch.long))
