"""Build the book without executing a notebook, warnings as errors.

    python tools/build_book.py                                # pages without outputs
    python tools/build_book.py --executed _build/executed     # pages with nbval's outputs (CI)

The main job (README) executes the chapters while it builds. CI has already executed every
chapter under nbval; with ``SSLCOURSE_EXECUTED_NOTEBOOKS=DIR`` the root conftest keeps those
executed notebooks, and ``--executed DIR`` builds the book from them: a staged copy of the
book whose chapters are the executed ``.ipynb`` files instead of the MyST sources. The HTML
lands in ``OUT/_build/html`` (default ``OUT`` is the repository root: ``_build/html``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK_FILES = ("_config.yml", "book", "chapters")
INCLUDED_BY_PAGES = ("sslcourse",)  # chapters show library source with literalinclude


def staged_config(text: str, sources_are_notebooks: bool) -> str:
    """``_config.yml`` with execution off (and the ``.ipynb`` twins as sources if asked)."""
    text = text.replace("execute_notebooks: cache", 'execute_notebooks: "off"')
    if sources_are_notebooks:
        text = text.replace('  - "chapters/*.ipynb"\n', "")
    return text


def figures_without_image(notebook_path: Path) -> list[str]:
    """Names of the captioned figure cells of an executed notebook that have no image output.

    A cell tagged ``figure-needs-download`` draws a dataset that CI does not have (CIFAR).
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    return [cell.metadata["mystnb"]["figure"].get("name", "?") for cell in notebook.cells
            if cell.cell_type == "code" and "figure" in cell.metadata.get("mystnb", {})
            and "figure-needs-download" not in cell.metadata.get("tags", [])
            and not any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]


def stage(executed: Path | None, stage_dir: Path) -> Path:
    """Copy the book's sources to ``stage_dir``; with ``executed``, chapters become those notebooks."""
    shutil.rmtree(stage_dir, ignore_errors=True)
    stage_dir.mkdir(parents=True)
    for name in BOOK_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, stage_dir / name)
        else:
            shutil.copy2(source, stage_dir / name)
    for name in INCLUDED_BY_PAGES:
        (stage_dir / name).symlink_to(ROOT / name)
    if executed is not None:
        notebooks = sorted(executed.glob("*.ipynb"))
        sources = sorted((stage_dir / "chapters").glob("*.md"))
        missing = {p.stem for p in sources} - {p.stem for p in notebooks}
        if missing:
            sys.exit(f"{executed} lacks executed notebooks for {sorted(missing)}: run the tests with "
                     f"SSLCOURSE_EXECUTED_NOTEBOOKS={executed} first")
        missing_figures = [f"{path.name}: {name}" for path in notebooks for name in figures_without_image(path)]
        if missing_figures:
            sys.exit("captioned figure cells that produced no image:\n" + "\n".join(missing_figures))
        for source in sources:
            source.unlink()
        for notebook in notebooks:
            shutil.copy2(notebook, stage_dir / "chapters" / notebook.name)
    config = stage_dir / "_config.yml"
    config.write_text(staged_config(config.read_text(), executed is not None))
    return stage_dir


def build(executed: Path | None = None, out: Path = ROOT) -> Path:
    """Build the book into ``out/_build/html`` with ``-W``; return that folder."""
    source = stage(executed, out / "_build" / "stage")
    html = out / "_build" / "html"
    shutil.rmtree(html, ignore_errors=True)
    subprocess.run(["jupyter-book", "build", str(source), "--toc", str(source / "book" / "_toc.yml"),
                    "--path-output", str(out), "-W", "--keep-going", "-q"], check=True)
    return html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executed", type=Path, help="folder of executed chapter notebooks")
    parser.add_argument("--out", type=Path, default=ROOT, help="the HTML goes to OUT/_build/html")
    args = parser.parse_args()
    print(build(args.executed, args.out.resolve()))


if __name__ == "__main__":
    main()
