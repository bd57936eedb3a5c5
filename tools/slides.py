"""reveal.js slide decks of every chapter, from the same notebooks, viewable offline.

    python tools/slides.py                               # from the sources (no outputs)
    python tools/slides.py --executed _build/executed    # with figures: executed notebooks
    python tools/slides.py --executed _build/executed --check   # and no slide taller than its frame
    # -> _build/slides/index.html and one NN_name.slides.html per chapter

A heading opens a slide (``#``/``##``) or a sub-slide below it (``###``/``####``), and so
does every figure (shown without its code, with the first sentence of its caption). A slide is
short, not the page's prose: its heading, the first sentence of each paragraph or list item as
a bullet (at most ``MAX_BULLETS``), and its display equations, each after the first on a
sub-slide of its own; code, program output and included library code stay in the book.
``tests/test_slides.py`` checks in Chromium that no slide overflows its frame. Exercises
appear, solutions do not (as in the student notebooks), and the Colab set-up cell is left out. reveal.js,
require.js, jQuery and MathJax 2 are the npm copies in ``tools/slides_vendor``
(``tools/vendor_slides.sh``), copied next to the decks, so the folder works without a
network: open the HTML files or serve the folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import jupytext
import nbformat
from nbconvert import SlidesExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from notebooks import CHAPTERS, ROOT, convert

VENDOR = Path(__file__).resolve().parent / "slides_vendor"
FENCES = ("```", "~~~", ":::")  # code, and MyST directives (colon fences)
MAX_BULLETS = 5  # per slide: an instructor's slide, not the page
MAX_BULLET_CHARS = 160  # a bullet is one sentence; a longer one is cut at a word
SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]$*`][.?!])\s+(?=[A-Z(\[*$`])")
# Fixed-size slides whose figures fit: reveal.js scales the whole frame to the window.
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 800
SLIDE_CSS = """<style>
.reveal .slides section { font-size: 26px; text-align: left; }
.reveal .slides section h1, .reveal .slides section h2 { font-size: 44px; }
.reveal .slides section h3, .reveal .slides section h4 { font-size: 34px; }
.reveal .slides section img { max-height: 560px; max-width: 100%; width: auto; display: block; margin: 0 auto; }
.reveal .slides section .figure-caption { font-size: 20px; color: #555; }
.reveal .slides section ul { margin-left: 0.6em; }
</style>
"""


def slide_type(cell: nbformat.NotebookNode) -> str:
    """reveal.js placement of a cell: a new slide at top-level headings, a sub-slide below them
    and for every figure."""
    if "figure" in cell.metadata.get("mystnb", {}):
        return "subslide"
    if cell.cell_type == "markdown":
        first = cell.source.lstrip().split("\n", 1)[0]
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith(("### ", "#### ")):
            return "subslide"
    return "-"


def split_at_headings(markdown: str) -> list[str]:
    """``markdown`` cut before every heading outside a fenced block, so each heading can open a slide."""
    pieces, current, fence = [], [], None
    for line in markdown.split("\n"):
        marker = line.lstrip()[:3]
        if marker in FENCES:
            fence = None if fence == marker else fence or marker
        if fence is None and line.startswith("#") and current and "".join(current).strip():
            pieces.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    pieces.append("\n".join(current).strip("\n"))
    return [piece for piece in pieces if piece.strip()]


LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+\.)\s+")


def _continues(line: str, in_item: bool) -> bool:
    """Whether ``line`` continues the paragraph or list item above it."""
    stripped = line.strip()
    if not stripped or stripped[:3] in FENCES or stripped.startswith("$$") or line.startswith("#"):
        return False
    if in_item:
        return not LIST_ITEM.match(line)  # the next item starts a block of its own
    return not line.startswith("    ")  # an indented code block


def markdown_blocks(markdown: str) -> list[tuple[str, str]]:
    """``markdown`` as (kind, text) blocks: "heading", "equation" (a ``$$`` display), "item" (a
    list item with its continuation lines), "paragraph", "fence" (code, included code, a directive)."""
    blocks: list[tuple[str, str]] = []
    lines, i = markdown.split("\n"), 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        if not stripped:
            i += 1
        elif stripped[:3] in FENCES:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(stripped[:3]):
                j += 1
            blocks.append(("fence", "\n".join(lines[i:j + 1])))
            i = j + 1
        elif stripped.startswith("$$"):
            j = i if "$$" in stripped[2:] else i + 1  # one line, or up to the closing $$ (and its label)
            while i != j and j < len(lines) and not lines[j].strip().startswith("$$"):
                j += 1
            blocks.append(("equation", "\n".join(lines[i:j + 1])))
            i = j + 1
        elif line.startswith("#"):
            blocks.append(("heading", line))
            i += 1
        else:
            item = LIST_ITEM.match(line)
            j = i + 1
            while j < len(lines) and _continues(lines[j], item is not None):
                j += 1
            text = " ".join(part.strip() for part in [line[item.end():] if item else line, *lines[i + 1:j]])
            blocks.append(("item" if item else "paragraph", text))
            i = j
    return blocks


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, cut at a word near ``MAX_BULLET_CHARS`` (math kept whole)."""
    sentence = SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    if len(sentence) <= MAX_BULLET_CHARS:
        return sentence
    cut = sentence[:MAX_BULLET_CHARS].rsplit(" ", 1)[0]
    if cut.count("$") % 2 or cut.count("`") % 2:  # never cut inside inline math or code
        return sentence
    return cut + " …"


def condense(markdown: str) -> list[str]:
    """The slides of one heading's section: the heading with at most ``MAX_BULLETS`` bullets and
    the first display equation, then one sub-slide per further equation."""
    blocks = markdown_blocks(markdown)
    heading = next((text for kind, text in blocks if kind == "heading"), "")
    bullets = [first_sentence(text) for kind, text in blocks if kind in ("item", "paragraph")][:MAX_BULLETS]
    equations = [re.sub(r"\$\$\s*\([\w-]+\)\s*$", "$$", text) for kind, text in blocks if kind == "equation"]
    first = "\n".join([heading, ""] + [f"- {b}" for b in bullets] + (["", equations[0]] if equations else []))
    title = re.sub(r"^#+\s*", "", heading)
    more = [f"#### {title}\n\n{eq}" if title else eq for eq in equations[1:]]
    return [piece for piece in [first.strip(), *more] if piece.strip()]


def deck_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` without solutions or the Colab cell, with slide metadata on every cell."""
    notebook = convert(notebook, with_solutions=False)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "google.colab" in cell.source:
            continue
        if cell.cell_type == "markdown":
            cells += [nbformat.v4.new_markdown_cell(slide) for piece in split_at_headings(cell.source)
                      for slide in condense(piece)]
        elif "figure" in cell.metadata.get("mystnb", {}):  # the figure alone, not its code or printed text
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), "remove-input"]
            cell.outputs = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            cells.append(cell)
            caption = first_sentence(cell.metadata["mystnb"]["figure"].get("caption", ""))
            if caption:
                cells.append(nbformat.v4.new_markdown_cell(f'<p class="figure-caption">{caption}</p>'))
    notebook.cells = cells
    for cell in notebook.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell)}
    return notebook


def exporter() -> SlidesExporter:
    """nbconvert's reveal.js exporter, pointed at the vendored assets (paths relative to the deck)."""
    slides = SlidesExporter(reveal_url_prefix="vendor/reveal.js", reveal_scroll=False, reveal_theme="simple",
                            reveal_width=str(SLIDE_WIDTH), reveal_height=str(SLIDE_HEIGHT),
                            require_js_url="vendor/require.js", jquery_url="vendor/jquery.min.js",
                            mathjax_url="vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
                            mermaid_js_url="vendor/no-mermaid.mjs")  # no diagrams: a local stub
    slides.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove-input"},
                                                       remove_cell_tags={"remove-cell"}), enabled=True)
    return slides


def build(executed: Path | None = None, out: Path | None = None) -> list[Path]:
    """Write one deck per chapter and an index page to ``out``; return the decks."""
    out = out or ROOT / "_build" / "slides"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(VENDOR, out / "vendor", dirs_exist_ok=True)
    (out / "vendor" / "no-mermaid.mjs").write_text("export default { initialize() {} };\n")
    slides, decks = exporter(), []
    for source in sorted(CHAPTERS.glob("*.md")):
        notebook = (nbformat.read(executed / f"{source.stem}.ipynb", as_version=4) if executed
                    else jupytext.read(source))
        title = next(c.source.split("\n")[0].lstrip("# ") for c in notebook.cells if c.cell_type == "markdown")
        html, _ = slides.from_notebook_node(deck_notebook(notebook), resources={"metadata": {"name": title}})
        deck = out / f"{source.stem}.slides.html"
        deck.write_text(html.replace("</head>", SLIDE_CSS + "</head>", 1))
        decks.append(deck)
    links = "\n".join(f'<li><a href="{d.name}">{d.name.removesuffix(".slides.html")}</a></li>' for d in decks)
    (out / "index.html").write_text(f"<!doctype html><title>Slides</title><h1>Slides</h1><ul>{links}</ul>\n")
    return decks


# Every leaf slide in turn: shown, typeset, measured against the frame's height.
OVERFLOW_JS = """async () => {
  const Reveal = require("vendor/reveal.js/dist/reveal.js");  // loaded by the deck through require.js
  const height = Reveal.getConfig().height, over = [];
  const slides = Reveal.getSlides();
  for (const slide of slides) {
    const at = Reveal.getIndices(slide);
    Reveal.slide(at.h, at.v);
    await new Promise(done => MathJax.Hub.Queue(done));
    if (slide.scrollHeight > height) {
      const title = slide.querySelector("h1, h2, h3, h4");
      over.push(`${at.h}/${at.v || 0} ${title ? title.textContent.trim() : "(no title)"}: ${slide.scrollHeight} px`);
    }
  }
  return {count: slides.length, over};
}"""


def overflowing_slides(deck: Path, page, screenshot: Path | None = None) -> tuple[int, list[str]]:
    """(number of slides, the slides taller than the frame) of ``deck`` in a Playwright ``page``;
    with ``screenshot``, a picture of the deck's first slide with a figure."""
    page.goto(deck.as_uri())
    page.wait_for_function("() => document.querySelector('.reveal.ready') && window.MathJax && MathJax.Hub",
                           timeout=20_000)
    result = page.evaluate(OVERFLOW_JS)
    if screenshot is not None:
        page.evaluate("""() => { const Reveal = require("vendor/reveal.js/dist/reveal.js");
                                 const s = Reveal.getSlides().find(s => s.querySelector('img'));
                                 if (s) { const at = Reveal.getIndices(s); Reveal.slide(at.h, at.v); } }""")
        page.wait_for_timeout(800)  # the slide transition, then MathJax's re-rendering of the slide
        page.wait_for_function("() => MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0")
        page.screenshot(path=str(screenshot))
    return result["count"], result["over"]


def check_decks(decks: list[Path], screenshots: Path | None = None) -> list[str]:
    """Every slide of ``decks`` taller than its frame, as "deck: slide: height" lines (Chromium)."""
    from check_book import find_chromium
    from playwright.sync_api import sync_playwright

    problems = []
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": SLIDE_WIDTH, "height": SLIDE_HEIGHT})
        for deck in decks:
            shot = screenshots / f"{deck.stem}.png" if screenshots is not None else None
            _, over = overflowing_slides(deck, page, shot)
            problems += [f"{deck.name}: {slide}" for slide in over]
        browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executed", type=Path, help="folder of executed chapter notebooks (figures on slides)")
    parser.add_argument("--out", type=Path, help="default: _build/slides")
    parser.add_argument("--check", action="store_true",
                        help="then fail if a slide overflows its frame in Chromium (screenshots: OUT/screenshots)")
    args = parser.parse_args()
    decks = build(args.executed, args.out)
    if not args.check:
        print("\n".join(map(str, decks)))
    else:
        problems = check_decks(decks, decks[0].parent / "screenshots")
        print("\n".join(problems) or f"{len(decks)} decks: no slide overflows its frame")
        raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
