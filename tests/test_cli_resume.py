"""``python -m sslcourse train --out`` survives being stopped: real subprocesses are sent SIGTERM
or SIGKILL mid-run, rerun with the same command, and compared with an uninterrupted run.

All the processes run in one module fixture, three at a time, because each pays a few seconds
of start-up (importing torch, rendering the shapes, the final kNN) that dwarfs its training.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sslcourse.train import load_checkpoint

# 60 steps of batch 32 train in a few seconds on one core; the first checkpoint (step 10) comes
# early, so the signals land well before the end even on a loaded machine.
STEPS, EVERY, BATCH, LOG_EVERY = 60, 10, 32, 10
ROOT = Path(__file__).resolve().parents[1]
# One thread per process, because three run at once on two cores: with torch's default of two
# threads each, a run trained 88 images/s instead of 465 (measured). Resuming is exact at either
# count, but all the runs compared must use the same one: a count changes the CPU kernels'
# summation order, and so the final loss (3.1034 on one thread, 3.0904 on two).
ENV = {**os.environ, "SSLCOURSE_PROFILE": "ci", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
TIMEOUT_S = 180


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "sslcourse", "train", "simclr", "--profile", "ci", "--steps", str(STEPS),
            "--batch-size", str(BATCH), "--out", str(out), "--checkpoint-every", str(EVERY), "--no-progress"]


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(_command(out), env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _signal_at_first_checkpoint(targets: dict[str, tuple[subprocess.Popen, Path, int]]) -> None:
    """Poll until each target's checkpoint first exists (``save_checkpoint`` renames it into place
    whole), then send that target its signal. All targets are watched at once, so that none runs
    on while the test waits for another."""
    deadline = time.monotonic() + TIMEOUT_S
    waiting = dict(targets)
    while waiting:
        for name, (proc, out, signum) in list(waiting.items()):
            if out.exists():
                proc.send_signal(signum)
                del waiting[name]
            elif proc.poll() is not None:
                pytest.fail(f"{name} ended (rc {proc.returncode}) before its first checkpoint:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            for proc, _, _ in waiting.values():
                proc.kill()
            pytest.fail(f"no checkpoint for {sorted(waiting)} after {TIMEOUT_S} s")
        time.sleep(0.005)


def _finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    lines = stdout.strip().splitlines()
    return {"rc": proc.returncode, "stderr": stderr, "line": json.loads(lines[-1]) if lines else None}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run, in two waves of three processes: an uninterrupted run, one stopped by SIGTERM and one
    by SIGKILL at their first checkpoint; then the two stopped ones again, and the finished one
    again. Returns each process's result and checkpoint."""
    folder = tmp_path_factory.mktemp("cli_resume")
    paths = {name: folder / f"{name}.pt" for name in ["reference", "sigterm", "sigkill"]}
    procs = {name: _start(path) for name, path in paths.items()}
    _signal_at_first_checkpoint({name: (procs[name], paths[name], signum)
                                 for name, signum in [("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL)]})
    first = {name: _finish(proc) for name, proc in procs.items()}
    stopped = {name: load_checkpoint(paths[name]) for name in ["sigterm", "sigkill"]}
    procs = {name: _start(path) for name, path in paths.items()}  # the same commands again
    second = {name: _finish(proc) for name, proc in procs.items()}
    return {"first": first, "stopped": stopped, "second": second,
            "final": {name: load_checkpoint(path) for name, path in paths.items()}}


def test_sigterm_exits_143_with_a_checkpoint_of_the_step_it_was_at(runs):
    result, state = runs["first"]["sigterm"], runs["stopped"]["sigterm"]
    assert result["rc"] == 128 + signal.SIGTERM, result["stderr"]
    said = re.search(r"interrupted by SIGTERM after step (\d+); checkpoint saved to .*sigterm\.pt: "
                     r"run the same command to resume", result["stderr"])
    assert said is not None, result["stderr"]
    assert state["step"] == int(said.group(1)) >= EVERY
    # the loader's position is counted by the loader itself: it gave exactly that many batches
    # (all within the first epoch: 6,000 images make 187 batches of 32)
    assert state["loader"]["position"] == state["step"]
    assert state["step"] <= STEPS - LOG_EVERY, "stopped too late to compare the last history record"
    assert state["run"]["method"] == "simclr"  # `evaluate` can read a stopped run too


def test_sigkill_loses_at_most_one_checkpoint_interval(runs):
    result, state = runs["first"]["sigkill"], runs["stopped"]["sigkill"]
    assert result["rc"] == -signal.SIGKILL and result["line"] is None
    # killed at once after the first checkpoint appeared: the last one written is a whole
    # multiple of the interval, and the run cannot have reached the next multiple without saving it
    assert state["step"] % EVERY == 0 and EVERY <= state["step"] <= STEPS - LOG_EVERY
    assert state["loader"]["position"] == state["step"]
    assert state["history"][-1]["step"] == state["step"]


@pytest.mark.parametrize("stopped_by", ["sigterm", "sigkill"])
def test_resumed_run_ends_as_an_uninterrupted_one(runs, stopped_by):
    reference, resumed = runs["final"]["reference"], runs["final"][stopped_by]
    result = runs["second"][stopped_by]
    assert result["rc"] == 0, result["stderr"]
    assert result["line"]["steps"] == resumed["step"] == reference["step"] == STEPS
    # The checkpoint restores the weights, the optimizer, the RNGs and the loader position, and
    # each process runs on one thread: the resumed run is the uninterrupted one, bit for bit
    # (measured: loss difference 0.0, largest weight difference 0.0).
    assert resumed["history"][-1]["loss"] == reference["history"][-1]["loss"]
    assert result["line"]["final_loss"] == runs["first"]["reference"]["line"]["final_loss"]
    for name, weight in reference["model"].items():
        assert torch.equal(resumed["model"][name], weight), name
    assert resumed["run"]["method"] == "simclr"  # `evaluate` can rebuild the resumed run
    # images/second counts only the steps this process trained
    assert result["line"]["images_per_s"] is not None and result["line"]["images_per_s"] > 0


def test_rerunning_a_finished_run_trains_nothing_and_reports_no_speed(runs):
    result = runs["second"]["reference"]
    assert result["rc"] == 0, result["stderr"]
    assert result["line"]["steps"] == STEPS and result["line"]["images_per_s"] is None
    assert runs["final"]["reference"]["history"][-1]["loss"] == pytest.approx(
        runs["first"]["reference"]["line"]["final_loss"], abs=1e-4)
