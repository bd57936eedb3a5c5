"""Slide decks (tools/slides.py): one per chapter, no solutions, nothing loaded from a network."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_book  # noqa: E402
import slides  # noqa: E402
from test_book import browser  # noqa: E402

REMOTE_ASSET = re.compile(r"""<(?:script|link)[^>]*(?:src|href)=["']https?://|import [^;]*from ['"]https?://""")


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> list[Path]:
    return slides.build(out=tmp_path_factory.mktemp("slides"))


def test_one_deck_per_chapter_with_vendored_assets_only(decks):
    assert [d.name.removesuffix(".slides.html") for d in decks] == sorted(p.stem for p in slides.CHAPTERS.glob("*.md"))
    for deck in decks:
        html = deck.read_text()
        assert not REMOTE_ASSET.search(html), deck.name
        assert html.count("<section") > 5 and "{solution}" not in html and "#### Solution" not in html
        for asset in re.findall(r'(?:src|href)="(vendor/[^"?]+)', html):
            assert (deck.parent / asset).exists(), asset


def test_markdown_is_cut_at_headings_outside_code():
    text = "Intro\n## First\nbody\n```python\n# a comment, not a heading\n```\n### Second\nmore"
    assert slides.split_at_headings(text) == [
        "Intro", "## First\nbody\n```python\n# a comment, not a heading\n```", "### Second\nmore"]


def test_headings_open_slides():
    markdown = slides.nbformat.v4.new_markdown_cell
    assert slides.slide_type(markdown("## Collapse\ntext")) == "slide"
    assert slides.slide_type(markdown("#### Exercise: one")) == "subslide"
    assert slides.slide_type(markdown("plain text")) == "-"
    figure = slides.nbformat.v4.new_code_cell("plt.show()", metadata={"mystnb": {"figure": {"caption": "c"}}})
    assert slides.slide_type(figure) == "subslide"


@browser
def test_a_deck_renders_offline_with_math(decks):
    from playwright.sync_api import sync_playwright

    deck = next(d for d in decks if d.name.startswith("06_noncontrastive"))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=check_book.find_chromium(), args=["--no-sandbox"])
        page = chromium.new_page()
        failed = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(deck.as_uri())
        page.wait_for_function("() => document.querySelector('.reveal.ready')", timeout=20_000)
        page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
                               " && MathJax.Hub.queue.running === 0", timeout=20_000)
        typeset = page.evaluate("() => document.querySelectorAll('.mjx-chtml').length")
        chromium.close()
    assert failed == [] and typeset > 10



def test_a_section_becomes_a_short_slide_and_one_sub_slide_per_further_equation():
    paragraph = "First sentence of a long paragraph. " + "More prose the book keeps. " * 20
    markdown = ("## Losses\n\n" + "\n\n".join([paragraph] * 8)
                + "\n\n$$\na = b\n$$ (eq-one)\n\n```python\ncode_stays_in_the_book()\n```\n\n$$ c = d $$\n")
    first, second = slides.condense(markdown)
    assert first.startswith("## Losses") and first.count("\n- ") == slides.MAX_BULLETS
    assert "- First sentence of a long paragraph.\n" in first and "More prose" not in first
    assert "$$\na = b\n$$" in first and "(eq-one)" not in first and "code_stays" not in first
    assert second == "#### Losses\n\n$$ c = d $$"


def test_a_long_sentence_is_cut_at_a_word_but_never_inside_math():
    words = "word " * 60
    assert slides.first_sentence(words).endswith(" …") and len(slides.first_sentence(words)) <= 170
    inline = "$" + "x + " * 60 + "y$ and more"
    assert slides.first_sentence(inline) == inline


def test_a_figure_slide_keeps_the_picture_and_its_caption_not_the_code_or_printed_text():
    notebook = slides.nbformat.v4.new_notebook()
    figure = slides.nbformat.v4.new_code_cell("plt.show()\nprint(table)", metadata={
        "mystnb": {"figure": {"caption": "Loss curves of two runs. Details the book gives.", "name": "fig-x"}}})
    figure.outputs = [slides.nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
                      slides.nbformat.v4.new_output("stream", name="stdout", text="a long table\n")]
    notebook.cells = [slides.nbformat.v4.new_markdown_cell("# Title"), slides.nbformat.v4.new_code_cell("x = 1"),
                      figure]
    cells = slides.deck_notebook(notebook).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "markdown"]  # "x = 1" is not on a slide
    assert cells[1].outputs == [figure.outputs[0]] and "remove-input" in cells[1].metadata["tags"]
    assert cells[2].source == '<p class="figure-caption">Loss curves of two runs.</p>'


@browser
def test_no_slide_of_any_deck_overflows_its_frame(decks, tmp_path):
    assert slides.check_decks(decks, tmp_path) == []
    assert len(list(tmp_path.glob("*.png"))) == len(decks)


@browser
def test_the_overflow_check_finds_a_slide_taller_than_its_frame(tmp_path, monkeypatch):
    notebook = slides.nbformat.v4.new_notebook()
    notebook.cells = [slides.nbformat.v4.new_markdown_cell("# Title\n\n" + "\n\n".join(
        f"Paragraph {k} of a wall of text." for k in range(40)))]
    monkeypatch.setattr(slides, "MAX_BULLETS", 40)  # what the decks looked like before slides were condensed
    monkeypatch.setattr(slides, "CHAPTERS", tmp_path / "chapters")
    (tmp_path / "chapters").mkdir()
    slides.jupytext.write(notebook, tmp_path / "chapters" / "99_wall.md", fmt="md:myst")
    decks = slides.build(out=tmp_path / "out")
    problems = slides.check_decks(decks)
    assert len(problems) == 1 and problems[0].startswith("99_wall.slides.html: 0/0 Title")
