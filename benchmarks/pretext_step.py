"""Seconds per training step of chapter 4's image methods at a profile's sizes.

    python benchmarks/pretext_step.py --profile ci --out benchmarks/results/pretext_step_ci.json
    python benchmarks/pretext_step.py --profile ci --methods colorization split_brain --bin-reduction 1 \
        --out benchmarks/results/pretext_step_ci_full_resolution_bins.json

Each method's ``training_step`` + backward + AdamW step on one batch of the profile's shapes
(one view, as the methods train), timed over ``--steps`` after ``--warmup``. ``--bin-reduction
1`` makes colorization and split-brain predict their colour bins at the full input resolution
instead of ``methods.colorization.BIN_REDUCTION`` (half the side): the choice this compares.
The record holds the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _record import write_record

from sslcourse import experiment
from sslcourse.data import Batch
from sslcourse.methods import colorization
from sslcourse.profiles import get_profile
from sslcourse.train import make_optimizer, seed_everything

METHODS = ["rotation", "relative_position", "jigsaw", "inpainting", "colorization", "split_brain", "mae", "simclr"]


def seconds_per_step(name: str, images: torch.Tensor, steps: int, warmup: int, bin_reduction: int) -> float:
    """Mean wall time of ``steps`` optimizer steps of ``name`` on ``images`` after ``warmup``."""
    seed_everything(0)
    overrides = {"bin_reduction": bin_reduction} if name in ("colorization", "split_brain") else {}
    method = experiment.build_for_profile(name, profile, 8, **overrides)
    optimizer = make_optimizer(method, lr=1e-3)
    batch = Batch(views=[images, images] if name == "simclr" else [images], labels=torch.zeros(len(images)))
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        method.training_step(batch)["loss"].backward()
        optimizer.step()
    return (time.perf_counter() - t0) / steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bin-reduction", type=int, default=colorization.BIN_REDUCTION)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    train, _ = experiment.load_profile_data("shapes", profile)
    images = train.images[: profile.batch_size].float() / 255
    seconds = {name: seconds_per_step(name, images, args.steps, args.warmup, args.bin_reduction)
               for name in args.methods}
    write_record(args.out, {"profile": profile.name, "batch_size": profile.batch_size, "image_size": profile.image_size,
                            "bin_reduction": args.bin_reduction, "load_average": os.getloadavg(),
                            "seconds_per_step": seconds})
