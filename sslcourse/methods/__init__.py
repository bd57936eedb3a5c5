"""One small class per method, all with the contract of ``methods.base.Method``."""

from __future__ import annotations

from torch import nn

from .base import Method
from .cmc import CMC
from .moco import MoCo
from .simclr import SimCLR
from .supcon import SupCon
from .supervised import Supervised

METHODS = ["simclr", "moco", "supcon", "supervised"]


def build_method(name: str, backbone: nn.Module, num_classes: int = 10,
                 head_hidden_dim: int | None = None, temperature: float | None = None) -> Method:
    """Return method ``name`` (one of ``METHODS``) around ``backbone`` with paper defaults,
    except the projection-head width and temperature when given (the profiles set them)."""
    kw = {} if head_hidden_dim is None else {"hidden_dim": head_hidden_dim}
    if temperature is not None:
        kw["temperature"] = temperature
    if name == "simclr":
        return SimCLR(backbone, **kw)
    if name == "moco":  # the profiles' temperature is calibrated for SimCLR; MoCo keeps its own 0.2
        return MoCo(backbone, **{k: v for k, v in kw.items() if k != "temperature"})
    if name == "supcon":
        return SupCon(backbone, **kw)
    if name == "supervised":
        return Supervised(backbone, num_classes)
    raise ValueError(f"unknown method {name!r}; valid names: {', '.join(METHODS)}")


__all__ = ["CMC", "METHODS", "Method", "MoCo", "SimCLR", "SupCon", "Supervised", "build_method"]
