"""Training-step throughput of sslcourse against the lightly pipeline, same backbone, same run.

    python benchmarks/ssl_throughput.py --backbone resnet18 --methods simclr byol vicreg dino \\
        --out benchmarks/results/ssl_throughput_cpu.json

For each method (SimCLR, BYOL, VICReg, DINO; ``--methods``), both pipelines train the same
backbone (ResNet-18 with the CIFAR stem by default) on 32 px shapes images, batch 512, two
views, augmentations included, with the same optimizer (AdamW) and precision (bf16 autocast on CUDA):

- sslcourse: uint8 dataset resident on the device, batched per-sample augmentations on the
  device (``augment.simclr_views``), ``train.fit``.
- lightly (the peer baseline): its transform for the method (``SimCLRTransform``,
  ``BYOLTransform``, ...) on PIL images in a torchvision ``DataLoader`` with ``--workers``
  worker processes, its heads, loss and momentum update, a plain PyTorch loop.

Each pipeline runs in a fresh Python process of its own, one after the other, so neither
inherits the other's allocator state, compiled kernels or memory peak. Reports images/second
(steady state, after ``--warmup`` steps), time per epoch of 50,000 images, peak memory (CUDA
allocator on GPU; on CPU the process's max RSS, DataLoader workers not included) and the ratio.
Requires ``pip install lightly`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from _record import write_record
from torch import nn

from sslcourse import augment
from sslcourse.backbones import build_backbone
from sslcourse.data import DeviceLoader, ImageSet, MultiViewLoader, make_shapes
from sslcourse.methods import build_method
from sslcourse.train import default_device, fit, make_optimizer

METHODS = ["simclr", "byol", "vicreg", "dino"]
HEAD_WIDTH = 2048  # projection-head width of both pipelines


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measured(rate: Callable[..., float], **kwargs: object) -> dict[str, float]:
    """Images/s of ``rate(**kwargs)``, with this process's peak memory and the minor page faults
    per step of the run (warm-up included; each is the kernel handing the process a fresh page)."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    images_per_s = rate(**kwargs)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"images_per_s": images_per_s, "peak_memory_mb": peak_memory_mb(kwargs["device"]),
            "page_faults_per_step": faults / (kwargs["steps"] + kwargs["warmup"])}


def in_fresh_process(fn: Callable[..., dict], **kwargs: object) -> dict:
    """``fn(**kwargs)`` run in a new Python process (spawned, so it shares no CUDA context,
    allocator state or compiled code with this one)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, **kwargs).result()


def make_backbone(name: str) -> nn.Module:
    return build_backbone("resnet18") if name == "resnet18" else build_backbone("convnet", width=16)


def sslcourse_pipeline(method_name: str, images: torch.Tensor, backbone: str, batch_size: int,
                       device: torch.device) -> tuple[nn.Module, MultiViewLoader]:
    """The method and the device-resident two-view loader that the sslcourse side trains."""
    data = ImageSet(images, torch.zeros(len(images), dtype=torch.long), ["unlabelled"])
    loader = MultiViewLoader(DeviceLoader(data, batch_size, device=device), augment.simclr_views(images.shape[-1]))
    return build_method(method_name, lambda c: make_backbone(backbone), head_hidden_dim=HEAD_WIDTH), loader


def sslcourse_rate(method_name: str, images: torch.Tensor, backbone: str, batch_size: int, steps: int,
                   warmup: int, device: torch.device, compile: bool) -> float:
    """Images per second of ``fit`` on ``method_name``, from the steps after ``warmup``."""
    method, loader = sslcourse_pipeline(method_name, images, backbone, batch_size, device)
    # fit synchronises with the device only at log steps; logging every step would stall the
    # GPU once per step, so log at a period that divides both warm-up and timed steps.
    every = math.gcd(warmup, steps)
    history = fit(method, loader, warmup + steps, device=device, compile=compile, log_every=every, progress=False)
    t = [h["time_s"] for h in history]
    return batch_size * steps / (t[-1] - t[warmup // every - 1])


class PILImages(torch.utils.data.Dataset):
    """The uint8 images as PIL images through a transform, as torchvision datasets serve them."""

    def __init__(self, images: torch.Tensor, transform: object) -> None:
        self.images, self.transform = images.permute(0, 2, 3, 1).numpy(), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i]))


def lightly_recipe(method_name: str, backbone: nn.Module, size: int) -> tuple[object, nn.Module, object, object]:
    """Return lightly's (transform, trainable model, loss of a list of views, after-step update)
    for ``method_name``, following lightly's own examples with the widths of ``build_method``."""
    import copy

    from lightly import loss, transforms
    from lightly.models import modules
    from lightly.models.utils import update_momentum

    d = backbone.feature_dim
    if method_name == "simclr":
        model = nn.Sequential(backbone, modules.SimCLRProjectionHead(d, HEAD_WIDTH, 128))
        criterion = loss.NTXentLoss(temperature=0.5)
        return (transforms.SimCLRTransform(input_size=size, gaussian_blur=0.0), model,
                lambda v: criterion(model(v[0]), model(v[1])), lambda: None)
    if method_name == "vicreg":
        model = nn.Sequential(backbone, modules.BarlowTwinsProjectionHead(d, HEAD_WIDTH, HEAD_WIDTH))
        criterion = loss.VICRegLoss()
        return (transforms.VICRegTransform(input_size=size, gaussian_blur=0.0), model,
                lambda v: criterion(model(v[0]), model(v[1])), lambda: None)
    if method_name == "byol":
        projection = nn.Sequential(backbone, modules.BYOLProjectionHead(d, HEAD_WIDTH, 256))
        model = nn.Sequential(projection, modules.BYOLPredictionHead(256, HEAD_WIDTH, 256))
        target = copy.deepcopy(projection).requires_grad_(False)
        criterion = loss.NegativeCosineSimilarity()
        view = {"input_size": size, "gaussian_blur": 0.0}
        transform = transforms.BYOLTransform(transforms.BYOLView1Transform(**view),
                                             transforms.BYOLView2Transform(**view))
        return (transform, nn.ModuleList([model, target]),
                lambda v: criterion(model(v[0]), target(v[1])) + criterion(model(v[1]), target(v[0])),
                lambda: update_momentum(projection, target, 0.99))
    if method_name == "dino":
        heads = [modules.DINOProjectionHead(d, HEAD_WIDTH, 256, 1024, batch_norm=True) for _ in range(2)]
        heads[1].load_state_dict(heads[0].state_dict())  # weight-normed heads cannot be deep-copied
        student = nn.Sequential(backbone, heads[0])
        teacher = nn.Sequential(copy.deepcopy(backbone), heads[1]).requires_grad_(False)
        criterion = loss.DINOLoss(output_dim=1024, warmup_teacher_temp_epochs=0)
        transform = transforms.DINOTransform(global_crop_size=size, n_local_views=0, gaussian_blur=(0.0, 0.0, 0.0))
        return (transform, nn.ModuleList([student, teacher, criterion]),  # the loss holds the center
                lambda v: criterion([teacher(v[0]), teacher(v[1])], [student(v[0]), student(v[1])], epoch=0),
                lambda: update_momentum(student, teacher, 0.99))
    raise ValueError(f"no lightly recipe for {method_name!r}; valid names: {', '.join(METHODS)}")


