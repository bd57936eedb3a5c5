from __future__ import annotations

import json
from pathlib import Path

import pytest

from sslcourse.__main__ import main
from sslcourse.data import DATASETS
from sslcourse.methods import METHODS
from sslcourse.profiles import PROFILES, get_profile


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("SSLCOURSE_PROFILE", "ci")
    assert get_profile().name == "ci"
    assert get_profile("gpu").name == "gpu"  # an explicit name wins


def test_unknown_profile_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: " + ", ".join(PROFILES)):
        get_profile("laptop")


@pytest.mark.parametrize("argv, valid", [(["train", "mae"], ", ".join(METHODS)),
                                         (["train", "simclr", "--dataset", "mnist"], ", ".join(DATASETS)),
                                         (["train", "simclr", "--profile", "huge"], ", ".join(PROFILES))])
def test_cli_rejects_unknown_names_with_the_valid_ones(argv, valid, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and valid in capsys.readouterr().err


def test_cli_train_then_evaluate(tmp_path: Path, capsys):
    ckpt = tmp_path / "simclr.pt"
    assert main(["train", "simclr", "--profile", "ci", "--steps", "5", "--out", str(ckpt), "--no-progress"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["steps"] == 5 and 0 <= trained["knn_accuracy"] <= 1
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
