"""Command line: ``python -m sslcourse {train,evaluate,download,profiles} ...``.

Examples::

    python -m sslcourse train simclr --dataset shapes --profile cpu --out runs/simclr.pt
    python -m sslcourse evaluate runs/simclr.pt
    python -m sslcourse download cifar10

``train --out`` saves a checkpoint every ``--checkpoint-every`` steps (default: the profile's)
and when SIGINT or SIGTERM stops it (exit code 130 or 143); the same command resumes it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from .data import DATASETS, DatasetNotFoundError
from .methods import IMAGE_METHODS, METHODS, method_spec
from .profiles import PROFILES, get_profile
from .train import CheckpointError, NonFiniteLossError, TrainingInterrupted


def _choice(valid: list[str], what: str) -> Callable[[str], str]:
    """An argparse type that rejects unknown names with the list of valid ones."""
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; valid names: {', '.join(valid)}")
        return value
    return parse


def _trainable_method(value: str) -> str:
    """Return ``value`` if it names an image method (argparse type of ``train``'s method); CPC
    (sequences) is refused at parse time with a pointer to how the course trains it."""
    if value in METHODS and value not in IMAGE_METHODS:
        raise argparse.ArgumentTypeError(
            f"{value} trains on {method_spec(value).inputs}, not on images; the CLI trains the image methods "
            f"({', '.join(IMAGE_METHODS)}). Train {value} in Python with `fit` and its loader "
            "(see the method's module docstring)")
    return _choice(IMAGE_METHODS, "method")(value)


def _integer(minimum: int) -> Callable[[str], int]:
    """Return an argparse type for whole numbers >= ``minimum`` (1: positive, 0: non-negative);
    argparse prefixes the option's name to its message. (Unchecked, ``--steps 0`` meant the
    profile's steps and ``--steps -5`` ended in an IndexError.)"""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer"

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < minimum:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {value}")
        return number
    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sslcourse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a method, then report kNN accuracy against baselines")
    t.add_argument("method", type=_trainable_method, help=f"one of: {', '.join(IMAGE_METHODS)}")
    t.add_argument("--dataset", type=_choice(DATASETS, "dataset"), default="shapes")
    t.add_argument("--profile", type=_choice(PROFILES, "profile"), default=None,
                   help="ci, cpu, gpu or full (default: $SSLCOURSE_PROFILE, else gpu if CUDA else cpu)")
    t.add_argument("--steps", type=_integer(1), default=None, metavar="N",
                   help="override the profile's number of steps")
    t.add_argument("--batch-size", type=_integer(1), default=None, metavar="N",
                   help="override the profile's images per step")
    t.add_argument("--seed", type=_integer(0), default=0, metavar="N")
    t.add_argument("--out", type=Path, default=None,
                   help="checkpoint path, saved every --checkpoint-every steps and on SIGINT/SIGTERM; "
                        "an existing checkpoint there is resumed")
    t.add_argument("--checkpoint-every", type=_integer(1), default=None, metavar="N",
                   help="steps between checkpoints to --out (default: the profile's)")
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
    # Every checkpoint says how to rebuild its run, so `evaluate` needs only the file, even of a
    # run that was killed.
    run = {"method": args.method, "dataset": args.dataset, "profile": profile.name, "seed": args.seed}
    result = experiment.train_and_evaluate(
        args.method, args.dataset, profile, seed=args.seed, steps=args.steps, progress=not args.no_progress,
        data=(train, test), checkpoint_path=str(args.out) if args.out else None, batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every, checkpoint_extra={"run": run})
    # images_per_s is None (JSON null) when the run was resumed from a finished checkpoint
    line = {"method": args.method, "dataset": args.dataset, "profile": profile.name,
            "steps": result.history[-1]["step"], "final_loss": round(result.history[-1]["loss"], 4),
            "knn_accuracy": round(result.knn, 4), "train_seconds": round(result.train_seconds, 1),
            "images_per_s": None if result.images_per_s is None else round(result.images_per_s)}
    if rank != 0:
        return {}
    if args.baselines:
        line["knn_random_weights"] = round(experiment.knn_of(experiment.make_backbone(profile), train, test), 4)
        line["knn_raw_pixels"] = round(experiment.raw_pixel_knn(train, test), 4)
    return line


def _interrupted(err: TrainingInterrupted) -> str:
    """Return the one line that says where a stopped run is and how to continue it."""
    where = f"interrupted by {signal.Signals(err.signum).name} after step {err.step}"
    if err.checkpoint_path is None:
        return f"{where}; no checkpoint was saved (pass --out PATH to make a run resumable)"
    return f"{where}; checkpoint saved to {err.checkpoint_path}: run the same command to resume"


def _evaluate(args: argparse.Namespace) -> dict:
    import torch

    from . import experiment
    from .train import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    run = state.get("run")
    if run is None:
        raise CheckpointError(f"{args.checkpoint} has no run description: it was not written by `train --out`")
    profile = get_profile(run["profile"])
    train, test = experiment.load_profile_data(run["dataset"], profile, run["seed"])
    method = experiment.build_for_profile(run["method"], profile, train.num_classes)
    method.load_state_dict(state["model"])
    # the layout fit trained and measured in: convolutions in another layout sum in another order, and a
    # test image near a kNN tie can change its vote, so the number would not reproduce the training run's
    method.to(memory_format=torch.channels_last)
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
    except TrainingInterrupted as err:  # fit finished its step and saved: exit as the signal asks
        from .distributed import rank_and_world_size

        if rank_and_world_size()[0] == 0:
            print(_interrupted(err), file=sys.stderr)
        return 128 + err.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (loading data, evaluating)
        print("interrupted by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    except (DatasetNotFoundError, CheckpointError, NonFiniteLossError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
