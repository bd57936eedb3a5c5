from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcourse.data import DATASETS, DatasetNotFoundError, DeviceLoader, MultiViewLoader, load_dataset, make_shapes
from sslcourse.data.shapes import SHAPE_NAMES, SUPERCLASS_NAMES


def test_shapes_are_deterministic_from_the_seed():
    a, b = make_shapes(64, 16, seed=3), make_shapes(64, 16, seed=3)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    assert not torch.equal(a.images, make_shapes(64, 16, seed=4).images)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_have_the_documented_layout(size):
    d = make_shapes(40, size, seed=0)
    assert d.images.shape == (40, 3, size, size) and d.images.dtype == torch.uint8
    assert len(SHAPE_NAMES) >= 8 and len(SUPERCLASS_NAMES) >= 2
    assert d.labels.max() < len(SHAPE_NAMES) and d.coarse_labels.max() < len(SUPERCLASS_NAMES)
    for key in ["color", "scale", "pos_x", "pos_y", "rotation", "bg_color", "texture", "noise"]:
        assert len(d.factors[key]) == 40
    assert SHAPE_NAMES[d.labels[0]] in d.captions[0]


def test_upright_shapes_change_only_the_rotation():
    tilted, upright = make_shapes(64, 16, seed=3), make_shapes(64, 16, seed=3, upright=True)
    assert torch.equal(upright.factors["rotation"], torch.zeros(64))
    assert all(torch.equal(tilted.factors[k], upright.factors[k]) for k in tilted.factors if k != "rotation")
    assert not torch.equal(tilted.images, upright.images)
    assert torch.equal(load_dataset("shapes", "test", n=64, image_size=16, upright=True).factors["rotation"],
                       torch.zeros(64))


def test_shape_classes_differ_in_pixels():
    """Every class draws something: the shape's mean coverage differs between classes."""
    d = make_shapes(800, 32, seed=1)
    fg = (d.images.float() - d.images.float().mean(dim=(2, 3), keepdim=True)).abs().mean(dim=(1, 2, 3))
    means = torch.stack([fg[d.labels == c].mean() for c in range(len(SHAPE_NAMES))])
    assert means.min() > 5  # no class renders as an empty background


def test_shapes_train_and_test_splits_differ():
    train = load_dataset("shapes", "train", n=32, image_size=16)
    test = load_dataset("shapes", "test", n=32, image_size=16)
    assert not torch.equal(train.images, test.images)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: " + ", ".join(DATASETS)):
        load_dataset("imagenet")


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="valid: train, test"):
        load_dataset("shapes", "validation")


def test_digits_load_offline():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and train.images.shape[1:] == (3, 8, 8)


def test_fake_cifar10_loads_through_the_real_reader(fake_cifar10: Path):
    train = load_dataset("cifar10", "train", root=fake_cifar10, download=False)
    test = load_dataset("cifar10", "test", root=fake_cifar10, download=False)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 6 and train.class_names[0] == "airplane"


def test_fake_cifar100_has_fine_and_coarse_labels(fake_cifar100: Path):
    d = load_dataset("cifar100", "train", root=fake_cifar100, download=False)
    assert len(d) == 8 and d.coarse_labels is not None and len(d.coarse_names) == 20


def test_fake_stl10_images_come_out_row_major(fake_stl10: Path):
    d = load_dataset("stl10", "train", root=fake_stl10, download=False)
    expected = torch.from_numpy(np.load(fake_stl10 / "expected.npy"))
    assert torch.equal(d.images, expected) and d.labels.tolist() == [0, 4, 9]


def test_missing_dataset_says_where_to_put_it(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py") as err:
        load_dataset("cifar10", root=tmp_path, download=False)
    assert "python -m sslcourse download cifar10" in str(err.value)


def test_failed_download_explains_what_happened(tmp_path: Path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="failed .*no network.*extract it"):
        load_dataset("cifar100", root=tmp_path, download=True)


def test_device_loader_visits_every_image_once_per_epoch():
    d = make_shapes(100, 8, seed=0, captions=False)
    d.labels = torch.arange(100)
    loader = DeviceLoader(d, batch_size=10, drop_last=True)
    seen = torch.cat([y for _, y in loader])
    assert len(loader) == 10 and sorted(seen.tolist()) == list(range(100))


def test_device_loader_shards_are_disjoint_across_ranks():
    d = make_shapes(64, 8, seed=0, captions=False)
    d.labels = torch.arange(64)
    shards = [torch.cat([y for _, y in DeviceLoader(d, 8, rank=r, world_size=2, seed=5)]) for r in range(2)]
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist()) and len(shards[0]) == 32


