"""Every pretext task of chapter 4 at one budget, against its own random weights and SimCLR.

    python benchmarks/ch4_pretext.py --profile ci --out benchmarks/results/ch4_pretext_ci.json
    python benchmarks/ch4_pretext.py --profile gpu --out benchmarks/results/ch4_pretext_gpu.json
    python benchmarks/ch4_pretext.py --profile ci --methods video_colorization --add --out ...  # re-run one

``--add`` keeps the other methods' results already in ``--out`` (same profile and steps).

Each image method trains for the profile's steps and batch (or ``--steps``) on the profile's
shapes (rotation on upright shapes: it needs a canonical orientation), then its ``encode``
features are probed on the 8-way shape class by kNN and by a linear probe
(``evaluate.linear_probe``: standardised features, as MAE's BatchNorm without affine
parameters), next to the same method with the weights it started from. Video colorization
trains on ``data.make_moving_shapes`` with a 2-block ConvNet (a 4-block one leaves a 2x2
map of a 20 px frame, too coarse to point with) and is scored by tracking: the IoU of masks propagated
from the first frame against copying that mask. The chapter's comparison figure reads the
record (Course: :ref:`ch4b-comparison`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _record import write_record

from sslcourse import experiment
from sslcourse.backbones import ConvNet
from sslcourse.data import FramePairLoader, ImageSet, make_moving_shapes
from sslcourse.evaluate import extract_features, knn_accuracy, linear_probe
from sslcourse.methods import build_method
from sslcourse.methods.video_colorization import tracking_iou
from sslcourse.profiles import Profile, get_profile
from sslcourse.train import default_device, fit, seed_everything

IMAGE_METHODS = ["rotation", "relative_position", "jigsaw", "inpainting", "colorization", "split_brain", "mae",
                 "simclr"]


def probes(method: object, train: ImageSet, test: ImageSet) -> dict[str, float]:
    """kNN and linear-probe accuracy of ``method``'s features on the shape class."""
    f_train, f_test = extract_features(method, train), extract_features(method, test)
    return {"knn": knn_accuracy(f_train, train.labels, f_test, test.labels),
            "linear": linear_probe(f_train, train.labels, f_test, test.labels).accuracy}


def image_method(name: str, profile: Profile, steps: int) -> dict:
    """Train ``name`` on the profile's shapes; its probes before and after, and the time."""
    train, test = experiment.load_profile_data("shapes", profile, upright=name == "rotation")
    seed_everything(0)
    method = experiment.build_for_profile(name, profile, train.num_classes).to(default_device())
    before = probes(method, train, test)
    run = experiment.train_and_evaluate(name, "shapes", profile, data=(train, test), steps=steps, method=method,
                                        progress=False)
    after = probes(run.method, train, test)
    return {**after, "random_knn": before["knn"], "random_linear": before["linear"],
            "train_seconds": run.train_seconds, "data": "upright shapes" if name == "rotation" else "shapes"}


def video_colorization(profile: Profile, steps: int, batch_size: int) -> dict:
    """Train video colorization on moving shapes; tracking IoU against the copied first mask."""
    size, device = profile.image_size, default_device()
    train = make_moving_shapes(profile.n_train // 25, 6, size, 2, seed=0)
    test = make_moving_shapes(profile.n_test // 25, 6, size, 2, seed=100)
    seed_everything(0)
    width = max(8, profile.width // 2)
    method = build_method("video_colorization", lambda c: ConvNet(width=width, depth=2, in_channels=c)).to(device)
    t0 = time.perf_counter()
    fit(method, FramePairLoader(train, batch_size, max_gap=2, device=device, seed=0), steps, lr=3e-3,
        device=device, progress=False, log_every=max(1, steps // 4))
    seconds = time.perf_counter() - t0
    iou = tracking_iou(method, test.frames.to(device), test.masks.to(device))
    return {"iou": iou["model"], "copy_iou": iou["copy_first_mask"], "train_seconds": seconds,
            "videos": [len(train.frames), len(test.frames)], "batch_size": batch_size,
            "backbone": f"convnet (width {width}, depth 2)", "lr": 3e-3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=None, help="default: the profile's")
    parser.add_argument("--methods", nargs="+", default=[*IMAGE_METHODS, "video_colorization"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--add", action="store_true", help="keep the other methods' results already in --out")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    steps = args.steps or profile.steps
    results, previous = {}, []
    if args.add and args.out.exists():
        earlier = json.loads(args.out.read_text())
        if (earlier["profile"], earlier["steps"]) != (profile.name, steps):
            parser.error(f"{args.out} holds {earlier['profile']} at {earlier['steps']} steps, "
                         f"not {profile.name} at {steps}")
        results = earlier["results"]
        previous = [*earlier.get("previous_commands", []), earlier["command"]]
    for name in args.methods:
        if name == "video_colorization":
            results[name] = video_colorization(profile, steps, max(8, profile.batch_size // 8))
        else:
            results[name] = image_method(name, profile, steps)
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in results[name].items()}, flush=True)
    write_record(args.out, {"profile": profile.name, "steps": steps, "batch_size": profile.batch_size,
                            "backbone": f"{profile.backbone} (width {profile.width})", "image_size": profile.image_size,
                            "load_average_at_end": os.getloadavg(), "previous_commands": previous,
                            "results": results})


if __name__ == "__main__":
    main()
