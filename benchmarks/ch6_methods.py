"""Chapter 6's methods at a profile's scale, optionally with more steps; writes a JSON record.

    python benchmarks/ch6_methods.py --profile ci --steps 3200 --methods byol simsiam dino \
        --out benchmarks/results/ch6_distillation_ci3200.json
    python benchmarks/ch6_methods.py --profile gpu --out benchmarks/results/ch6_methods_gpu.json

For each method: kNN accuracy on the shape class of the trained backbone and of the same
architecture with random weights, training time and images/second (each image seen as
all its views). Chapter 6 reads the ci record to show how many steps the distillation
methods need on a CPU budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _record import write_record

from sslcourse import experiment
from sslcourse.profiles import get_profile
from sslcourse.train import seed_everything

DEFAULT_METHODS = ["barlow_twins", "vicreg", "wmse", "byol", "simsiam", "dino", "swav"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=None, help="default: the profile's")
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    data = experiment.load_profile_data("shapes", profile)
    seed_everything(0)
    random_knn = experiment.knn_of(experiment.make_backbone(profile), *data)
    results = {}
    for name in args.methods:
        run = experiment.train_and_evaluate(name, "shapes", profile, data=data, steps=args.steps, progress=False)
        results[name] = {"knn": run.knn, "gain_points": 100 * (run.knn - random_knn),
                         "train_seconds": run.train_seconds, "images_per_s": run.images_per_s,
                         "steps": run.history[-1]["step"]}
        print(name, results[name], flush=True)
    write_record(args.out, {"profile": profile.__dict__, "random_knn": random_knn, "results": results})


if __name__ == "__main__":
    main()
