from __future__ import annotations

import itertools
import math
import os
import resource
import signal
from pathlib import Path

import pytest
import torch

from sslcourse import augment
from sslcourse.backbones import ConvNet
from sslcourse.data import DeviceLoader, MultiViewLoader, make_shapes
from sslcourse.methods import SimCLR, Supervised
from sslcourse.schedules import cosine_momentum, warmup_cosine
from sslcourse.train import (
    CheckpointError,
    NonFiniteLossError,
    TrainingInterrupted,
    fit,
    keep_freed_memory,
    load_checkpoint,
    seed_everything,
)


def tiny_setup(method_cls=SimCLR):
    seed_everything(0)
    data = make_shapes(256, 12, seed=0, captions=False)
    loader = MultiViewLoader(DeviceLoader(data, 32), augment.shapes_views(12))
    backbone = ConvNet(width=8, depth=2)
    method = SimCLR(backbone, hidden_dim=32) if method_cls is SimCLR else Supervised(backbone, 8)
    return method, loader


def test_simclr_loss_falls():
    method, loader = tiny_setup()
    history = fit(method, loader, 60, log_every=10, progress=False)
    assert history[-1]["loss"] < history[0]["loss"] - 0.1


def test_supervised_accuracy_rises():
    method, loader = tiny_setup(Supervised)
    history = fit(method, loader, 60, lr=5e-3, log_every=10, progress=False)
    assert history[-1]["train_accuracy"] > history[0]["train_accuracy"]


def test_history_records_are_table_rows():
    method, loader = tiny_setup()
    history = fit(method, loader, 20, log_every=5, progress=False)
    assert [h["step"] for h in history] == [5, 10, 15, 20]
    assert {"step", "epoch", "lr", "time_s", "images_per_s", "loss", "z_std"} <= set(history[0])


class FakeClock:
    """A clock that advances 0.01 s per reading, plus whatever a test adds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


def test_evaluation_joins_the_history_in_eval_mode_and_training_resumes():
    method, loader = tiny_setup()
    modes, clock = [], FakeClock()

    def evaluate(m):
        modes.append((m.training, torch.is_grad_enabled()))
        clock.now += 100.0  # an evaluation this slow must not show in the training clock
        return {"probe": float(len(modes))}

    history = fit(method, loader, 25, log_every=5, evaluate=evaluate, evaluate_every=10, progress=False, clock=clock)
    assert [h.get("probe") for h in history] == [None, 1.0, None, 2.0, 3.0]  # steps 10, 20 and the last
    assert modes == [(False, False)] * 3
    assert all(b["time_s"] - a["time_s"] < 1.0 for a, b in itertools.pairwise(history))
    assert history[-1]["images_per_s"] > 5 * 32 / 1.0  # 5 steps of 32 images in under a (fake) second


def test_max_seconds_stops_after_the_log_step_that_passes_it():
    method, loader = tiny_setup()
    clock = FakeClock()

    def one_tenth_of_a_second_per_step(step: int) -> None:
        clock.now += 0.1

    history = fit(method, loader, 100, log_every=5, max_seconds=1.2, progress=False, clock=clock,
                  on_step=one_tenth_of_a_second_per_step)
    assert [h["step"] for h in history] == [5, 10, 15]  # 1.5 s at step 15: the first log step past 1.2 s


def test_evaluate_every_must_be_a_multiple_of_log_every():
    method, loader = tiny_setup()
    with pytest.raises(ValueError, match="multiple of log_every"):
        fit(method, loader, 10, log_every=4, evaluate=lambda m: {}, evaluate_every=6, progress=False)


def test_on_step_sees_every_step():
    method, loader = tiny_setup()
    seen = []
    fit(method, loader, 7, log_every=5, on_step=seen.append, progress=False)
    assert seen == list(range(1, 8))


def test_a_checkpoint_of_another_length_is_refused_and_kept(tmp_path: Path):
    ckpt = tmp_path / "run.pt"
    method, loader = tiny_setup()
    fit(method, loader, 10, log_every=5, progress=False, checkpoint_path=ckpt)
    assert load_checkpoint(ckpt)["step"] == 10 and not (tmp_path / "run.pt.tmp").exists()
    saved = ckpt.read_bytes()
    method, loader = tiny_setup()
    with pytest.raises(CheckpointError, match="run of 10 steps, not 20"):  # its schedule would differ
        fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt)
    assert ckpt.read_bytes() == saved


def test_a_resumed_run_gives_the_losses_of_an_uninterrupted_one(tmp_path: Path):
    method, loader = tiny_setup()
    uninterrupted = fit(method, loader, 20, log_every=5, progress=False)
    ckpt = tmp_path / "run.pt"
    method, loader = tiny_setup()
    fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt, checkpoint_every=5,
        max_seconds=0.0)  # stops after the first log step (5 steps), as a killed run would
    assert load_checkpoint(ckpt)["step"] == 5
    method, loader = tiny_setup()
    torch.manual_seed(123)  # whatever the generators hold now, the checkpoint's are restored
    resumed = fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt)
    assert [h["step"] for h in resumed] == [5, 10, 15, 20]
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5), (a["step"], a["loss"], b["loss"])


def test_a_run_stopped_between_log_steps_resumes_with_the_same_records(tmp_path: Path, stop_signals_not_ignored):
    method, loader = tiny_setup()
    uninterrupted = fit(method, loader, 20, log_every=5, progress=False)
    ckpt = tmp_path / "run.pt"

    method, loader = tiny_setup()
    with pytest.raises(TrainingInterrupted):
        fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt,
            on_step=signal_at_step(signal.SIGTERM, 7), checkpoint_extra={"run": "how to rebuild it"})
    assert load_checkpoint(ckpt)["run"] == "how to rebuild it"
    method, loader = tiny_setup()
    resumed = fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt)
    # the record of steps 6-10 averages steps 6 and 7 (saved with the checkpoint) and 8-10
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in uninterrupted], abs=1e-5)


@pytest.fixture
def stop_signals_not_ignored():
    """SIGINT and SIGTERM as in an interactive session (a background job, like CI's, ignores SIGINT)."""
    previous = {s: signal.signal(s, h) for s, h in [(signal.SIGINT, signal.default_int_handler),
                                                    (signal.SIGTERM, signal.SIG_DFL)]}
    yield previous
    for s, h in previous.items():
        signal.signal(s, h)


def signal_at_step(signum: int, at: int):
    def send(step: int) -> None:
        if step == at:
            os.kill(os.getpid(), signum)
    return send


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_finishes_the_step_saves_and_raises(tmp_path: Path, signum, stop_signals_not_ignored):
    method, loader = tiny_setup()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(TrainingInterrupted, match=f"{signal.Signals(signum).name} after step 3") as stop:
        fit(method, loader, 20, log_every=5, progress=False, checkpoint_path=ckpt, on_step=signal_at_step(signum, 3))
    assert stop.value.step == 3 and load_checkpoint(ckpt)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers before fit are back
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_an_ignored_signal_stays_ignored(stop_signals_not_ignored):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup, or in a background job
    method, loader = tiny_setup()
    history = fit(method, loader, 6, log_every=3, progress=False, on_step=signal_at_step(signal.SIGINT, 2))
    assert history[-1]["step"] == 6


def test_zero_steps_is_an_error():
    method, loader = tiny_setup()
    with pytest.raises(ValueError, match="at least 1"):
        fit(method, loader, 0, progress=False)


def test_corrupted_checkpoint_is_reported_and_left_untouched(tmp_path: Path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"not a checkpoint at all")
    method, loader = tiny_setup()
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        fit(method, loader, 10, progress=False, checkpoint_path=ckpt)
    assert ckpt.read_bytes() == b"not a checkpoint at all"


def test_non_finite_loss_stops_with_step_and_terms():
    method, loader = tiny_setup()
    original = method.training_step

    def poisoned(batch):
        out = original(batch)
        if poisoned.calls == 3:
            out["loss"] = out["loss"] * float("nan")
        poisoned.calls += 1
        return out

    poisoned.calls = 0
    method.training_step = poisoned
    with pytest.raises(NonFiniteLossError, match=r"step 4: loss=nan, z_std="):
        fit(method, loader, 10, progress=False)


def test_warmup_cosine_shape():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)


