"""Views per second: sslcourse's batched augmentations vs torchvision's per-image pipeline.

    python benchmarks/augment_throughput.py --out benchmarks/results/augment_throughput_cpu.json

Both make two SimCLR views (random resized crop + flip, colour jitter 0.4/0.4/0.4/0.1 with
p = 0.8, grayscale 0.2) of 32 px images. The baseline is the usual pipeline: PIL images,
torchvision transforms per image, a DataLoader with one worker per core. Counted: source
images per second (each turned into two views), after one warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from sslcourse import augment
from sslcourse.data import make_shapes


class TwoViewPIL(Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.pil = [T.functional.to_pil_image(img) for img in images]
        self.t = T.Compose([T.RandomResizedCrop(32), T.RandomHorizontalFlip(),
                            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                            T.RandomGrayscale(0.2), T.ToTensor()])

    def __len__(self) -> int:
        return len(self.pil)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.t(self.pil[i]), self.t(self.pil[i])


def torchvision_rate(images: torch.Tensor, batch_size: int, workers: int) -> float:
    loader = DataLoader(TwoViewPIL(images), batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=True, persistent_workers=workers > 0)
    for _ in loader:  # warm-up epoch (starts the workers)
        pass
    t0, n = time.perf_counter(), 0
    for v1, _ in loader:
        n += len(v1)
    return n / (time.perf_counter() - t0)


def sslcourse_rate(images: torch.Tensor, batch_size: int, device: str) -> float:
    x_all = images.to(device)
    views = augment.simclr_views(32)
    def epoch() -> int:
        n = 0
        for i in range(0, len(x_all) - batch_size + 1, batch_size):
            x = x_all[i:i + batch_size].float().div_(255)
            views[0](x), views[1](x)
            n += batch_size
        if device == "cuda":
            torch.cuda.synchronize()
        return n
    epoch()
    t0 = time.perf_counter()
    n = epoch()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_240)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images = make_shapes(args.n, 32, captions=False).images
    workers = os.cpu_count() or 1
    ours = sslcourse_rate(images, args.batch_size, args.device)
    theirs = torchvision_rate(images, args.batch_size, workers)
    record = {
        "command": f"python benchmarks/augment_throughput.py --out {args.out}",
        "images": args.n, "batch_size": args.batch_size, "device": args.device, "cpu_count": workers,
        "torch_threads": torch.get_num_threads(),
        "sslcourse_images_per_s": ours, "torchvision_dataloader_images_per_s": theirs, "speedup": ours / theirs,
        "machine": platform.platform(), "torch": torch.__version__, "torchvision": torchvision.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
