"""Checkpoints of ``fit``: written atomically, holding everything a resumed run needs to
continue as if it had never stopped (weights, optimizers, history, random generators, the
loader's position)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .methods.base import Method


class CheckpointError(RuntimeError):
    """Raised when a checkpoint cannot be read; the file on disk is left untouched."""


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


@dataclass
class Progress:
    """Where a run of ``fit`` is: steps done of ``total_steps``, the loader's epoch, the history
    records so far and the step values not yet averaged into a record (``window``)."""

    step: int
    total_steps: int
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    window: list[dict[str, torch.Tensor]] = field(default_factory=list)


def training_state(method: Method, optimizers: dict[str | None, torch.optim.Optimizer], loader: object,
                   progress: Progress, extra: dict | None = None) -> dict:
    """What a checkpoint holds: everything a resumed run needs to continue as if never stopped,
    plus ``extra`` entries (e.g. how to rebuild the run)."""
    return {**(extra or {}), "model": method.state_dict(),
            "optimizer": {p: o.state_dict() for p, o in optimizers.items()},
            "step": progress.step, "total_steps": progress.total_steps, "epoch": progress.epoch,
            "history": progress.history, "window": [{k: v.cpu() for k, v in w.items()} for w in progress.window],
            "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}}


def restore_training_state(state: dict, method: Method, optimizers: dict[str | None, torch.optim.Optimizer],
                           loader: object, total_steps: int) -> Progress:
    """Load ``state`` (``training_state``) into the method, optimizers, loader and generators;
    return the run's progress. A run of another length is refused: its schedule would differ."""
    if state.get("total_steps", total_steps) != total_steps:
        raise CheckpointError(f"the checkpoint belongs to a run of {state['total_steps']} steps, not {total_steps}: "
                              "resume with the same number of steps, or start elsewhere to train another schedule")
    method.load_state_dict(state["model"])
    if "param_groups" in state["optimizer"]:  # written before checkpoints held one optimizer per player
        state["optimizer"] = {None: state["optimizer"]}
    if set(state["optimizer"]) != set(optimizers):
        raise CheckpointError(f"the checkpoint has optimizers {sorted(map(str, state['optimizer']))}, "
                              f"this method {sorted(map(str, optimizers))}: it was written by another method")
    for player, opt in optimizers.items():
        opt.load_state_dict(state["optimizer"][player])
    if state.get("loader") is not None and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(state["loader"])
    if "rng" in state:
        torch.set_rng_state(state["rng"]["torch"].cpu())
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
    device = next(method.parameters()).device
    window = [{k: v.to(device) for k, v in w.items()} for w in state.get("window", [])]
    return Progress(state["step"], total_steps, state.get("epoch", 0), state.get("history", []), window)
