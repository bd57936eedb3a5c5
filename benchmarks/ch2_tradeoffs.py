"""Chapter 2's trade-off table over several seeds: source accuracy, class separation and transfer.

    python benchmarks/ch2_tradeoffs.py --profile ci --seeds 3
    python benchmarks/ch2_tradeoffs.py --profile gpu --seeds 3   # the GPU record

Every variant of ``transfer.TRADEOFFS`` is pre-trained on the page's source task at the page's
budget (``transfer.profile_tasks``) once per seed, with ``transfer.pretrain_and_transfer``; the
record holds each run's row (source accuracy, class separation R^2, linear probe on every
target). 02_transfer reads it beside its own one-seed table (Course: :ref:`ch2-tradeoffs`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from _record import write_record

from sslcourse import transfer
from sslcourse.data.tasks import TARGETS
from sslcourse.profiles import PROFILES, get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=PROFILES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="default: the page's budget")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/ch2_tradeoffs_<profile>.json")
    args = parser.parse_args()
    profile = dataclasses.replace(get_profile(args.profile), backbone="convnet")  # the chapter's network
    source, targets, steps = transfer.profile_tasks(profile)
    steps = args.steps or steps
    runs: dict[str, dict[int, dict]] = {}
    t0 = time.perf_counter()
    for name, options in transfer.TRADEOFFS.items():
        for seed in range(args.seeds):
            _, row = transfer.pretrain_and_transfer(source, targets, profile, steps, seed=seed, **options)
            runs.setdefault(name, {})[seed] = row
            print(name, seed, {k: round(v, 3) for k, v in row.items()}, flush=True)
    out = args.out or Path(__file__).parent / "results" / f"ch2_tradeoffs_{args.profile}.json"
    write_record(out, {"profile": args.profile, "steps": steps, "seeds": args.seeds, "targets": TARGETS,
                       "source_images": len(source[0]), "target_images": len(targets[TARGETS[0]][0]),
                       "seconds": time.perf_counter() - t0, "runs": runs})


if __name__ == "__main__":
    main()
