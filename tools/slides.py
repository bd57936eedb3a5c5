"""reveal.js slide decks of every chapter, from the same notebooks, viewable offline.

    python tools/slides.py                               # from the sources (no outputs)
    python tools/slides.py --executed _build/executed    # with figures: executed notebooks
    # -> _build/slides/index.html and one NN_name.slides.html per chapter

A heading opens a slide (``#``/``##``) or a sub-slide below it (``###``/``####``), and so
does every figure (shown without its code); long slides scroll. Exercises appear, solutions
do not (as in the student notebooks), and the Colab set-up cell is left out. reveal.js,
require.js, jQuery and MathJax 2 are the npm copies in ``tools/slides_vendor``
(``tools/vendor_slides.sh``), copied next to the decks, so the folder works without a
network: open the HTML files or serve the folder.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import jupytext
import nbformat
from nbconvert import SlidesExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from notebooks import CHAPTERS, ROOT, convert

VENDOR = Path(__file__).resolve().parent / "slides_vendor"


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
        if marker in ("```", "~~~", ":::"):
            fence = None if fence == marker else fence or marker
        if fence is None and line.startswith("#") and current and "".join(current).strip():
            pieces.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    pieces.append("\n".join(current).strip("\n"))
    return [piece for piece in pieces if piece.strip()]


def deck_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` without solutions or the Colab cell, with slide metadata on every cell."""
    notebook = convert(notebook, with_solutions=False)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "google.colab" in cell.source:
            continue
        if cell.cell_type == "markdown":
            cells += [nbformat.v4.new_markdown_cell(piece) for piece in split_at_headings(cell.source)]
        else:
            if "figure" in cell.metadata.get("mystnb", {}):  # a figure's slide shows the figure, not its code
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), "remove-input"]
            cells.append(cell)
    notebook.cells = cells
    for cell in notebook.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell)}
    return notebook


def exporter() -> SlidesExporter:
    """nbconvert's reveal.js exporter, pointed at the vendored assets (paths relative to the deck)."""
    slides = SlidesExporter(reveal_url_prefix="vendor/reveal.js", reveal_scroll=True, reveal_theme="simple",
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
        deck.write_text(html)
        decks.append(deck)
    links = "\n".join(f'<li><a href="{d.name}">{d.name.removesuffix(".slides.html")}</a></li>' for d in decks)
    (out / "index.html").write_text(f"<!doctype html><title>Slides</title><h1>Slides</h1><ul>{links}</ul>\n")
    return decks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executed", type=Path, help="folder of executed chapter notebooks (figures on slides)")
    parser.add_argument("--out", type=Path, help="default: _build/slides")
    args = parser.parse_args()
    for deck in build(args.executed, args.out):
        print(deck)


if __name__ == "__main__":
    main()