def test_multiview_loader_makes_one_float_view_per_transform():
    d = make_shapes(16, 16, seed=0, captions=False)
    batch = next(iter(MultiViewLoader(DeviceLoader(d, 8), [lambda x: x, lambda x: 1 - x])))
    assert len(batch.views) == 2 and batch.views[0].dtype == torch.float32
    assert torch.allclose(batch.views[0] + batch.views[1], torch.ones_like(batch.views[0]))


DEFAULT_FACTORS_SHA256 = "74ce2c44faa78472ba0a688cca3aaa1351d4df1ec1f37575380f835a774652a8"


def test_default_shapes_keep_the_factors_of_earlier_versions():
    # sha256 of the factor tensors of make_shapes(256, seed=3) before the factor-range options
    # existed: restricting factors must not change the default dataset's random stream.
    import hashlib

    factors = make_shapes(256, 16, seed=3, captions=False).factors
    digest = hashlib.sha256(b"".join(factors[k].numpy().tobytes() for k in sorted(factors))).hexdigest()
    assert digest == DEFAULT_FACTORS_SHA256


def test_factor_ranges_restrict_classes_colours_textures_and_scale():
    from sslcourse.data.shapes import COLOR_NAMES, TEXTURE_NAMES

    d = make_shapes(400, 16, seed=1, classes=["star", "circle"], colors=["red", "blue"],
                    textures=["mottled"], scale_range=(0.3, 0.4))
    assert d.class_names == ["star", "circle"] and set(d.labels.tolist()) == {0, 1}
    assert (torch.tensor(SHAPE_NAMES.index("star")) == d.factors["shape"][d.labels == 0]).all()
    assert {COLOR_NAMES[c] for c in d.factors["color"].tolist()} == {"red", "blue"}
    assert (d.factors["bg_color"] != d.factors["color"]).all()
    assert {TEXTURE_NAMES[t] for t in d.factors["texture"].tolist()} == {"mottled"}
    scale = d.factors["scale"]
    assert 0.3 <= scale.min() and scale.max() <= 0.4
    assert (d.factors["pos_x"].abs() <= (1 - scale) * 0.9 + 1e-6).all()  # the shape stays inside the frame
    assert all(c.split()[1] == "small" for c in d.captions)  # below the default range: the smallest size word


@pytest.mark.parametrize(("option", "value", "valid"), [("classes", ["hexagon"], "circle, ellipse"),
                                                         ("colors", ["teal"], "red, orange"),
                                                         ("textures", ["dotted"], "plain, striped"),
                                                         ("classes", [], "circle")])
def test_factor_names_outside_the_valid_ones_are_rejected_with_the_valid_list(option, value, valid):
    with pytest.raises(ValueError, match=valid):
        make_shapes(8, 16, **{option: value})


def test_a_scale_range_outside_zero_one_is_rejected():
    with pytest.raises(ValueError, match="0 < low <= high < 1"):
        make_shapes(8, 16, scale_range=(0.5, 1.0))


def test_every_domain_shift_of_the_series_makes_a_dataset():
    from sslcourse.data.shapes import DOMAIN_SHIFTS, SHIFT_SOURCE

    for name, shift in DOMAIN_SHIFTS.items():
        target = make_shapes(32, 16, seed=0, **{**SHIFT_SOURCE, **shift})
        assert len(target) == 32, name


def test_load_dataset_passes_factor_ranges_to_shapes_only():
    test = load_dataset("shapes", "test", n=16, image_size=16, classes=["ring", "cross"])
    assert test.class_names == ["ring", "cross"]
    with pytest.raises(ValueError, match="only for the shapes dataset"):
        load_dataset("digits", classes=["ring"])
