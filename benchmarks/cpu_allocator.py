"""What ``train.keep_freed_memory`` buys on a CPU: the sslcourse SimCLR step (ResNet-18, 32 px,
batch 512, two views) with glibc's default ``malloc`` and with freed memory kept for reuse.

    python benchmarks/cpu_allocator.py --out benchmarks/results/cpu_allocator_resnet18.json
    python benchmarks/cpu_allocator.py --backbone convnet --steps 20 --warmup 3 --repeats 3 \
        --out benchmarks/results/cpu_allocator_convnet.json

Each setting trains in a fresh process of its own (``ssl_throughput.in_fresh_process``), so
neither inherits the other's heap; ``--repeats`` alternates the two that many times, because
a shared virtual machine's speed drifts by more than the effect on small networks. The record
holds images/s, peak memory (max RSS) and minor page faults per step of every run: with
glibc's defaults the kernel zero-fills every large activation again at every step.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _record import write_record
from ssl_throughput import in_fresh_process, measured, sslcourse_rate

from sslcourse.data import make_shapes
from sslcourse.train import default_device


def with_default_malloc(**kwargs: object) -> dict[str, float]:
    """``measured`` with ``fit``'s call to ``keep_freed_memory`` switched off (this process only)."""
    import sslcourse.train

    sslcourse.train.keep_freed_memory = lambda: False
    return measured(**kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "convnet"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = default_device()
    if device.type != "cpu":
        raise SystemExit("this benchmark measures the CPU allocator; run it on a machine without a GPU")
    images = make_shapes(args.batch_size * (args.steps + args.warmup + 1), image_size=32, seed=0,
                         captions=False).images
    common = {"rate": sslcourse_rate, "method_name": "simclr", "images": images, "backbone": args.backbone,
              "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "device": device,
              "compile": False}
    runs = [{"glibc_default": in_fresh_process(with_default_malloc, **common),
             "keep_freed_memory": in_fresh_process(measured, **common)} for _ in range(args.repeats)]
    speedups = [r["keep_freed_memory"]["images_per_s"] / r["glibc_default"]["images_per_s"] for r in runs]
    write_record(args.out, {"backbone": args.backbone, "batch_size": args.batch_size, "timed_steps": args.steps,
                            "warmup_steps": args.warmup, "runs": runs, "speedups": speedups,
                            "median_speedup": statistics.median(speedups)})


if __name__ == "__main__":
    main()
