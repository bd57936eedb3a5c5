"""Chapter 5's projection-head ablation at a profile's scale; writes a JSON record.

    python benchmarks/ch5_head_ablation.py --profile cpu --out benchmarks/results/ch5_head_ablation_cpu.json

Trains SimCLR on the shapes with the profile's settings and compares linear probes on the
backbone output h and on the projection z, for the class and for two nuisance factors
(object and background colour) that the augmentations randomise.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from _record import write_record

from sslcourse import experiment
from sslcourse.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--no-compile", action="store_true", help="train eagerly (compiling pays only in long runs)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    if args.no_compile:
        profile = replace(profile, compile=False)
    train, test = experiment.load_profile_data("shapes", profile)
    run = experiment.train_and_evaluate("simclr", "shapes", profile, data=(train, test), progress=False)
    write_record(args.out, {"profile": profile.__dict__, "steps": run.history[-1]["step"], "knn": run.knn,
                            "train_seconds": run.train_seconds,
                            "probes": experiment.probe_before_and_after_head(run.method, train, test)})


if __name__ == "__main__":
    main()
