"""Command line: ``python -m sslcourse {train,evaluate,download,profiles} ...``.

Examples::

    python -m sslcourse train simclr --dataset shapes --profile cpu --out runs/simclr.pt
    python -m sslcourse evaluate runs/simclr.pt
    python -m sslcourse download cifar10
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from .data import DATASETS, DatasetNotFoundError
from .methods import METHODS
from .profiles import PROFILES, get_profile
from .train import CheckpointError, NonFiniteLossError


def _choice(valid: list[str], what: str) -> Callable[[str], str]:
    """An argparse type that rejects unknown names with the list of valid ones."""
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; valid names: {', '.join(valid)}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sslcourse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a method, then report kNN accuracy against baselines")
    t.add_argument("method", type=_choice(METHODS, "method"), help=f"one of: {', '.join(METHODS)}")
    t.add_argument("--dataset", type=_choice(DATASETS, "dataset"), default="shapes")
    t.add_argument("--profile", type=_choice(PROFILES, "profile"), default=None,
                   help="ci, cpu, gpu or full (default: $SSLCOURSE_PROFILE, else gpu if CUDA else cpu)")
    t.add_argument("--steps", type=int, default=None, help="override the profile's number of steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, default=None,
                   help="checkpoint path; an existing checkpoint there is resumed")
    t.add_argument("--baselines", action="store_true", help="also measure random weights and raw pixels")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    e = sub.add_parser("evaluate", help="kNN accuracy of a checkpoint written by `train --out`")
    e.add_argument("checkpoint", type=Path)

    d = sub.add_parser("download", help="download CIFAR-10/100 or STL-10 into the data folder")
    d.add_argument("dataset", type=_choice(["cifar10", "cifar100", "stl10"], "downloadable dataset"))
    d.add_argument("--root", type=Path, default=None, help="default: $SSLCOURSE_DATA or ~/.cache/sslcourse")

    sub.add_parser("profiles", help="list the run profiles and their sizes")
    return p


def _train(args: argparse.Namespace) -> dict:
    from . import experiment
    from .distributed import init_from_environment

    rank, _ = init_from_environment()  # joins the process group under torchrun; (0, 1) otherwise
    profile = get_profile(args.profile)
    train, test = experiment.load_profile_data(args.dataset, profile, args.seed)
    result = experiment.train_and_evaluate(
        args.method, args.dataset, profile, seed=args.seed, steps=args.steps, progress=not args.no_progress,
        data=(train, test), checkpoint_path=str(args.out) if args.out else None)
    line = {"method": args.method, "dataset": args.dataset, "profile": profile.name,
            "steps": result.history[-1]["step"], "final_loss": round(result.history[-1]["loss"], 4),
            "knn_accuracy": round(result.knn, 4), "train_seconds": round(result.train_seconds, 1),
            "images_per_s": round(result.images_per_s)}
    if rank != 0:
        return {}
    if args.baselines:
        line["knn_random_weights"] = round(experiment.knn_of(experiment.make_backbone(profile), train, test), 4)
        line["knn_raw_pixels"] = round(experiment.raw_pixel_knn(train, test), 4)
    if args.out and rank == 0:  # record how to rebuild the run, so `evaluate` needs only the file
        from .train import load_checkpoint, save_checkpoint

        state = load_checkpoint(args.out)
        state["run"] = {"method": args.method, "dataset": args.dataset, "profile": profile.name, "seed": args.seed}
        save_checkpoint(args.out, state)
    return line


def _evaluate(args: argparse.Namespace) -> dict:
    from . import experiment
    from .methods import build_method
    from .train import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    run = state.get("run")
    if run is None:
        raise CheckpointError(f"{args.checkpoint} has no run description; it was not written by `train --out`")
    profile = get_profile(run["profile"])
    train, test = experiment.load_profile_data(run["dataset"], profile, run["seed"])
    method = build_method(run["method"], partial(experiment.make_backbone, profile),
                          train.num_classes, head_hidden_dim=profile.head_hidden_dim,
                          temperature=profile.temperature)
    method.load_state_dict(state["model"])
    return {**run, "step": state["step"], "knn_accuracy": round(experiment.knn_of(method, train, test), 4)}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            line = _train(args)
            if line:  # other ranks than 0 return nothing under torchrun: one line per run
                print(json.dumps(line))
        elif args.command == "evaluate":
            print(json.dumps(_evaluate(args)))
        elif args.command == "download":
            from .data import default_root, load_dataset

            data = load_dataset(args.dataset, "train", root=args.root or default_root(), download=True)
            print(f"{args.dataset}: {len(data)} training images in {args.root or default_root()}")
        elif args.command == "profiles":
            for name in PROFILES:
                print(get_profile(name))
    except (DatasetNotFoundError, CheckpointError, NonFiniteLossError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
