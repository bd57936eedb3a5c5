"""Chapter 5's ablations at a larger scale than the notebook's ci run; writes a JSON record.

    python benchmarks/ch5_sweeps.py --profile ci --steps 800 --out benchmarks/results/ch5_sweeps_ci800.json

SimCLR's temperature (at ``--batch-size``) and batch size (at the profile's temperature),
and MoCo v2's queue length at ``--queue-batch-size`` for ``--queue-steps`` steps; kNN
accuracy on the shapes test set for each (``experiment.contrastive_sweeps``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _record import write_record

from sslcourse import experiment
from sslcourse.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.05, 0.2, 1.0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--queue-sizes", type=int, nargs="+", default=[64, 512, 4096])
    parser.add_argument("--queue-batch-size", type=int, default=64)
    parser.add_argument("--queue-steps", type=int, default=1600)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    data = experiment.load_profile_data("shapes", profile)
    t0 = time.perf_counter()
    sweeps = experiment.contrastive_sweeps(profile, data, args.steps, args.batch_size, args.temperatures,
                                           args.batch_sizes, args.queue_sizes, args.queue_batch_size, args.queue_steps)
    write_record(args.out, {"profile": profile.__dict__, "steps": args.steps,
                            "temperature_sweep_batch_size": args.batch_size,
                            "queue_batch_size": args.queue_batch_size, "queue_steps": args.queue_steps,
                            "seconds": time.perf_counter() - t0, **sweeps})


if __name__ == "__main__":
    main()
