"""Seconds to render the shapes dataset: 50,000 images of 32 px (target: under 10 s on 2 cores).

    python benchmarks/render_shapes.py --out benchmarks/results/render_shapes_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from sslcourse.data import make_shapes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    times = {}
    for captions in (False, True):
        t0 = time.perf_counter()
        make_shapes(args.n, args.size, seed=0, captions=captions)
        times["with_captions" if captions else "images_only"] = time.perf_counter() - t0
    record = {"command": f"python benchmarks/render_shapes.py --out {args.out}", "n": args.n, "size": args.size,
              "seconds": times, "cpu_count": os.cpu_count(), "machine": platform.platform(),
              "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
