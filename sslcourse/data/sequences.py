"""A procedural sequence dataset for CPC (Course: :ref:`ch5b-cpc`): noisy tones whose class is the
*order* in which four pitches follow each other.

Every sequence is a chain of short segments; each segment is a sine at one of four
frequencies (the "symbols"), and each class is one cyclic order of the four symbols
(0 -> 1 -> 2 -> 3 -> 0 for one class, 0 -> 2 -> 1 -> 3 -> 0 for another, ...: the six cyclic
orders of four symbols). The sequence starts anywhere in its cycle and segments last a random
number of samples, so every class uses every pitch equally often: a bag of local features
(which pitches occur, how loud) carries no class information. Only *what comes after what*
does, which is exactly what a model that predicts the future must learn.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .loaders import Batch

FREQUENCIES = (0.08, 0.14, 0.22, 0.32)  # cycles per sample, well below Nyquist (0.5)
# The six cyclic orders of the four symbols: fix symbol 0 first, permute the other three.
CYCLES = [(0, *rest) for rest in itertools.permutations((1, 2, 3))]


@dataclass
class SequenceSet:
    """Signals (N, 1, L) float32, labels (N,) int64 (index into ``CYCLES``), and the symbol
    of every sample (N, L), which the chapter uses to show what the context has learned."""

    signals: Tensor
    labels: Tensor
    symbols: Tensor

    def __len__(self) -> int:
        return len(self.signals)


def make_sequences(n: int, length: int = 256, segment: tuple[int, int] = (16, 40), noise: float = 0.3,
                   seed: int = 0) -> SequenceSet:
    """Return ``n`` sequences of ``length`` samples, classes balanced over the six ``CYCLES``.

    Args:
        segment: (min, max) segment length in samples, drawn uniformly per segment.
        noise: std of the added Gaussian noise (the tone amplitude is 0.5-1.5).
        seed: the dataset is a pure function of its arguments.
    """
    if n < 1 or length < 1:
        raise ValueError(f"n and length must be positive, got n={n}, length={length}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CYCLES)
    rng.shuffle(labels)
    symbols = np.empty((n, length), dtype=np.int64)
    for i, label in enumerate(labels):
        cycle, pos, t = CYCLES[label], int(rng.integers(4)), 0
        while t < length:
            run = int(rng.integers(segment[0], segment[1] + 1))
            symbols[i, t : t + run] = cycle[pos % 4]
            pos, t = pos + 1, t + run
    freq = np.asarray(FREQUENCIES)[symbols]
    phase = np.cumsum(2 * np.pi * freq, axis=1) + rng.uniform(0, 2 * np.pi, (n, 1))  # continuous phase
    amplitude = rng.uniform(0.5, 1.5, (n, 1))
    signals = amplitude * np.sin(phase) + noise * rng.standard_normal((n, length))
    return SequenceSet(torch.tensor(signals, dtype=torch.float32).unsqueeze(1), torch.tensor(labels),
                       torch.tensor(symbols))


class SequenceLoader:
    """Yield shuffled ``Batch``es of one view (the raw signals; CPC uses no augmentation)."""

    def __init__(self, data: SequenceSet, batch_size: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        if not 1 <= batch_size <= len(data):
            raise ValueError(f"batch_size must be in 1..{len(data)}, got {batch_size}")
        self.signals, self.labels = data.signals.to(device), data.labels.to(device)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.signals) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        order = torch.randperm(len(self.signals), generator=self.generator).to(self.signals.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield Batch(views=[self.signals[idx]], labels=self.labels[idx])
