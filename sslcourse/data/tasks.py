"""Source and target tasks for chapter 2's transfer experiments (Course: :ref:`ch2-tasks`).

A network is pre-trained with labels on a *source* task and evaluated on a *target* task whose
classes it has never seen. The source holds four of the eight shape classes drawn in half the
colours and half the textures (``SHIFT_SOURCE``); every target holds the other four classes,
drawn from the source's ranges or from new ones (``DOMAIN_SHIFTS``), and the last target is the
handwritten digits, a different kind of image altogether. ``TARGETS`` orders them by how far
they move from the source.
"""

from __future__ import annotations

from .imageset import ImageSet
from .real import load_digits
from .shapes import DOMAIN_SHIFTS, SHAPE_NAMES, SHIFT_SOURCE, make_shapes

SOURCE_CLASSES = SHAPE_NAMES[0::2]  # circle, ring, square, star: two round, two angular
TARGET_CLASSES = SHAPE_NAMES[1::2]  # ellipse, half-disc, triangle, cross: the other four
TARGETS = [*DOMAIN_SHIFTS, "digits"]  # growing shift from the source
# Seeds of the renders: the source, each target's labelled set and its test set never share one.
_SEEDS = {"source": 100, "target": 200, "test": 300}


def source_task(n_train: int, n_test: int, image_size: int, seed: int = 0,
                **factor_ranges: list[str] | tuple[float, float]) -> tuple[ImageSet, ImageSet]:
    """Return (train, test) of the source task: ``SOURCE_CLASSES`` in the ``SHIFT_SOURCE`` ranges,
    except ``factor_ranges`` (``make_shapes``'s ``colors``, ``textures``, ``scale_range``)."""
    ranges = {**SHIFT_SOURCE, **factor_ranges}
    kw = dict(image_size=image_size, classes=SOURCE_CLASSES, **ranges)
    return (make_shapes(n_train, seed=_SEEDS["source"] + seed, **kw),
            make_shapes(n_test, seed=_SEEDS["source"] + 50 + seed, **kw))


def target_task(name: str, n_train: int, n_test: int, image_size: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Return (train, test) of target ``name`` (one of ``TARGETS``): ``TARGET_CLASSES`` under the
    shift ``DOMAIN_SHIFTS[name]``, or the digits resized to ``image_size`` (their 1,258 training
    and 539 test images at most: ``n_train`` and ``n_test`` cap them)."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; valid names: {', '.join(TARGETS)}")
    if name == "digits":
        train, test = load_digits("train"), load_digits("test")
        return (train.subset(slice(0, n_train)).resized(image_size),
                test.subset(slice(0, n_test)).resized(image_size))
    kw = dict(image_size=image_size, classes=TARGET_CLASSES, **{**SHIFT_SOURCE, **DOMAIN_SHIFTS[name]})
    return (make_shapes(n_train, seed=_SEEDS["target"] + seed, **kw),
            make_shapes(n_test, seed=_SEEDS["test"] + seed, **kw))
