"""Conventions every chapter keeps: the Colab set-up cell, a runtime note, captioned figures."""

import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
sys.path.insert(0, str(ROOT / "tools"))
import runtime_notes  # noqa: E402


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_sets_up_colab_only(source):
    first = next(c for c in jupytext.read(source).cells if c.cell_type == "code").source
    assert 'if "google.colab" in sys.modules:' in first and "%pip install" in first
    assert "torch.cuda.is_available()" in first  # warns when no GPU runtime is selected


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_runtime_note_names_every_profile(source):
    text = source.read_text()
    note = text[text.index(":::{admonition} Runtime"):]
    note = note[:note.index("\n:::")]
    assert all(f"`{profile}`" in note for profile in ("ci", "cpu", "gpu")), note


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_runtime_note_agrees_with_the_committed_records(source):
    text = source.read_text()
    assert runtime_notes.rewritten(text, source.stem, runtime_notes.load_records()) == text, (
        "stale runtime note: run python tools/runtime_notes.py")


def test_runtime_sentence_sums_a_chapters_pages_and_names_untimed_profiles():
    records = {"ci": {"device": "cpu", "cpu_count": 2, "seconds": {"05_a": 60.0, "05_b": 30.0, "06_c": 6.0}},
               "gpu": {"device": "NVIDIA H200", "cpu_count": 16, "seconds": {"05_b": 12.0}}}
    sentence = runtime_notes.runtime_sentence("05_b", records)
    assert "`ci` profile 0.5 minutes on 2 CPU cores; `gpu` profile 0.2 minutes on NVIDIA H200" in sentence
    assert "pages together: `ci` 1.5 minutes" in sentence and "The `cpu` profile of this page has not" in sentence
    assert sentence.endswith(runtime_notes.ANCHOR)


def test_a_note_without_the_anchor_sentence_is_reported():
    with pytest.raises(ValueError, match="no runtime note"):
        runtime_notes.rewritten(":::{admonition} Runtime\n:class: note\nabout 2 minutes\n:::", "00_x", {})


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_cell_has_a_caption_and_a_name(source):
    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            assert figure.get("caption") and figure.get("name", "").startswith("fig-"), cell.source[:80]
