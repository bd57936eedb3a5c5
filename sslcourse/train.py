"""``fit``: the one training loop of the course, for every method (Course: ch. 0 §training).

What it does, in order, at every step: make the batch's views (the loader), run the
method's ``training_step`` under bf16 autocast on a GPU, step the optimizer with the
warm-up + cosine learning rate, call ``on_after_step`` (EMA, queues, centers), and every
``log_every`` steps turn the accumulated diagnostics into one history record. Host-device
synchronisation happens only at those log steps, so a GPU is never kept waiting.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.profiler import record_function
from tqdm import tqdm

from .data import Batch
from .distributed import average_gradients, rank_and_world_size
from .methods.base import Method
from .schedules import warmup_cosine

OPTIMIZERS = ["adamw", "sgd"]


class NonFiniteLossError(RuntimeError):
    """Raised by ``fit`` when the loss becomes NaN or infinite."""


class CheckpointError(RuntimeError):
    """Raised when a checkpoint cannot be read; the file on disk is left untouched."""


def default_device() -> torch.device:
    """Return ``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse instead of giving it back to the OS.

    A training step on a CPU allocates and frees gigabytes of activations (ResNet-18, batch
    512: about 6 GB). glibc serves blocks over 32 MB with ``mmap`` and unmaps them when they
    are freed, so at every step the kernel zero-fills the same memory again, page by page: 2.7
    million page faults per step. Serving every block from the heap and never trimming it
    removes them (ResNet-18 on 2 cores: 22.9 -> 25.0 images/s, ``benchmarks/cpu_allocator.py``).
    The memory the process holds stays at its peak. Process-wide; ``fit`` calls it on CPU.
    Returns False where it cannot apply (not glibc, e.g. macOS).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    m_trim_threshold, m_mmap_max = -1, -4  # parameter numbers from glibc's <malloc.h>
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, name: str = "adamw", lr: float = 2e-3,
                   weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """Return optimizer ``name`` over ``model``'s parameter groups (``Method.param_groups``);
    biases and norm weights (< 2 dims) get no weight decay (decaying them only hurts; as in
    nanoGPT and most SSL code). Each group keeps its ``lr_scale`` for ``fit``'s schedule."""
    specs = model.param_groups() if hasattr(model, "param_groups") else [
        {"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
    groups = []
    for spec in specs:
        params = [p for p in spec["params"] if p.requires_grad]
        scale = spec.get("lr_scale", 1.0)
        groups += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay, "lr_scale": scale},
                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr_scale": scale}]
    groups = [g for g in groups if g["params"]]
    fused = {"fused": True} if all(p.is_cuda for g in groups for p in g["params"]) else {}
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **fused)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, **fused)
    raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file, then a rename.

    A crash while writing leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Return the state saved at ``path``; raise ``CheckpointError`` saying why it is unreadable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated zip, wrong format, pickle errors...
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {err}). The file was left as it is; "
            "delete or move it to start from scratch, or pass another checkpoint path."
        ) from err
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not an sslcourse checkpoint (no 'model'/'step' entries)")
    return state


def _batches(loader: Iterable[Batch]) -> Iterator[tuple[int, Batch]]:
    """Yield (epoch, batch) forever, re-iterating the loader at each epoch."""
    epoch = 0
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield epoch, batch
        if empty:
            raise ValueError("the loader yielded no batch (dataset smaller than one batch?)")
        epoch += 1


def _to_device(batch: Batch, device: torch.device) -> Batch:
    def moved(v: Tensor) -> Tensor:  # channels_last exists for images (4-D) only, not sequences
        fmt = torch.channels_last if v.ndim == 4 else torch.contiguous_format
        return v.to(device, non_blocking=True).contiguous(memory_format=fmt)

    views = [moved(v) for v in batch.views]
    return Batch(views=views, labels=batch.labels.to(device, non_blocking=True))


