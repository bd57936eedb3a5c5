from __future__ import annotations

import pytest
import torch

from sslcourse.backbones import ConvNet
from sslcourse.data import make_shapes
from sslcourse.evaluate import extract_features, knn_accuracy, linear_probe, linear_probe_sgd, ncc_accuracy, raw_pixels


def blobs(n_per_class: int = 50, dim: int = 10, spread: float = 0.3, centre_seed: int = 0, sample_seed: int = 0):
    """Points of four Gaussian clusters: ``centre_seed`` places the centres, ``sample_seed`` draws
    the points, so two sample seeds give independent samples of the same clusters."""
    centres = torch.randn(4, dim, generator=torch.Generator().manual_seed(centre_seed)) * 3
    noise = torch.Generator().manual_seed(1000 + sample_seed)  # a stream of its own, not the centres'
    y = torch.arange(4).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=noise)
    return x, y


@pytest.mark.parametrize("classifier", [knn_accuracy, ncc_accuracy])
def test_knn_and_ncc_are_perfect_on_fresh_samples_of_separated_clusters(classifier):
    x, y = blobs(sample_seed=0)
    xt, yt = blobs(n_per_class=20, sample_seed=1)  # same clusters, new points
    assert torch.cdist(xt, x).min() > 0.1  # no test point repeats a training point
    assert classifier(x, y, xt, yt) == 1.0


def test_knn_with_k1_returns_the_nearest_label():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert knn_accuracy(train, torch.tensor([0, 1]), torch.tensor([[0.9, 0.1]]), torch.tensor([0]), k=1) == 1.0


def test_knn_votes_stay_finite_at_a_tiny_temperature():
    # Two neighbours of class 0 at similarity ~0.99 against one of class 1 at exactly 1: at
    # T = 0.001, exp(s / T) overflows float32 and every class would tie at inf.
    train = torch.tensor([[1.0, 0.0], [1.0, 0.14], [1.0, -0.14]])
    labels, query = torch.tensor([1, 0, 0]), torch.tensor([[1.0, 0.0]])
    assert knn_accuracy(train, labels, query, torch.tensor([1]), k=3, temperature=1e-3) == 1.0
    assert knn_accuracy(train, labels, query, torch.tensor([0]), k=3, temperature=10.0) == 1.0  # near-equal votes


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
