"""Schedules as pure functions of the step: the learning rate's warm-up and cosine decay, and the
EMA momentum of a target network (Course: :ref:`ch6-distillation`, :ref:`ch6-seven-methods`)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0) -> float:
    """Return the learning-rate multiplier at ``step``: linear warm-up from 0 to 1 over
    ``warmup_steps``, then a cosine decay to ``final_fraction`` at ``total_steps``.

    SimCLR, BYOL and most SSL recipes use 10 warm-up epochs then cosine decay
    (Goyal et al. 2017 for warm-up; Loshchilov & Hutter 2017 for the cosine)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """Return the EMA momentum at ``step``, rising from ``base`` to ``final`` along a cosine
    (BYOL, Grill et al. 2020, section 3.2: tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2)."""
    progress = min(1.0, step / max(1, total_steps))
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2
