"""The sequence dataset and CPC (chapter 5)."""

from __future__ import annotations

import pytest
import torch

from sslcourse.data.sequences import CYCLES, FREQUENCIES, SequenceLoader, make_sequences
from sslcourse.methods.cpc import CPC
from sslcourse.train import fit


def test_sequences_are_deterministic_balanced_and_follow_their_cycle():
    a, b = make_sequences(60, length=128, seed=3), make_sequences(60, length=128, seed=3)
    assert torch.equal(a.signals, b.signals) and a.signals.shape == (60, 1, 128)
    assert torch.bincount(a.labels).tolist() == [10] * len(CYCLES)
    for seq, label in zip(a.symbols, a.labels, strict=True):
        changes = seq[1:][seq[1:] != seq[:-1]]  # the symbols entered, in order
        prev = seq[0]
        cycle = CYCLES[int(label)]
        for s in changes:
            assert cycle[(cycle.index(int(prev)) + 1) % 4] == int(s)
            prev = s
    # every class uses every pitch: the symbol histogram does not identify the class
    for label in range(len(CYCLES)):
        counts = torch.bincount(a.symbols[a.labels == label].flatten(), minlength=len(FREQUENCIES))
        assert (counts > 0).all()


def test_sequence_loader_rejects_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="batch_size"):
        SequenceLoader(make_sequences(8, length=64), batch_size=16)


def test_cpc_loss_falls_and_context_beats_random_on_the_order():
    torch.manual_seed(0)
    train, test = make_sequences(1000, seed=0), make_sequences(400, seed=1)
    cpc = CPC(context_dim=64)

    def probe_accuracy() -> float:
        from sslcourse.evaluate import linear_probe

        with torch.no_grad():
            cpc.eval()
            return linear_probe(cpc.encode(train.signals), train.labels, cpc.encode(test.signals),
                                test.labels).accuracy

    before = probe_accuracy()
    history = fit(cpc, SequenceLoader(train, 64), 300, lr=2e-3, progress=False, log_every=10)
    assert history[-1]["loss"] < history[0]["loss"] - 0.5
    assert probe_accuracy() > before + 0.1
