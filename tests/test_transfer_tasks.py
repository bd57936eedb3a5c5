"""Chapter 2's package parts: class separation, label noise, resizing, the transfer tasks and runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sslcourse import transfer
from sslcourse.analysis import class_separation
from sslcourse.backbones import build_backbone
from sslcourse.data import make_shapes
from sslcourse.data.shapes import COLOR_NAMES, DOMAIN_SHIFTS, SHIFT_SOURCE, TEXTURE_NAMES
from sslcourse.data.tasks import SOURCE_CLASSES, TARGET_CLASSES, TARGETS, source_task, target_task
from sslcourse.methods import Supervised
from sslcourse.profiles import get_profile


def naive_separation(features, labels):
    """Eq. of Kornblith et al. 2021 with explicit loops over the pairs of images."""
    unit = [f / f.norm() for f in features.double()]
    classes = labels.unique().tolist()
    mean_distance = {}
    for j in classes:
        for k in classes:
            members_j = [i for i in range(len(labels)) if labels[i] == j]
            members_k = [i for i in range(len(labels)) if labels[i] == k]
            total = sum(1 - float(unit[m] @ unit[n]) for m in members_j for n in members_k)
            mean_distance[j, k] = total / (len(members_j) * len(members_k))
    within = sum(mean_distance[k, k] for k in classes) / len(classes)
    overall = sum(mean_distance.values()) / len(classes) ** 2
    return 1 - within / overall


def test_class_separation_matches_the_pairwise_definition_with_unequal_classes():
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0] * 3 + [1] * 7 + [2] * 5)
    features = torch.randn(15, 4, generator=gen) + torch.randn(3, 4, generator=gen)[labels]
    assert class_separation(features, labels) == pytest.approx(naive_separation(features, labels), abs=1e-10)


def test_class_separation_is_one_for_classes_on_single_directions_and_near_zero_without_classes():
    directions = torch.eye(3)
    labels = torch.arange(3).repeat(10)
    scales = torch.rand(30, 1) + 0.5  # the norm of a feature does not matter, only its direction
    assert class_separation(directions[labels] * scales, labels) == pytest.approx(1.0)
    gen = torch.Generator().manual_seed(1)
    random_labels = torch.randint(0, 4, (4000,), generator=gen)
    assert abs(class_separation(torch.randn(4000, 8, generator=gen), random_labels)) < 0.01


def test_class_separation_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"features must be \(N, D\)"):
        class_separation(torch.randn(5, 3), torch.zeros(4, dtype=torch.long))


def test_label_noise_flips_the_asked_fraction_always_to_another_class_and_keeps_the_images():
    data = make_shapes(4000, 8, seed=0)
    noisy = data.with_label_noise(0.3, seed=0)
    flipped = noisy.labels != data.labels
    assert abs(flipped.float().mean().item() - 0.3) < 0.03
    assert torch.equal(noisy.images, data.images)
    wrong_classes = noisy.labels[flipped]
    assert len(wrong_classes.unique()) == data.num_classes  # every class receives wrong labels
    assert torch.equal(data.with_label_noise(0.0).labels, data.labels)
    assert (data.with_label_noise(1.0).labels != data.labels).all()  # flipped labels are never the true class
    assert torch.equal(data.with_label_noise(0.3, seed=0).labels, noisy.labels)  # same seed, same noise
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        data.with_label_noise(1.5)


def test_resized_keeps_a_constant_image_constant_and_changes_only_the_size():
    data = make_shapes(4, 8, seed=0)
    data.images[:] = 77
    bigger = data.resized(20)
    assert bigger.images.shape == (4, 3, 20, 20) and bigger.images.dtype == torch.uint8
    assert (bigger.images == 77).all() and torch.equal(bigger.labels, data.labels)


def test_source_and_target_tasks_have_disjoint_classes_and_the_shifted_ranges():
    train, test = source_task(200, 50, 12)
    assert train.class_names == SOURCE_CLASSES and not set(SOURCE_CLASSES) & set(TARGET_CLASSES)
    source_colours = {COLOR_NAMES.index(c) for c in SHIFT_SOURCE["colors"]}
    assert set(train.factors["color"].tolist()) <= source_colours
    assert not set(train.images.flatten(1).sum(1).tolist()) & set(test.images.flatten(1).sum(1).tolist())
    for name in TARGETS[:-1]:
        target, _ = target_task(name, 200, 20, 12)
        assert target.class_names == TARGET_CLASSES, name
        colours = DOMAIN_SHIFTS[name].get("colors", SHIFT_SOURCE["colors"])
        textures = DOMAIN_SHIFTS[name].get("textures", SHIFT_SOURCE["textures"])
        assert set(target.factors["color"].tolist()) <= {COLOR_NAMES.index(c) for c in colours}, name
        assert set(target.factors["texture"].tolist()) <= {TEXTURE_NAMES.index(t) for t in textures}, name
    digits, digits_test = target_task("digits", 100, 2000, 12)
    assert digits.images.shape[1:] == (3, 12, 12) and len(digits) == 100 and len(digits_test) == 539
    with pytest.raises(ValueError, match="valid names: no shift"):
        target_task("sketches", 10, 10, 12)


def test_classifier_accuracy_evaluates_in_eval_mode_and_restores_training_mode():
    data = make_shapes(64, 12, seed=0, classes=SOURCE_CLASSES)
    method = Supervised(build_backbone("convnet", width=4), 4, dropout=0.9)
    method.train()
    first = transfer.classifier_accuracy(method, data)
    assert transfer.classifier_accuracy(method, data) == first  # no dropout: the same answer twice
    assert method.training


def test_pretrain_and_transfer_learns_a_source_and_transfers_better_than_random_weights():
    profile = dataclasses.replace(get_profile("ci"), image_size=20, batch_size=64, width=8)
    source = source_task(1000, 200, 20)
    targets = {"no shift": target_task("no shift", 300, 300, 20)}
    _, trained = transfer.pretrain_and_transfer(source, targets, profile, steps=200)
    torch.manual_seed(0)
    untrained = Supervised(build_backbone("convnet", width=8), 4)
    assert trained["source"] > 0.5 > transfer.classifier_accuracy(untrained, source[1])  # chance: 0.25
    assert trained["no shift"] > transfer.probe_accuracy(untrained.backbone, *targets["no shift"]) + 0.05
    assert set(trained) == {"source", "separation", "no shift"}


def test_every_tradeoff_variant_builds_and_takes_a_step():
    profile = dataclasses.replace(get_profile("ci"), image_size=12, batch_size=16, width=4)
    source = source_task(32, 16, 12)
    for name, options in transfer.TRADEOFFS.items():
        method, row = transfer.pretrain_and_transfer(source, {}, profile, steps=1, **options)
        assert 0 <= row["source"] <= 1, name


def test_seed_spread_is_twice_the_std_of_a_difference_of_two_runs_and_needs_two_seeds():
    record = {"targets": ["a", "b"], "runs": {"cross-entropy": {
        "0": {"a": 0.5, "b": 0.7}, "1": {"a": 0.6, "b": 0.7}, "2": {"a": 0.7, "b": 0.7}}}}
    one_target, mean_over_targets = transfer.seed_spread(record)
    # target a: std 0.1, target b: std 0 -> mean 0.05; the means over targets 0.6, 0.65, 0.7: std 0.05
    assert one_target == pytest.approx(2 * 2 ** 0.5 * 0.05)
    assert mean_over_targets == pytest.approx(2 * 2 ** 0.5 * 0.05)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        transfer.seed_spread({"targets": ["a"], "runs": {"cross-entropy": {"0": {"a": 0.5}}}})


def test_tradeoff_record_falls_back_to_the_ci_record():
    assert transfer.tradeoff_record("ci")["profile"] == "ci"
    assert transfer.tradeoff_record("full")["profile"] in {"full", "ci"}  # no full record: the ci one


def test_fine_tune_without_flip_never_mirrors_its_training_views(monkeypatch):
    import sslcourse.transfer as module

    recipes = []
    real = module.MultiViewLoader

    def recording(loader, views):
        recipes.extend(views)
        return real(loader, views)

    monkeypatch.setattr(module, "MultiViewLoader", recording)
    data = make_shapes(32, 12, seed=0, classes=SOURCE_CLASSES)
    backbone = build_backbone("convnet", width=4)
    transfer.fine_tune(backbone, data, data, steps=1, batch_size=8, flip=False)
    transfer.fine_tune(backbone, data, data, steps=1, batch_size=8)
    assert [r.flip_p for r in recipes] == [0.0, 0.5]
