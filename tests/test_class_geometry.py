from __future__ import annotations

import functools

import pytest
import torch

from sslcourse.class_geometry import augmentation_identity_set, cdnv, class_mean_distances, within_class_variance


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clusters(seed: int = 0, dim: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Unequal classes with non-contiguous labels, around random centres."""
    g = gen(seed)
    labels = torch.tensor([3] * 7 + [10] * 12 + [-2] * 4 + [8] * 9)
    centres = {int(c): 3 * torch.randn(dim, generator=g, dtype=torch.float64) for c in labels.unique()}
    features = torch.stack([centres[int(c)] for c in labels])
    spread = torch.rand(len(labels), 1, generator=g, dtype=torch.float64) + 0.5
    return features + spread * torch.randn(features.shape, generator=g, dtype=torch.float64), labels


def naive(features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """(within-class variance, mean squared mean distance, CDNV) by plain loops over classes and pairs."""
    rows: dict[int, list[list[float]]] = {}
    for feature, label in zip(features.tolist(), labels.tolist(), strict=True):
        rows.setdefault(label, []).append(feature)
    means, variances = {}, {}
    for label, members in rows.items():
        mean = [sum(column) / len(members) for column in zip(*members, strict=True)]
        means[label] = mean
        variances[label] = sum(sum((v - m) ** 2 for v, m in zip(member, mean, strict=True))
                               for member in members) / len(members)
    distances, ratios = [], []
    for i in rows:
        for j in rows:
            if i != j:
                distance = sum((a - b) ** 2 for a, b in zip(means[i], means[j], strict=True))
                distances.append(distance)
                ratios.append((variances[i] + variances[j]) / (2 * distance))
    return sum(variances.values()) / len(variances), sum(distances) / len(distances), sum(ratios) / len(ratios)


def test_two_classes_on_a_line():
    # Class 0: {-1, 1} (mean 0, variance 1); class 1: {9, 11} (mean 10, variance 1).
    features = torch.tensor([[-1.0], [1.0], [9.0], [11.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert within_class_variance(features, labels) == pytest.approx(1.0)
    assert class_mean_distances(features, labels) == pytest.approx(100.0)
    assert cdnv(features, labels) == pytest.approx((1 + 1) / (2 * 100))


def test_matches_a_naive_loop_over_class_pairs():
    features, labels = clusters()
    variance, distance, ratio = naive(features, labels)
    assert within_class_variance(features, labels) == pytest.approx(variance, rel=1e-12)
    assert class_mean_distances(features, labels) == pytest.approx(distance, rel=1e-10)
    assert cdnv(features, labels) == pytest.approx(ratio, rel=1e-10)


def test_collapsed_classes_have_zero_cdnv():
    features, labels = clusters()
    means = {int(c): features[labels == c].mean(dim=0) for c in labels.unique()}
    collapsed = torch.stack([means[int(c)] for c in labels])
    assert within_class_variance(collapsed, labels) == pytest.approx(0.0, abs=1e-20)
    assert cdnv(collapsed, labels) == pytest.approx(0.0, abs=1e-20)
    assert class_mean_distances(collapsed, labels) == pytest.approx(class_mean_distances(features, labels))


def test_cdnv_is_invariant_to_scaling_rotation_and_translation():
    features, labels = clusters(seed=1)
    reference = cdnv(features, labels)
    rotation = torch.linalg.qr(torch.randn(5, 5, generator=gen(2), dtype=torch.float64)).Q
    shift = torch.randn(5, generator=gen(3), dtype=torch.float64)
    assert cdnv(37.5 * features, labels) == pytest.approx(reference, rel=1e-12)
    assert cdnv(features @ rotation.T, labels) == pytest.approx(reference, rel=1e-10)
    assert cdnv(features + 1e3 * shift, labels) == pytest.approx(reference, rel=1e-8)
    # Its parts scale with the square of the features.
    assert within_class_variance(3 * features, labels) == pytest.approx(9 * within_class_variance(features, labels))
    assert class_mean_distances(3 * features, labels) == pytest.approx(9 * class_mean_distances(features, labels))


def test_float32_features_and_label_order_do_not_matter():
    features, labels = clusters(seed=4)
    order = torch.randperm(len(labels), generator=gen(5))
    assert cdnv(features[order].float(), labels[order]) == pytest.approx(cdnv(features, labels), rel=1e-5)


def images(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=gen(seed))


def test_identity_augmentation_set_has_k_classes_of_a_members_from_their_source():
    source = images()
    views, labels = augmentation_identity_set(source, n_images=4, n_augmentations=3, augment=lambda x: x)
    assert views.shape == (12, 3, 8, 8) and labels.dtype == torch.int64
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    torch.testing.assert_close(views, source[labels], rtol=0, atol=0)


def test_random_sources_and_random_views():
    source = images(n=20)
    noise_generator = gen(7)

    def jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return (x + 0.01 * torch.randn(x.shape, generator=generator)).clamp(0, 1)

    augment = functools.partial(jitter, generator=noise_generator)
    views, labels = augmentation_identity_set(source, 5, 4, augment, generator=gen(1))
    counts = torch.unique(labels, return_counts=True)
    assert len(counts[0]) == 5 and counts[1].tolist() == [4] * 5
    assert labels.tolist() == sorted(labels.tolist()) and labels.unique().tolist() != [0, 1, 2, 3, 4]
    again, labels_again = augmentation_identity_set(source, 5, 4, augment, generator=gen(1))
    assert labels_again.tolist() == labels.tolist()
    assert not torch.equal(again, views)  # the bound generator has moved on: new views
    # Each view stays near its own source, and views of one source differ from each other.
    distances = torch.cdist(views.flatten(1), source.flatten(1))
    assert distances.argmin(dim=1).tolist() == labels.tolist()
    assert not torch.equal(views[0], views[1])
    # Views of a source cluster tightly around it: a small CDNV on the pixels.
    assert cdnv(views.flatten(1), labels) < 0.01


def test_augment_may_change_the_image_size():
    views, labels = augmentation_identity_set(images(), 2, 5, lambda x: x[:, :, :4, :4])
    assert views.shape == (10, 3, 4, 4) and len(labels) == 10


def test_bad_input():
    features, labels = clusters()
    with pytest.raises(ValueError, match=r"\(n, D\)"):
        cdnv(features[:, 0], labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        cdnv(features, labels[:-1])
    with pytest.raises(ValueError, match="integer"):
        cdnv(features, labels.double())
    with pytest.raises(ValueError, match="floating"):
        cdnv(features.long(), labels)
    with pytest.raises(ValueError, match="finite"):
        within_class_variance(torch.full((3, 2), float("inf")), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2"):
        cdnv(features, torch.zeros_like(labels))
    with pytest.raises(ValueError, match="at least 2"):
        class_mean_distances(features, torch.zeros_like(labels))
    assert within_class_variance(features, torch.zeros_like(labels)) > 0  # one class is fine here
    with pytest.raises(ValueError, match="same mean"):
        cdnv(torch.tensor([[-1.0], [1.0], [-2.0], [2.0]]), torch.tensor([0, 0, 1, 1]))

    source = images()
    identity = lambda x: x
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augmentation_identity_set(source[0], 2, 2, identity)
    with pytest.raises(ValueError, match="float"):
        augmentation_identity_set((source * 255).to(torch.uint8), 2, 2, identity)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augmentation_identity_set(source * 2, 2, 2, identity)
    with pytest.raises(ValueError, match="n_images"):
        augmentation_identity_set(source, 7, 2, identity)
    with pytest.raises(ValueError, match="n_images"):
        augmentation_identity_set(source, 0, 2, identity)
    with pytest.raises(ValueError, match="n_augmentations"):
        augmentation_identity_set(source, 2, 0, identity)
    with pytest.raises(ValueError, match="callable"):
        augmentation_identity_set(source, 2, 2, "flip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(4, C, H, W\)"):
        augmentation_identity_set(source, 2, 2, lambda x: x[:1])
