"""Answer checks for the chapters' exercises: immediate feedback, right or wrong with a hint.

Each ``check_*`` function takes the learner's answer, prints a verdict and returns it as a
bool so notebooks (and tests) can use it. Course: every chapter's "Exercises" section.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .losses import nt_xent


def _verdict(ok: bool, right: str, hint: str) -> bool:
    print(("Correct. " + right) if ok else ("Not yet. " + hint))
    return ok


def check_nt_xent_uniform(value: float, batch_size: int = 8) -> bool:
    """Ch. 0, exercise "a loss you can compute by hand": NT-Xent at tau = 1 when all
    2N embeddings are identical."""
    expected = math.log(2 * batch_size - 1)
    return _verdict(
        abs(float(value) - expected) < 1e-3,
        f"Every one of the 2N - 1 = {2 * batch_size - 1} candidates is equally likely, so the loss is "
        f"log(2N - 1) = {expected:.4f}.",
        "With identical embeddings every similarity is the same. How many candidates does each anchor choose "
        "from, and what probability does the softmax give the positive?",
    )


def check_nt_xent_implementation(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Ch. 0/5 exercise: compare a learner's NT-Xent with the package's on random inputs."""
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=gen), torch.randn(16, 8, generator=gen)
    try:
        got = float(fn(z1, z2, 0.5))
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    want = float(nt_xent(z1, z2, 0.5))
    return _verdict(
        abs(got - want) < 1e-4,
        f"Your loss ({got:.5f}) matches sslcourse.losses.nt_xent.",
        f"Your loss is {got:.5f}, the reference gives {want:.5f}. Did you L2-normalise, divide by the "
        "temperature, exclude each sample's similarity with itself and average over all 2N anchors?",
    )


def check_chance_accuracy(value: float, num_classes: int = 8) -> bool:
    """Ch. 0 exercise: the accuracy of guessing uniformly among ``num_classes`` balanced classes."""
    return _verdict(
        abs(float(value) - 1 / num_classes) < 1e-3 or abs(float(value) - 100 / num_classes) < 1e-1,
        f"1/{num_classes} = {1 / num_classes:.3f}: any representation must beat this to be useful.",
        "With balanced classes a uniform guess is right once in how many tries?",
    )
