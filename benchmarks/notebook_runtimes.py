"""Wall-clock time of every chapter notebook in one profile, run one after another.

    python benchmarks/notebook_runtimes.py --profile ci --out benchmarks/results/notebook_runtimes_ci.json
    python benchmarks/notebook_runtimes.py --page book/runtimes.md   # rewrite the page's table
    python tools/runtime_notes.py                                    # and each chapter's runtime note

Each notebook runs in a fresh kernel from `chapters/` (as Jupyter Book runs it), with every
CPU core available to PyTorch. The book's "Runtimes" page and each chapter's runtime note
quote these records.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import nbformat
from _record import write_record
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
RESULTS = ROOT / "benchmarks" / "results"
TABLE_START, TABLE_END = "<!-- runtimes table: start -->", "<!-- runtimes table: end -->"


def time_notebook(path: Path, timeout: int, executed_dir: Path | None = None) -> float:
    """Execute ``path`` in a fresh kernel and return the seconds it took; with ``executed_dir``,
    also write the executed notebook there (for reading what the timed run printed)."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    if executed_dir is not None:
        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, executed_dir / path.name)
    return seconds


def runtime_table() -> str:
    """Markdown table of every committed record: one row per notebook, one column per profile."""
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("notebook_runtimes_*.json"))]
    if not records:
        return "No runtime has been measured yet."
    header = "| notebook | " + " | ".join(f"`{r['profile']}` on {r['device']} ({r['cpu_count']} cores)"
                                         for r in records) + " |"
    rows = [header, "| --- |" + " --- |" * len(records)]
    for stem in sorted(p.stem for p in CHAPTERS.glob("*.md")):
        cells = [f"{r['seconds'][stem] / 60:.1f} min" if stem in r["seconds"] else "not measured" for r in records]
        rows.append(f"| {{doc}}`../chapters/{stem}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def update_page(page: Path) -> None:
    """Replace the table between the markers of ``page`` with ``runtime_table()``."""
    text = page.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    page.write_text(text[:start] + "\n" + runtime_table() + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="ci", choices=["ci", "cpu", "gpu", "full"])
    parser.add_argument("--only", nargs="*", help="notebook stems in the order to run, e.g. 06_collapse (default: all)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--add", action="store_true",
                        help="keep the times already in --out (same profile) and add or replace these notebooks'")
    parser.add_argument("--page", type=Path, help="only rewrite this page's table from the committed records")
    parser.add_argument("--executed", type=Path, help="also write each executed notebook to this folder")
    args = parser.parse_args()
    if args.page:
        return update_page(args.page)
    if args.out is None:
        parser.error("--out is required to run notebooks")
    os.environ["SSLCOURSE_PROFILE"] = args.profile  # the kernels inherit it
    paths = sorted(CHAPTERS.glob("*.ipynb"))
    if args.only:
        paths = [CHAPTERS / f"{stem}.ipynb" for stem in args.only]
    seconds, extra = {}, {}
    if args.add and args.out.exists():
        earlier = json.loads(args.out.read_text())
        if earlier.get("profile") != args.profile:
            parser.error(f"{args.out} holds the {earlier.get('profile')!r} profile, not {args.profile!r}")
        seconds = earlier["seconds"]
        extra["earlier_commands"] = earlier.get("earlier_commands", []) + [earlier["command"]]
    for path in paths:  # the record is rewritten after each notebook: a long run keeps what it measured
        seconds[path.stem] = round(time_notebook(path, args.timeout, args.executed), 1)
        write_record(args.out, {"profile": args.profile, "seconds": seconds,
                                "total_minutes": round(sum(seconds.values()) / 60, 1), **extra})


if __name__ == "__main__":
    main()
