"""Chapter 0's SimCLR experiment at a profile's scale, with baselines; writes a JSON record.

    python benchmarks/ch0_simclr.py --profile gpu --out benchmarks/results/ch0_simclr_gpu.json

``--method`` runs another method of the course the same way (e.g. ``moco``) and
``--image-size`` renders the shapes at another size (chapter 5 uses 64 px on a GPU).

Records: kNN accuracy of SimCLR, random weights and raw pixels on the shapes test set,
training wall time and images per second (each image seen as two views), the machine and
the library versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torchvision

from sslcourse import experiment
from sslcourse.methods import METHODS
from sslcourse.profiles import get_profile
from sslcourse.train import seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--method", default="simclr", choices=METHODS)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    if args.image_size:
        profile = replace(profile, image_size=args.image_size)
    t0 = time.perf_counter()
    train, test = experiment.load_profile_data("shapes", profile)
    render_s = time.perf_counter() - t0
    seed_everything(0)
    device = experiment.default_device()
    random_knn = experiment.knn_of(experiment.make_backbone(profile).to(device), train, test)
    raw_knn = experiment.raw_pixel_knn(train, test)
    result = experiment.train_and_evaluate(args.method, "shapes", profile, steps=args.steps, data=(train, test),
                                           progress=False)
    steady = [h["images_per_s"] for h in result.history[len(result.history) // 2:]]
    record = {
        "command": "python benchmarks/ch0_simclr.py " + " ".join(sys.argv[1:]), "method": args.method,
        "profile": profile.__dict__, "steps": result.history[-1]["step"],
        f"knn_{args.method}": result.knn, "knn_random_weights": random_knn, "knn_raw_pixels": raw_knn,
        "train_seconds": result.train_seconds, "images_per_s_overall": result.images_per_s,
        "images_per_s_steady": sum(steady) / len(steady), "render_seconds": render_s,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu",
        "torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
        "history": result.history,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k not in ("history", "profile")}, indent=1))


if __name__ == "__main__":
    main()
