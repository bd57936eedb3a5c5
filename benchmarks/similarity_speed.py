"""Seconds for linear CKA and CCA between two 10,000 x 512 representations (target: < 2 s each
on the 2-core CPU).

    python benchmarks/similarity_speed.py --out benchmarks/results/similarity_speed_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from sslcourse import similarity


def best_of(fn, repeats: int = 3) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.dim, generator=gen)
    y = torch.tanh(x @ torch.randn(args.dim, args.dim, generator=gen) / args.dim**0.5) + 0.1 * torch.randn(
        args.n, args.dim, generator=gen)
    seconds = {name: best_of(lambda fn=fn: fn(x, y)) for name, fn in
               {"linear_cka": similarity.linear_cka, "cca": similarity.cca, "r2_lr": similarity.r2_lr}.items()}
    record = {"command": f"python benchmarks/similarity_speed.py --out {args.out}", "n": args.n, "dim": args.dim,
              "seconds_best_of_3": seconds, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "machine": platform.platform(), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
