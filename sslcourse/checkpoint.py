"""Checkpoints of ``fit``: written atomically, holding everything a resumed run needs to
continue as if it had never stopped (weights, optimizers, history, random generators, the
loader's position)."""

from __future__ import annotations

import os
import random
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


def training_state(method: Method, optimizers: dict[str | None, torch.optim.Optimizer], loader: object, step: int,
           epoch: int, history: list[dict]) -> dict:
    """What a checkpoint holds: everything a resumed run needs to continue as if never stopped."""
    return {"model": method.state_dict(), "optimizer": {p: o.state_dict() for p, o in optimizers.items()},
            "step": step, "epoch": epoch, "history": history,
            "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}}


def restore_training_state(state: dict, method: Method, optimizers: dict[str | None, torch.optim.Optimizer],
             loader: object) -> tuple[int, int, list[dict]]:
    """Load ``state`` (``training_state``) into the method, optimizers, loader and generators; return
    (step, epoch, history)."""
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
    return state["step"], state.get("epoch", 0), state.get("history", [])
