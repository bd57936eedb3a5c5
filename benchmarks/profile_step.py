"""Where the time of an SSL training step goes: torch.profiler over ``fit``'s named ranges.

    python benchmarks/profile_step.py --method simclr --compile \
        --out benchmarks/results/profile_simclr_gpu.json --table benchmarks/results/profile_simclr_gpu.txt
    python benchmarks/profile_step.py --method simclr --warmup 2 --steps 2 \
        --out benchmarks/results/profile_simclr_cpu.json --table benchmarks/results/profile_simclr_cpu.txt

Trains ``--method`` (ResNet-18, CIFAR stem, 32 px shapes, batch 512, two views: the recipe
of ``ssl_throughput.py``) through ``train.fit`` and profiles ``--steps`` steps after
``--warmup`` (which includes compiling). ``fit`` marks four ranges: "views" (batch indexing
and the on-device augmentations), "forward" (the method's ``training_step`` under
autocast), "backward" and "optimizer" (AdamW and ``on_after_step``). The record holds each
range's CPU and device time per step, the minor page faults per step, the device's busy
fraction (kernel time over wall time: below 1 the GPU waits for the host) and the slowest
kernels (on a CPU: the operators with the most CPU time of their own); ``--table`` writes
the profiler's own table.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from _record import write_record
from ssl_throughput import sslcourse_pipeline
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, schedule

from sslcourse.data import make_shapes
from sslcourse.train import default_device, fit

RANGES = ["views", "forward", "backward", "optimizer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "convnet"])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--table", type=Path, default=None)
    args = parser.parse_args()
    device = default_device()
    images = make_shapes(args.batch_size * 8, image_size=args.image_size, seed=0, captions=False).images
    method, loader = sslcourse_pipeline(args.method, images, args.backbone, args.batch_size, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    marks: dict[int, float] = {}
    faults: dict[int, int] = {}  # minor page faults: pages the kernel had to hand over (and zero)

    def on_step(step: int) -> None:
        prof.step()
        if step in (args.warmup, args.warmup + args.steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            marks[step] = time.perf_counter()
            faults[step] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    with profile(activities=activities, schedule=schedule(wait=args.warmup - 1, warmup=1, active=args.steps)) as prof:
        fit(method, loader, args.warmup + args.steps, device=device, compile=args.compile, log_every=10,
            progress=False, on_step=on_step)
    wall_ms = 1e3 * (marks[args.warmup + args.steps] - marks[args.warmup]) / args.steps
    averages = prof.key_averages()
    by_name = {a.key: a for a in averages}
    per_step = {name: {"cpu_ms": by_name[name].cpu_time_total / 1e3 / args.steps,
                       "device_ms": by_name[name].device_time_total / 1e3 / args.steps}
                for name in RANGES if name in by_name}
    # kernel rows only: an operator's row repeats the time of the kernels it launched
    kernels = sorted((a for a in averages if a.device_type == DeviceType.CUDA and a.key not in RANGES),
                     key=lambda a: a.self_device_time_total, reverse=True)
    kernel_ms = sum(a.self_device_time_total for a in kernels) / 1e3 / args.steps
    record = {
        "method": args.method, "backbone": args.backbone, "image_size": args.image_size,
        "batch_size": args.batch_size, "compile": args.compile, "profiled_steps": args.steps,
        "wall_ms_per_step": wall_ms, "images_per_s_while_profiling": args.batch_size / wall_ms * 1e3,
        "page_faults_per_step": (faults[args.warmup + args.steps] - faults[args.warmup]) / args.steps,
        "kernel_ms_per_step": kernel_ms, "device_busy_fraction": kernel_ms / wall_ms if kernels else None,
        "ranges_per_step": per_step,
        "top_kernels": [{"name": a.key[:120], "ms_per_step": a.self_device_time_total / 1e3 / args.steps,
                         "calls_per_step": a.count / args.steps} for a in kernels[:25]],
    }
    if device.type == "cpu":  # no kernels: the operators' own CPU time is where the step goes
        operators = sorted((a for a in averages if a.key not in RANGES), key=lambda a: a.self_cpu_time_total,
                           reverse=True)
        total = sum(a.self_cpu_time_total for a in operators)
        record["top_operators"] = [{"name": a.key[:120], "ms_per_step": a.self_cpu_time_total / 1e3 / args.steps,
                                    "fraction": a.self_cpu_time_total / total} for a in operators[:15]]
    if args.table:
        sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(averages.table(sort_by=sort_by, row_limit=60, max_name_column_width=90))
    write_record(args.out, record, hide=("top_kernels", "top_operators"))


if __name__ == "__main__":
    main()
