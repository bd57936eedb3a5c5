"""A chapter opened alone (Colab: one .ipynb, nothing of the repository beside it) reads the committed records.

The records live once, in benchmarks/results/; pyproject.toml installs them with the package as
sslcourse/_records/, and sslcourse.records.load_record reads whichever is there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from setuptools import find_packages

from sslcourse import records

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
# What a non-editable install is built from: the project's metadata, the package, the records.
BUILD_SOURCES = ("pyproject.toml", "README.md", "sslcourse", "benchmarks/results")
# The chapter executed alone: the fastest of those that read a record
# (benchmarks/results/notebook_runtimes_ci.json: 30 s in the ci profile).
STANDALONE_CHAPTER = ROOT / "chapters" / "00_introduction.ipynb"


def record_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The code cells of ``notebook`` that read a committed record."""
    return [cell for cell in notebook.cells if cell.cell_type == "code" and "load_record(" in cell.source]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A folder holding sslcourse as ``pip install .`` installs it (not editable), built offline."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_SOURCES:  # a copy: an in-tree build would leave build/ in the repository
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--no-compile", "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True)
    return target


def test_pyproject_lists_every_package_under_sslcourse():
    # The explicit package list (needed for the records' mapping) must not miss a new subpackage.
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(find_packages(str(ROOT), include=["sslcourse*"])) <= set(config["packages"])
    assert config["package-dir"]["sslcourse._records"] == "benchmarks/results"


def test_load_record_finds_every_record_the_chapters_read(monkeypatch):
    # Run every record-reading cell of every chapter, noting which records they ask for: the
    # cells build some names in loops, so reading the names off the text would miss them.
    import matplotlib
    import matplotlib.pyplot as plt
    import pandas as pd

    matplotlib.use("Agg")
    read = []
    load_record = records.load_record

    def noting_load_record(name: str) -> dict:
        read.append(name)
        return load_record(name)

    monkeypatch.setattr(records, "load_record", noting_load_record)
    chapters_reading = set()
    for chapter in CHAPTERS:
        namespace = {"pd": pd, "plt": plt}
        for cell in record_cells(jupytext.read(chapter)):
            exec(cell.source, namespace)  # the chapter's own cell, as the book runs it
            chapters_reading.add(chapter.stem)
        plt.close("all")
    assert {"00_introduction", "05_ablations", "05_contrastive", "06_noncontrastive"} <= chapters_reading
    assert read and all((RESULTS / name).is_file() for name in read), read


def test_load_record_rejects_a_path_instead_of_a_name():
    with pytest.raises(ValueError, match="file name"):
        records.load_record("../pyproject.toml")
    with pytest.raises(FileNotFoundError, match="no_such_record.json"):
        records.load_record("no_such_record.json")


def test_installed_package_ships_every_committed_record(installed):
    shipped = installed / "sslcourse" / "_records"
    committed = sorted(path.name for path in RESULTS.glob("*.json"))
    assert sorted(path.name for path in shipped.glob("*.json")) == committed
    assert all((shipped / name).read_bytes() == (RESULTS / name).read_bytes() for name in committed)


def test_chapter_opened_alone_prints_the_records_values(installed, tmp_path, monkeypatch):
    # Only the set-up cell, the imports cell and the record cells run: executing the whole chapter
    # is nbval's job in the same suite, and only these cells depend on where the package and the
    # records come from. That keeps this test to a kernel start and the imports.
    notebook = nbformat.read(STANDALONE_CHAPTER, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    where = nbformat.v4.new_code_cell("from sslcourse.records import records_dir\nprint('records from', records_dir())")
    notebook.cells = code[:2] + [where] + record_cells(notebook)
    alone = tmp_path / "colab"  # outside the repository: nothing of it beside the notebook
    alone.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(installed))  # the installed copy, not the checkout
    monkeypatch.setenv("SSLCOURSE_PROFILE", "ci")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(alone)}}).execute()

    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.outputs)
    assert f"records from {installed / 'sslcourse' / '_records'}" in printed
    gpu = json.loads((RESULTS / "ch0_simclr_gpu.json").read_text())
    assert (f"{gpu['device']}: SimCLR kNN {100 * gpu['knn_simclr']:.1f}%, random weights "
            f"{100 * gpu['knn_random_weights']:.1f}%, raw pixels {100 * gpu['knn_raw_pixels']:.1f}%") in printed
    assert "Run `python" not in printed
