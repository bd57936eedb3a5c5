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

