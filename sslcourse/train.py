"""``fit``: the one training loop of the course, for every method (Course: :ref:`ch0-first-run`).

What it does, in order, at every step: make the batch's views (the loader), run the
method's ``training_step`` under bf16 autocast on a GPU, step the optimizer with the
warm-up + cosine learning rate, call ``on_after_step`` (EMA, queues, centers), and every
``log_every`` steps turn the accumulated diagnostics into one history record. Host-device
synchronisation happens only at those log steps, so a GPU is never kept waiting.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.profiler import record_function
from tqdm import tqdm

from .checkpoint import (
    CheckpointError,
    Progress,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from .data import Batch
from .distributed import average_gradients, rank_and_world_size
from .methods.base import Method
from .schedules import warmup_cosine

__all__ = ["CheckpointError", "NonFiniteLossError", "TrainingInterrupted", "default_device", "fit", "keep_freed_memory",
           "load_checkpoint", "make_optimizer", "make_optimizers", "save_checkpoint", "seed_everything"]

OPTIMIZERS = ["adamw", "sgd"]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class NonFiniteLossError(RuntimeError):
    """Raised by ``fit`` when the loss becomes NaN or infinite."""


class TrainingInterrupted(RuntimeError):
    """Raised by ``fit`` after SIGINT (Ctrl-C) or SIGTERM (a closing Colab session, a cluster's
    preemption): the step in progress was finished and, with a checkpoint path, saved."""

    def __init__(self, signum: int, step: int, checkpoint_path: str | Path | None) -> None:
        saved = f"; checkpoint saved to {checkpoint_path}: run again to resume" if checkpoint_path else ""
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}{saved}")
        self.signum, self.step, self.checkpoint_path = signum, step, checkpoint_path


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
    return _optimizer(specs, name, lr, weight_decay)


def make_optimizers(method: Method, name: str = "adamw", lr: float = 2e-3,
                    weight_decay: float = 1e-4) -> dict[str | None, torch.optim.Optimizer]:
    """Return the optimizers ``fit`` steps, by player: {None: one optimizer} for most methods,
    one per name of ``method.players`` (each over the parameter groups tagged with it) for
    methods updated in turn, such as a GAN's discriminator and generator."""
    if not method.players:
        return {None: make_optimizer(method, name, lr, weight_decay)}
    specs = method.param_groups()
    untagged = [g for g in specs if g.get("player") not in method.players]
    if untagged:
        raise ValueError(f"{type(method).__name__}.param_groups() must tag every group with one of its players "
                         f"{method.players} (key 'player'); {len(untagged)} group(s) are not")
    return {player: _optimizer([g for g in specs if g["player"] == player], name, lr, weight_decay)
            for player in method.players}


def _optimizer(specs: list[dict], name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    groups = []
    for spec in specs:
        params = [p for p in spec["params"] if p.requires_grad]
        scale = spec.get("lr_scale", 1.0)
        decay = spec.get("weight_decay", weight_decay)  # a group may set its own (e.g. a last layer's)
        groups += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": decay, "lr_scale": scale},
                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr_scale": scale}]
    groups = [g for g in groups if g["params"]]
    fused = {"fused": True} if all(p.is_cuda for g in groups for p in g["params"]) else {}
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **fused)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, **fused)
    raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")


