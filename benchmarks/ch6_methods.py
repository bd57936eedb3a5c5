"""SSL methods at a profile's scale, with optional time-to-accuracy curves; writes a JSON record.

    python benchmarks/ch6_methods.py --profile gpu --steps 1000 --knn-every 250 --no-compile \
        --methods vicreg byol barlow_twins dino simclr --out benchmarks/results/ch6_methods_gpu_32px.json
    python benchmarks/ch6_methods.py --profile ci --steps 1600 --knn-every 100 --targets 0.35 0.4 \
        --methods byol simsiam dino --out benchmarks/results/ch6_distillation_curves_ci.json
    python benchmarks/ch6_methods.py --profile ci --steps 1600 --knn-every 100 --targets 0.35 0.4 \
        --methods byol --slow-target --out benchmarks/results/ch6_distillation_curves_ci_slow_target.json

``--image-size 64`` renders the shapes at 64 px instead of the profile's size.
``--slow-target`` trains BYOL and DINO with a target that starts at momentum 0.99 (and
BYOL's predictor at the common learning rate) instead of ``build_method``'s faster settings.

For each method: kNN accuracy on the shape class of the trained backbone and of the same
architecture with random weights, training time and images/second (each image seen as
all its views). Chapter 6 reads the ci record to show how many steps the distillation
methods need on a CPU budget. With ``--knn-every`` the record also holds the kNN curve
over training time and the seconds each method took to first reach each ``--targets``
accuracy (time-to-accuracy; the evaluations are not counted as training time).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from _record import write_record

from sslcourse import experiment
from sslcourse.methods import Method
from sslcourse.profiles import Profile, get_profile
from sslcourse.train import seed_everything

DEFAULT_METHODS = ["barlow_twins", "vicreg", "wmse", "byol", "simsiam", "dino", "swav"]


def seconds_to_reach(history: list[dict], target: float) -> float | None:
    """Training seconds at the first evaluation with kNN accuracy ≥ ``target`` (None: never)."""
    return next((h["time_s"] for h in history if h.get("knn", -1.0) >= target), None)


def slow_target(name: str, profile: Profile, num_classes: int) -> Method:
    """The course's ``name`` with the target momentum starting at 0.99 (BYOL: predictor at 1x)."""
    overrides = {"byol": {"base_momentum": 0.99, "predictor_lr_scale": 1.0}, "dino": {"base_momentum": 0.99}}
    return experiment.build_for_profile(name, profile, num_classes, **overrides.get(name, {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=None, help="default: the profile's")
    parser.add_argument("--image-size", type=int, default=None, help="default: the profile's")
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--knn-every", type=int, default=0, help="steps between kNN evaluations (0: at the end only)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8])
    parser.add_argument("--no-compile", action="store_true",
                        help="train eagerly (a short GPU run can spend longer compiling than it saves)")
    parser.add_argument("--slow-target", action="store_true",
                        help="BYOL and DINO with target momentum 0.99 (BYOL's predictor at 1x learning rate)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    if args.image_size:
        profile = replace(profile, image_size=args.image_size)
    if args.no_compile:
        profile = replace(profile, compile=False)
    data = experiment.load_profile_data("shapes", profile)
    seed_everything(0)
    device = experiment.default_device()
    random_knn = experiment.knn_of(experiment.make_backbone(profile).to(device), *data)
    results = {}
    for name in args.methods:
        method = slow_target(name, profile, data[0].num_classes) if args.slow_target else None
        run = experiment.train_and_evaluate(name, "shapes", profile, data=data, steps=args.steps, progress=False,
                                            knn_every=args.knn_every, method=method)
        results[name] = {"knn": run.knn, "gain_points": 100 * (run.knn - random_knn),
                         "train_seconds": run.train_seconds, "images_per_s": run.images_per_s,
                         "steps": run.history[-1]["step"]}
        if args.knn_every:
            results[name]["seconds_to_knn"] = {str(t): seconds_to_reach(run.history, t) for t in args.targets}
            results[name]["knn_curve"] = [{"step": h["step"], "time_s": h["time_s"], "knn": h["knn"]}
                                          for h in run.history if "knn" in h]
        # written after every method, so a run stopped part-way keeps what it measured
        write_record(args.out, {"profile": profile.__dict__, "random_knn": random_knn, "results": results,
                                "slow_target": args.slow_target},
                     hide=("profile", "results"))
        print(name, {k: v for k, v in results[name].items() if k != "knn_curve"}, flush=True)


if __name__ == "__main__":
    main()
