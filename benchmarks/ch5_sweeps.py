"""Chapter 5's ablations at a scale too long for the notebooks' ci runs; writes a JSON record.

    python benchmarks/ch5_sweeps.py --profile ci --steps 800 --out benchmarks/results/ch5_sweeps_ci800.json
    python benchmarks/ch5_sweeps.py --profile ci --only augmentation --steps 200 --colour-strengths 0 0.5 1 \
        --out benchmarks/results/ch5_augmentation_ci.json

SimCLR's temperature (at ``--batch-size``) and batch size (at the profile's temperature),
and MoCo v2's queue length at ``--queue-batch-size`` for ``--queue-steps`` steps; kNN
accuracy on the shapes test set for each (``experiment.contrastive_sweeps``).

The augmentation sweep (``--only augmentation``, ch. 5b "Views decide what is learned"):
SimCLR for ``--steps`` steps at ``--batch-size`` with the colour part of the course's shapes
recipe scaled by each ``--colour-strengths`` value (1: the course's recipe, 0: crops and flips
only), then the class kNN accuracy and linear probes of the backbone output h on the class
and on the object's and the background's colour (``colour_strength_sweep``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from _record import write_record

from sslcourse import augment, experiment
from sslcourse.data import DeviceLoader, ImageSet, MultiViewLoader
from sslcourse.evaluate import extract_features, knn_accuracy, linear_probe
from sslcourse.profiles import Profile, get_profile
from sslcourse.train import default_device, fit, seed_everything


def colour_recipe(size: int, strength: float) -> augment.ViewRecipe:
    """Return the course's shapes recipe with its colour changes scaled by ``strength``.

    Brightness, contrast, saturation and hue jitter and the greyscale probability are all
    multiplied by ``strength`` (1: ``augment.shapes_views``, hue over the whole colour wheel and
    half the views grey; 0: no colour change at all); crops and flips stay as they are.
    """
    course = augment.shapes_views(size)[0]
    if strength == 0:  # a jitter of zero strength is the identity: skip it rather than draw it
        return dataclasses.replace(course, jitter_p=0.0, gray_p=0.0)
    return dataclasses.replace(course, jitter=tuple(strength * j for j in course.jitter),
                               gray_p=strength * course.gray_p)


def colour_strength_sweep(profile: Profile, data: tuple[ImageSet, ImageSet], steps: int, batch_size: int,
                          strengths: list[float], factors: tuple[str, ...] = ("color", "bg_color")) -> dict:
    """Return {strength: {"knn": acc, "class": acc, factor: acc, ...}} of SimCLR trained on
    views whose colour changes are scaled by each strength (``colour_recipe``): the kNN accuracy
    of h on the class, and linear-probe accuracies of h on the class and on each of ``factors``."""
    train, test = data
    device = default_device()
    rows = {}
    for strength in strengths:
        seed_everything(0)  # the same initial weights and batches at every strength
        method = experiment.build_for_profile("simclr", profile)
        loader = MultiViewLoader(DeviceLoader(train, batch_size, device=device, seed=0),
                                 [colour_recipe(train.image_size, strength)] * 2)
        fit(method, loader, steps, lr=profile.lr, device=device, progress=False)
        h_train = extract_features(method, train, device=device)
        h_test = extract_features(method, test, device=device)
        targets = {"class": (train.labels, test.labels)} | {f: (train.factors[f], test.factors[f]) for f in factors}
        probes = {name: linear_probe(h_train, y_train, h_test, y_test).accuracy
                  for name, (y_train, y_test) in targets.items()}
        rows[strength] = {"knn": knn_accuracy(h_train, train.labels, h_test, test.labels), **probes}
        print(f"colour strength {strength}: {rows[strength]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--only", choices=["contrastive", "augmentation"], default=None,
                        help="run one sweep: contrastive (temperature, batch size, queue) or augmentation "
                             "(colour strength); default both")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.05, 0.2, 1.0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--queue-sizes", type=int, nargs="+", default=[64, 512, 4096])
    parser.add_argument("--queue-batch-size", type=int, default=64)
    parser.add_argument("--queue-steps", type=int, default=1600)
    parser.add_argument("--colour-strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    data = experiment.load_profile_data("shapes", profile)
    t0 = time.perf_counter()
    record: dict = {"profile": profile.__dict__, "steps": args.steps}
    if args.only in (None, "contrastive"):
        record |= {"temperature_sweep_batch_size": args.batch_size, "queue_batch_size": args.queue_batch_size,
                   "queue_steps": args.queue_steps,
                   **experiment.contrastive_sweeps(profile, data, args.steps, args.batch_size, args.temperatures,
                                                   args.batch_sizes, args.queue_sizes, args.queue_batch_size,
                                                   args.queue_steps)}
    if args.only in (None, "augmentation"):
        record |= {"augmentation_batch_size": args.batch_size,
                   "colour_recipes": {s: dataclasses.asdict(colour_recipe(profile.image_size, s))
                                      for s in args.colour_strengths},
                   "colour_strength": colour_strength_sweep(profile, data, args.steps, args.batch_size,
                                                            args.colour_strengths)}
    write_record(args.out, {**record, "seconds": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
