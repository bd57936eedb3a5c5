"""Conventions every chapter keeps: the Colab set-up cell, a runtime note, captioned figures."""

from pathlib import Path

import jupytext
import pytest

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("*.md"))


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
def test_every_figure_cell_has_a_caption_and_a_name(source):
    for cell in jupytext.read(source).cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            assert figure.get("caption") and figure.get("name", "").startswith("fig-"), cell.source[:80]
