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


def check_uses_training_labels(methods: set[str]) -> bool:
    """Ch. 1a exercise: which evaluations fit or vote with the training labels?"""
    expected = {"linear probe", "kNN", "NCC", "fine-tuning"}
    given = {m.strip() for m in methods}
    missing, extra = expected - given, given - expected
    return _verdict(
        not missing and not extra,
        "Only k-means is label-free: NMI/ARI use labels just to score its clusters.",
        (f"Think again about {', '.join(sorted(missing | extra))}. " if missing | extra else "")
        + "Which of them needs a label to fit a weight, cast a vote or compute a centre?",
    )


def check_mig_permutation(value: float) -> bool:
    """Ch. 1a exercise: MIG of permuted, positively rescaled true factors."""
    return _verdict(
        float(value) > 0.9,
        "MIG ignores which dimension holds a factor and invertible rescalings: it stays about 1.",
        "Mutual information does not change under an invertible map of one variable, and MIG only "
        "asks that each factor be captured by a single dimension, not by a particular one.",
    )


def check_linear_cka(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Ch. 1b exercise: a learner's linear CKA against the library's on random inputs."""
    from .similarity import linear_cka

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 12, generator=gen, dtype=torch.float64) + 3.0  # uncentred on purpose
    y = x[:, :6] @ torch.randn(6, 8, generator=gen, dtype=torch.float64) + torch.randn(100, 8, generator=gen,
                                                                                      dtype=torch.float64)
    try:
        got = float(fn(x, y))
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    want = linear_cka(x, y)
    return _verdict(abs(got - want) < 1e-6, f"{got:.6f} matches the library.",
                    f"You got {got:.6f}, expected {want:.6f}. Did you centre each column first?")


def check_linear_invariant_measures(names: set[str]) -> bool:
    """Ch. 1b exercise: the measures unchanged by an invertible linear map of X."""
    expected = {"mean CCA", "R2 CCA", "R2 LR"}
    given = {n.strip() for n in names}
    wrong = sorted(given ^ expected)
    return _verdict(
        not wrong,
        "Mean CCA, R2_CCA and R2_LR depend only on the column space of X. PWCCA weighs by X's own "
        "columns and SVCCA truncates X's principal components: both see the map.",
        f"Look again at: {', '.join(wrong)}. A measure that depends only on the span of X's columns "
        "cannot see an invertible linear map.",
    )
