"""The built book: internal links resolve, and in a real browser no page shows an execution
error, a missing image, untypeset math or an uncaptioned figure (tools/check_book.py).

The browser tests run when Chromium is installed (.ci/run installs it). They check the book
at $SSLCOURSE_BOOK_HTML when set, otherwise a build of the book without outputs.
"""

import base64
import importlib.util
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import check_book  # noqa: E402

browser = pytest.mark.skipif(
    check_book.find_chromium() is None or importlib.util.find_spec("playwright") is None,
    reason="Chromium (apt-get install chromium) or playwright is not installed")

PIXEL = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    if os.environ.get("SSLCOURSE_BOOK_HTML"):
        return Path(os.environ["SSLCOURSE_BOOK_HTML"])
    return build_book.build(out=tmp_path_factory.mktemp("book"))


def broken_site(folder: Path) -> Path:
    """One page with each problem the checker must find, and one good link."""
    (folder / "other.html").write_text('<html><body><p id="here">ok</p></body></html>')
    (folder / "index.html").write_text(f"""<html><body>
      <a href="other.html#here">fine</a> <a href="missing.html">gone</a> <a href="other.html#nowhere">no anchor</a>
      <img src="missing.png">
      <span class="math notranslate nohighlight">\\(x^2\\)</span>
      <div class="cell"><div class="cell_output"><div class="output traceback">ValueError: boom</div>
        <img src="data:image/png;base64,{PIXEL}"></div></div>
    </body></html>""")
    return folder


def test_broken_links_are_found_without_a_browser(tmp_path):
    site = broken_site(tmp_path)
    problems = check_book.broken_links(site, sorted(site.glob("*.html")))
    assert problems == ["index.html: link missing.html -> missing file",
                        "index.html: link other.html#nowhere -> missing anchor"]


def test_staged_config_turns_execution_off_and_uses_the_notebooks():
    config = (ROOT / "_config.yml").read_text()
    staged = build_book.staged_config(config, sources_are_notebooks=True)
    assert 'execute_notebooks: "off"' in staged and '"chapters/*.ipynb"' not in staged


@browser
def test_checker_reports_every_kind_of_problem(tmp_path):
    problems = check_book.check_book(broken_site(tmp_path), math_timeout_ms=2000)
    text = "\n".join(problems)
    for expected in ("missing file", "missing anchor", "image did not load: missing.png", "math not typeset",
                     "execution error shown: ValueError: boom", "figure without caption", "did not load"):
        assert expected in text, text
    assert "other.html:" not in text


@browser
def test_every_page_of_the_book_passes_in_the_browser(book_html, tmp_path):
    problems = check_book.check_book(book_html, screenshots=tmp_path)
    assert problems == []
    assert (tmp_path / "chapters__06_noncontrastive.png").stat().st_size > 10_000


def test_captioned_figure_cells_without_an_image_are_found(tmp_path):
    drawn = nbformat.v4.new_code_cell("plt.show()", metadata={"mystnb": {"figure": {"name": "fig-drawn"}}})
    drawn.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PIXEL, "text/plain": "<Figure>"})]
    lost = nbformat.v4.new_code_cell("plt.show()", metadata={"mystnb": {"figure": {"name": "fig-lost"}}})
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[drawn, lost, nbformat.v4.new_code_cell("1 + 1")]), path)
    assert build_book.figures_without_image(path) == ["fig-lost"]


def test_every_chapter_page_opens_its_notebook_in_colab_and_binder(book_html):
    for source in sorted((ROOT / "chapters").glob("*.md")):
        page = (book_html / "chapters" / f"{source.stem}.html").read_text()
        notebook = f"chapters/{source.stem}.ipynb"
        assert (ROOT / notebook).exists()  # the committed twin the buttons point at
        assert f'href="https://colab.research.google.com/github/sslcourse/sslcourse/blob/main/{notebook}"' in page
        assert f'href="https://mybinder.org/v2/gh/sslcourse/sslcourse/main?urlpath=tree/{notebook}"' in page