def lightly_rate(method_name: str, images: torch.Tensor, backbone_name: str, batch_size: int, steps: int,
                 warmup: int, device: torch.device, workers: int) -> float:
    """Images per second of the lightly pipeline for ``method_name``, from the steps after ``warmup``."""
    transform, model, loss_of, after_step = lightly_recipe(method_name, make_backbone(backbone_name),
                                                           images.shape[-1])
    loader = torch.utils.data.DataLoader(PILImages(images, transform), batch_size=batch_size, shuffle=True,
                                         drop_last=True, num_workers=workers, persistent_workers=workers > 0,
                                         pin_memory=device.type == "cuda")
    model.to(device)
    opt = make_optimizer(model, "adamw", 2e-3, 1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    done, t_start = 0, None
    while done < warmup + steps:
        for views in loader:
            views = [v.to(device, non_blocking=True) for v in views[:2]]
            with autocast:
                loss = loss_of(views)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            after_step()
            done += 1
            if done == warmup:
                loss.item()  # wait for the device before starting the clock
                t_start = time.perf_counter()
            if done == warmup + steps:
                loss.item()
                break
    return batch_size * steps / (time.perf_counter() - t_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", nargs="+", default=["simclr"], choices=METHODS)
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "convnet"])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--compile", action="store_true", help="torch.compile the sslcourse step")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    device = default_device()
    n = args.batch_size * (args.steps + args.warmup + 1)
    images = make_shapes(n, image_size=args.image_size, seed=0, captions=False).images
    import lightly

    rows = {}
    for name in args.methods:
        common = {"method_name": name, "images": images, "batch_size": args.batch_size, "steps": args.steps,
                  "warmup": args.warmup, "device": device}
        ours = in_fresh_process(measured, rate=sslcourse_rate, backbone=args.backbone, compile=args.compile,
                                **common)
        theirs = in_fresh_process(measured, rate=lightly_rate, backbone_name=args.backbone, workers=args.workers,
                                  **common)
        rows[name] = {"sslcourse_images_per_s": ours["images_per_s"], "lightly_images_per_s": theirs["images_per_s"],
                      "ratio": ours["images_per_s"] / theirs["images_per_s"],
                      "sslcourse_epoch_s": 50_000 / ours["images_per_s"],
                      "lightly_epoch_s": 50_000 / theirs["images_per_s"],
                      "sslcourse_peak_memory_mb": ours["peak_memory_mb"],
                      "lightly_peak_memory_mb": theirs["peak_memory_mb"],
                      "sslcourse_page_faults_per_step": ours["page_faults_per_step"],
                      "lightly_page_faults_per_step": theirs["page_faults_per_step"]}
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    write_record(args.out, {
        "backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
        "timed_steps": args.steps, "warmup_steps": args.warmup, "lightly_workers": args.workers,
        "compile": args.compile, "lightly": lightly.__version__, "methods": rows,
    })


if __name__ == "__main__":
    main()
