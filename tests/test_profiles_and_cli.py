from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from sslcourse import experiment
from sslcourse.__main__ import main
from sslcourse.data import DATASETS
from sslcourse.methods import IMAGE_METHODS
from sslcourse.profiles import PROFILES, get_profile
from sslcourse.train import TrainingInterrupted, load_checkpoint


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("SSLCOURSE_PROFILE", "ci")
    assert get_profile().name == "ci"
    assert get_profile("gpu").name == "gpu"  # an explicit name wins


def test_unknown_profile_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: " + ", ".join(PROFILES)):
        get_profile("laptop")


@pytest.mark.parametrize("argv, valid", [(["train", "nosuchmethod"], ", ".join(IMAGE_METHODS)),
                                         (["train", "simclr", "--dataset", "mnist"], ", ".join(DATASETS)),
                                         (["train", "simclr", "--profile", "huge"], ", ".join(PROFILES))])
def test_cli_rejects_unknown_names_with_the_valid_ones(argv, valid, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and valid in capsys.readouterr().err


@pytest.mark.parametrize("option, value, expected", [
    ("--steps", "0", "must be a positive integer, got 0"),  # once silently the profile's 800 steps
    ("--steps", "-5", "must be a positive integer, got -5"),  # once an IndexError
    ("--steps", "2.5", "must be a positive integer, got 2.5"),
    ("--batch-size", "0", "must be a positive integer, got 0"),
    ("--batch-size", "many", "must be a positive integer, got many"),
    ("--checkpoint-every", "-1", "must be a positive integer, got -1"),
    ("--seed", "-1", "must be a non-negative integer, got -1"),
    ("--seed", "x", "must be a non-negative integer, got x"),
])
def test_cli_rejects_bad_numbers_naming_the_option_before_training(option, value, expected, tmp_path: Path,
                                                                    capsys):
    out = tmp_path / "run.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "simclr", "--profile", "ci", "--out", str(out), "--no-progress", option, value])
    assert exit_info.value.code == 2
    assert f"error: argument {option}: {expected}" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_train_cpc_explains_it_needs_sequences(tmp_path: Path, capsys):
    out = tmp_path / "run.pt"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "cpc", "--profile", "ci", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "cpc trains on sequences, not on images" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("signum, out, code, said", [
    (signal.SIGTERM, "run.pt", 143, "interrupted by SIGTERM after step 350; checkpoint saved to {out}: "
                                    "run the same command to resume"),
    (signal.SIGINT, None, 130, "interrupted by SIGINT after step 350; no checkpoint was saved "
                               "(pass --out PATH to make a run resumable)"),
])
def test_cli_interrupted_run_says_how_to_resume_and_exits_128_plus_signal(signum, out, code, said, tmp_path: Path,
                                                                          monkeypatch, capsys):
    out = str(tmp_path / out) if out else None

    def stopped(*args, checkpoint_path=None, **kwargs):
        raise TrainingInterrupted(signum, 350, checkpoint_path)

    monkeypatch.setattr(experiment, "load_profile_data", lambda *args: (None, None))
    monkeypatch.setattr(experiment, "train_and_evaluate", stopped)
    argv = ["train", "simclr", "--profile", "ci", "--no-progress"] + (["--out", out] if out else [])
    assert main(argv) == code
    captured = capsys.readouterr()
    assert captured.err.strip() == said.format(out=out)
    assert captured.out == ""


def test_cli_train_then_evaluate(tmp_path: Path, capsys):
    ckpt = tmp_path / "simclr.pt"
    assert main(["train", "simclr", "--profile", "ci", "--steps", "5", "--out", str(ckpt), "--no-progress"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["steps"] == 5 and 0 <= trained["knn_accuracy"] <= 1
    state = load_checkpoint(ckpt)  # the run description joins fit's full state, which stays whole
    assert {"model", "optimizer", "loader", "rng", "epoch", "history", "run"} <= set(state)
    assert set(state["optimizer"]) == {None} and state["run"]["method"] == "simclr"
    assert main(["evaluate", str(ckpt)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["knn_accuracy"] == pytest.approx(trained["knn_accuracy"])


def test_cli_reports_a_corrupted_checkpoint(tmp_path: Path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert main(["evaluate", str(bad)]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_cli_missing_offline_dataset_explains(tmp_path: Path, monkeypatch, capsys):
    import torchvision.datasets.utils as tv_utils

    monkeypatch.setattr(tv_utils, "download_and_extract_archive",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network unreachable")))
    assert main(["download", "stl10", "--root", str(tmp_path)]) == 2
    assert "stl10_binary" in capsys.readouterr().err
