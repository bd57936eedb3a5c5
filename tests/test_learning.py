"""Learning test: in the ci profile SimCLR features beat random weights and raw pixels.

The chapter-0 notebook shows the full margin (about 20 points); this test asserts a smaller
one so that it is stable across machines and seeds.
"""

from __future__ import annotations

from sslcourse import experiment
from sslcourse.profiles import get_profile
from sslcourse.train import seed_everything


def test_simclr_beats_random_features_and_raw_pixels_on_shapes():
    profile = get_profile("ci")
    train, test = experiment.load_profile_data("shapes", profile)
    seed_everything(0)
    random_knn = experiment.knn_of(experiment.make_backbone(profile), train, test)
    raw_knn = experiment.raw_pixel_knn(train, test)
    result = experiment.train_and_evaluate("simclr", "shapes", profile, data=(train, test), progress=False)
    assert result.knn > random_knn + 0.08, (result.knn, random_knn)
    assert result.knn > raw_knn + 0.08, (result.knn, raw_knn)