def _batches(loader: Iterable[Batch], epoch: int = 0) -> Iterator[tuple[int, Batch]]:
    """Yield (epoch, batch) forever, re-iterating the loader at each epoch."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield epoch, batch
        if empty:
            raise ValueError("the loader yielded no batch (dataset smaller than one batch?)")
        epoch += 1


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
    clock: Callable[[], float] = time.perf_counter,
    checkpoint_extra: dict | None = None,
) -> list[dict]:
    """Train ``method`` for ``steps`` optimizer steps; return one history record per log step.
    The method is left in eval mode, on ``device``.

    Args:
        method: any method of ``sslcourse.methods`` (the training_step contract). A method
            with ``players`` gets one optimizer per player, stepped in turn at every step.
        loader: re-iterable source of ``Batch`` (e.g. ``MultiViewLoader``); re-iterated per epoch.
        steps: total optimizer steps (the schedule's length).
        lr, weight_decay, optimizer: see ``make_optimizer``; lr follows ``warmup_cosine``.
        warmup_steps: linear warm-up length (default 5% of ``steps``).
        device: default ``default_device()``. Images and weights are channels_last; on CUDA
            the step runs under bf16 autocast; on a CPU ``keep_freed_memory`` is applied.
        compile: wrap ``training_step`` in ``torch.compile``.
        checkpoint_path: if given, resume from it when it exists, and save to it (atomically)
            every ``checkpoint_every`` steps (0: only at the end), and when SIGINT or SIGTERM
            stops the run. A checkpoint holds the weights, the optimizer, the history, the
            random generators and the loader's position (``state_dict``, if it has one), so a
            resumed run sees the batches an uninterrupted one would. Resuming needs the same
            ``steps``.
        log_every: steps per history record (and per host-device synchronisation).
        progress: show a tqdm progress bar.
        max_seconds: stop early (after a log step) once this much training time has passed.
        evaluate: called with the method in eval mode every ``evaluate_every`` steps (and at
            the last step); the values it returns join that step's history record (e.g. an
            online kNN accuracy for time-to-accuracy curves). Its time is left out of
            "time_s" and "images_per_s", so they measure training alone.
        evaluate_every: steps between evaluations; a multiple of ``log_every``.
        on_step: called after every optimizer step with the number of steps done
            (e.g. ``torch.profiler.profile.step``).
        clock: seconds, for "time_s", "images_per_s" and ``max_seconds`` (tests pass a fake one).
        checkpoint_extra: entries added to every checkpoint (e.g. how to rebuild the run).

    Returns:
        list of dicts with "step", "epoch", "lr", "time_s", "images_per_s" and the mean of
        every value ``training_step`` returned over the last ``log_every`` steps (for a method
        with players: each player's values with the player's name appended, e.g.
        "loss_generator", and "loss", their sum); ``pandas.DataFrame(history)`` gives a table.

    Raises:
        NonFiniteLossError: the loss became NaN/inf; the message names the step and terms.
        CheckpointError: ``checkpoint_path`` exists but cannot be read.
        TrainingInterrupted: SIGINT or SIGTERM arrived; the finished steps were saved.
    """
    if evaluate is not None and (evaluate_every <= 0 or evaluate_every % log_every):
        raise ValueError(f"evaluate_every={evaluate_every} must be a positive multiple of log_every={log_every}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = _prepare(method, device)
    optimizers = make_optimizers(method, optimizer, lr, weight_decay)
    warmup = max(1, steps // 20) if warmup_steps is None else warmup_steps
    done = Progress(step=0, total_steps=steps)
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        done = restore_training_state(load_checkpoint(checkpoint_path, device), method, optimizers, loader, steps)
    start, epoch, history, window = done.step, done.epoch, done.history, done.window
    step_fn = _compiled_or_eager(method.training_step) if compile else method.training_step
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def checkpoint(step: int) -> None:
        if checkpoint_path is not None and rank_and_world_size()[0] == 0:  # one writer under DDP
            progress = Progress(step, steps, epoch, history, window)
            save_checkpoint(checkpoint_path, training_state(method, optimizers, loader, progress, checkpoint_extra))

    method.train()
    timer = _Timer(clock)
    bar = tqdm(total=steps, initial=start, disable=not progress or rank_and_world_size()[0] != 0,
               dynamic_ncols=True, mininterval=1.0)
    data = _batches(loader, epoch)
    with _signals_caught() as caught:
        for step in range(start, steps):
            with record_function("views"):  # named ranges show in torch.profiler traces
                epoch, batch = next(data)
                batch = batch.to(device)
            rate = lr * warmup_cosine(step, steps, warmup)
            for opt in optimizers.values():
                for group in opt.param_groups:
                    group["lr"] = rate * group["lr_scale"]
            window.append(_update(method, step_fn, batch, optimizers, autocast))
            method.on_after_step(step, steps)
            timer.count(len(batch))

            last = step + 1 == steps
            if (step + 1) % log_every == 0 or last or device.type == "cpu":
                _raise_if_non_finite(window, step + 1 - len(window))
            if (step + 1) % log_every == 0 or last:
                record = {"step": step + 1, "epoch": epoch, "lr": rate, **timer.lap(),
                          **{k: torch.stack([w[k].float() for w in window]).mean().item() for k in window[0]}}
                if evaluate is not None and ((step + 1) % evaluate_every == 0 or last):
                    with timer.paused():
                        record.update(_evaluated(method, evaluate))
                history.append(record)
                window = []
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if checkpoint_every and (step + 1) % checkpoint_every == 0:
                    checkpoint(step + 1)
                if max_seconds is not None and record["time_s"] > max_seconds:
                    bar.update(step + 1 - bar.n)
                    break
            bar.update(1)
            if on_step is not None:
                on_step(step + 1)
            if caught:
                checkpoint(step + 1)
                bar.close()
                raise TrainingInterrupted(caught[0], step + 1, checkpoint_path)
    bar.close()
    checkpoint(history[-1]["step"] if history else start)
    method.eval()
    return history


def _prepare(method: Method, device: str | torch.device | None) -> torch.device:
    """Move ``method`` to ``device`` (default: ``default_device()``) in channels_last, the layout
    of cuDNN's and oneDNN's fast convolution kernels; on a CPU, keep freed memory."""
    device = torch.device(device) if device is not None else default_device()
    method.to(device).to(memory_format=torch.channels_last)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def _update(method: Method, step_fn: Callable[..., dict[str, Tensor]], batch: Batch,
            optimizers: dict[str | None, torch.optim.Optimizer], autocast: contextlib.AbstractContextManager
            ) -> dict[str, Tensor]:
    """One training step: for each optimizer in turn, forward, backward, step. Returns the
    step's values, detached (a player's with its name appended, and "loss" their sum)."""
    values: dict[str, Tensor] = {}
    for player, opt in optimizers.items():
        with record_function("forward"), autocast:
            out = step_fn(batch) if player is None else step_fn(batch, player)
        with record_function("backward"):
            method.zero_grad(set_to_none=True)  # every parameter: a generator's loss reaches the discriminator
            out["loss"].backward()
        with record_function("optimizer"):
            average_gradients(method)  # no-op in one process; DDP's gradient averaging under torchrun
            opt.step()
        values.update({k if player is None else f"{k}_{player}": v.detach() for k, v in out.items()})
    if None not in optimizers:
        values["loss"] = sum(values[f"loss_{player}"] for player in optimizers)
    return values


class _Timer:
    """Training time and images per second between log steps, paused while evaluating."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.start = self.last = clock()
        self.images = 0

    def count(self, images: int) -> None:
        self.images += images

    def lap(self) -> dict[str, float]:
        """Return "time_s" since the start and "images_per_s" since the last lap."""
        now = self.clock()
        lap = {"time_s": now - self.start, "images_per_s": self.images / max(now - self.last, 1e-9)}
        self.last, self.images = now, 0
        return lap

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t = self.clock()
        yield
        paused = self.clock() - t
        self.start, self.last = self.start + paused, self.last + paused


@contextlib.contextmanager
def _signals_caught() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are noted in the yielded list instead of stopping
    the process, so that ``fit`` can finish its step and save. Handlers can only be installed
    from the main thread; elsewhere the signals keep their usual effect, and so does a signal
    the process ignores (a background job's SIGINT, ``nohup``)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    watched = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]  # nohup's stay ignored
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in watched}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


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