def fit(
    method: Method,
    loader: Iterable[Batch],
    steps: int,
    *,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    optimizer: str = "adamw",
    warmup_steps: int | None = None,
    device: str | torch.device | None = None,
    compile: bool = False,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    log_every: int = 10,
    progress: bool = True,
    max_seconds: float | None = None,
    evaluate: Callable[[Method], dict[str, float]] | None = None,
    evaluate_every: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> list[dict]:
    """Train ``method`` for ``steps`` optimizer steps; return one history record per log step.

    Args:
        method: any method of ``sslcourse.methods`` (the training_step contract).
        loader: re-iterable source of ``Batch`` (e.g. ``MultiViewLoader``); re-iterated per epoch.
        steps: total optimizer steps (the schedule's length).
        lr, weight_decay, optimizer: see ``make_optimizer``; lr follows ``warmup_cosine``.
        warmup_steps: linear warm-up length (default 5% of ``steps``).
        device: default ``default_device()``. Images and weights are channels_last; on CUDA
            the step runs under bf16 autocast; on a CPU ``keep_freed_memory`` is applied.
        compile: wrap ``training_step`` in ``torch.compile``.
        checkpoint_path: if given, resume from it when it exists, and save to it (atomically)
            every ``checkpoint_every`` steps (0: only at the end).
        log_every: steps per history record (and per host-device synchronisation).
        progress: show a tqdm progress bar.
        max_seconds: stop early (after a log step) once this much wall time has passed.
        evaluate: called with the method in eval mode every ``evaluate_every`` steps (and at
            the last step); the values it returns join that step's history record (e.g. an
            online kNN accuracy for time-to-accuracy curves). Its time is left out of
            "time_s" and "images_per_s", so they measure training alone.
        evaluate_every: steps between evaluations; a multiple of ``log_every``.
        on_step: called after every optimizer step with the number of steps done
            (e.g. ``torch.profiler.profile.step``).

    Returns:
        list of dicts with "step", "epoch", "lr", "time_s", "images_per_s" and the mean of
        every value ``training_step`` returned over the last ``log_every`` steps;
        ``pandas.DataFrame(history)`` gives a table.

    Raises:
        NonFiniteLossError: the loss became NaN/inf; the message names the step and terms.
        CheckpointError: ``checkpoint_path`` exists but cannot be read.
    """
    if evaluate is not None and (evaluate_every <= 0 or evaluate_every % log_every):
        raise ValueError(f"evaluate_every={evaluate_every} must be a positive multiple of log_every={log_every}")
    device = torch.device(device) if device is not None else default_device()
    # channels_last (NHWC) on every device: cuDNN's and oneDNN's fast convolution kernels use it
    # (measured on 2 CPU cores: the ci SimCLR step 1.3-1.5x faster).
    method.to(device).to(memory_format=torch.channels_last)
    if device.type == "cpu":
        keep_freed_memory()
    opt = make_optimizer(method, optimizer, lr, weight_decay)
    warmup = max(1, steps // 20) if warmup_steps is None else warmup_steps
    start, history = 0, []
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, device)
        method.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, history = state["step"], state.get("history", [])
    step_fn = _compiled_or_eager(method.training_step) if compile else method.training_step
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def checkpoint(step: int) -> None:
        if checkpoint_path is not None and rank_and_world_size()[0] == 0:  # one writer under DDP
            save_checkpoint(checkpoint_path, {"model": method.state_dict(), "optimizer": opt.state_dict(),
                                              "step": step, "history": history})

    method.train()
    window: list[dict[str, Tensor]] = []
    t0 = time.perf_counter()
    t_log, images_since_log = t0, 0
    rank, _ = rank_and_world_size()
    bar = tqdm(total=steps, initial=start, disable=not progress or rank != 0, dynamic_ncols=True, mininterval=1.0)
    data = _batches(loader)
    for step in range(start, steps):
        # The named ranges show up in torch.profiler traces (benchmarks/profile_step.py); without
        # a profiler running each costs about a microsecond.
        with record_function("views"):
            epoch, batch = next(data)
            batch = _to_device(batch, device)
        for group in opt.param_groups:
            group["lr"] = lr * group["lr_scale"] * warmup_cosine(step, steps, warmup)
        with record_function("forward"), autocast:
            out = step_fn(batch)
        with record_function("backward"):
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
        with record_function("optimizer"):
            average_gradients(method)  # no-op in one process; DDP's gradient averaging under torchrun
            opt.step()
            method.on_after_step(step, steps)
        window.append({k: v.detach() for k, v in out.items()})
        images_since_log += len(batch.labels)

        last = step + 1 == steps
        if (step + 1) % log_every == 0 or last or device.type == "cpu":
            _raise_if_non_finite(window, step + 1 - len(window))
        if (step + 1) % log_every == 0 or last:
            now = time.perf_counter()
            record = {"step": step + 1, "epoch": epoch, "lr": lr * warmup_cosine(step, steps, warmup),
                      "time_s": now - t0, "images_per_s": images_since_log / (now - t_log)}
            record.update({k: torch.stack([w[k].float() for w in window]).mean().item() for k in window[0]})
            if evaluate is not None and ((step + 1) % evaluate_every == 0 or last):
                record.update(_evaluated(method, evaluate))
                paused = time.perf_counter() - now
                t0, now = t0 + paused, now + paused  # the clock stops while evaluating
            history.append(record)
            window, t_log, images_since_log = [], now, 0
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            if checkpoint_every and (step + 1) % checkpoint_every == 0:
                checkpoint(step + 1)
            if max_seconds is not None and now - t0 > max_seconds:
                bar.update(step + 1 - bar.n)
                break
        bar.update(1)
        if on_step is not None:
            on_step(step + 1)
    bar.close()
    checkpoint(history[-1]["step"] if history else start)
    method.eval()
    return history


def _evaluated(method: Method, evaluate: Callable[[Method], dict[str, float]]) -> dict[str, float]:
    """Return ``evaluate(method)`` run in eval mode without gradients, back in train mode after."""
    method.eval()
    with torch.no_grad():
        values = evaluate(method)
    method.train()
    return values


def _compiled_or_eager(fn: Callable[[Batch], dict[str, Tensor]]) -> Callable[[Batch], dict[str, Tensor]]:
    """Return ``torch.compile(fn)`` that falls back to ``fn`` (with a warning) if compiling fails.

    Inductor cannot compile every step (MoCo's in-place queue and permuted key batch, for one);
    training must not depend on it, it only makes steps faster."""
    compiled = torch.compile(fn)
    current = [compiled]

    def step(batch: Batch) -> dict[str, Tensor]:
        if current[0] is fn:
            return fn(batch)
        try:
            return current[0](batch)
        except Exception as err:  # backend failures come as several exception types
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); "
                          "continuing without compilation", stacklevel=2)
            current[0] = fn
            return fn(batch)

    return step


def _raise_if_non_finite(window: list[dict[str, Tensor]], first_step: int) -> None:
    """Raise ``NonFiniteLossError`` naming the first step of ``window`` with a non-finite loss."""
    losses = torch.stack([w["loss"].float() for w in window])
    if bool(torch.isfinite(losses).all()):
        return
    i = int((~torch.isfinite(losses)).nonzero()[0])
    terms = ", ".join(f"{k}={float(v):.4g}" for k, v in window[i].items())
    raise NonFiniteLossError(
        f"non-finite loss at step {first_step + i + 1}: {terms}. Lower the learning rate, check the "
        "inputs for NaNs, or raise the temperature; the last checkpoint (if any) was kept."
    )