def test_cosine_momentum_goes_from_base_to_one():
    assert cosine_momentum(0, 10) == pytest.approx(0.996)
    assert cosine_momentum(10, 10) == pytest.approx(1.0)
    assert math.isclose(cosine_momentum(5, 10), 0.998)


def test_unknown_optimizer_lists_valid_names():
    method, loader = tiny_setup()
    with pytest.raises(ValueError, match="valid names: adamw, sgd"):
        fit(method, loader, 2, optimizer="lamb", progress=False)


def test_backbone_without_feature_dim_is_rejected():
    with pytest.raises(TypeError, match="feature_dim"):
        SimCLR(torch.nn.Linear(3, 3))


def test_compile_failure_falls_back_to_eager(monkeypatch):
    import sslcourse.train as train_module

    def broken_compile(fn):
        def fail(batch):
            raise RuntimeError("backend cannot compile this graph")
        return fail

    monkeypatch.setattr(train_module.torch, "compile", broken_compile)
    method, loader = tiny_setup()
    with pytest.warns(UserWarning, match="torch.compile failed"):
        history = fit(method, loader, 5, log_every=5, progress=False, compile=True)
    assert history[-1]["step"] == 5


def test_keep_freed_memory_reuses_large_blocks_without_page_faults():
    if not keep_freed_memory():
        pytest.skip("not glibc: the setting does not apply")

    def faults_of_filling(n_floats: int) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty(n_floats).fill_(1.0)  # allocated, touched, freed
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    # 128 MB: with glibc's defaults mmap'd and unmapped every time, 32,768 page faults each,
    # every time. Kept on the heap, a freed block is reused by the next fill that finds it whole
    # (another thread's allocation can split it, and that fill then grows the heap: a CI run
    # measured [27045, 0, 32768, 32768]), so some fill after the first must fault almost nothing.
    faults = [faults_of_filling(2**25) for _ in range(6)]
    assert min(faults[1:]) < 32_768 // 10, faults
