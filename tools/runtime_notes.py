"""Write each chapter's runtime note from the committed notebook-runtime records.

    python tools/runtime_notes.py           # rewrite the notes in chapters/*.md
    python tools/runtime_notes.py --check   # exit 1 if a note disagrees with the records

A chapter's note is the admonition "Runtime" near its top. Its first sentences, up to
"Every chapter: {doc}`../book/runtimes`.", are generated here from
`benchmarks/results/notebook_runtimes_<profile>.json` (written by
`benchmarks/notebook_runtimes.py`); what follows that sentence is the chapter's own text. Run
`jupytext --sync chapters/*.md` after rewriting.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
RESULTS = ROOT / "benchmarks" / "results"
PROFILES = ("ci", "cpu", "gpu", "full")
ANCHOR = "Every chapter: {doc}`../book/runtimes`."
NOTE = re.compile(r"(:::\{admonition\} Runtime\n:class: note\n)(.*?" + re.escape(ANCHOR) + ")", re.DOTALL)


def load_records(results: Path = RESULTS) -> dict[str, dict]:
    """Return the committed notebook-runtime records by profile name, in PROFILES order."""
    records = {}
    for profile in PROFILES:
        path = results / f"notebook_runtimes_{profile}.json"
        if path.exists():
            records[profile] = json.loads(path.read_text())
    return records


def _machine(record: dict) -> str:
    return f"{record['cpu_count']} CPU cores" if record["device"] == "cpu" else record["device"]


def runtime_sentence(stem: str, records: dict[str, dict]) -> str:
    """Return the generated part of the runtime note of chapter page ``stem`` (e.g. "05_contrastive")."""
    chapter = stem.split("_")[0]
    by_machine: dict[str, list[str]] = {}
    missing, together = [], []
    for profile in PROFILES[:3]:
        record = records.get(profile)
        if record is None or stem not in record["seconds"]:
            missing.append(f"`{profile}`")
            continue
        by_machine.setdefault(_machine(record), []).append(
            f"`{profile}` profile {record['seconds'][stem] / 60:.1f} minutes")
        pages = sorted(s for s in record["seconds"] if s.split("_")[0] == chapter)
        if len(pages) > 1:
            total = sum(record["seconds"][s] for s in pages) / 60
            together.append(f"`{profile}` {total:.1f} minutes")
    measured = "; ".join(" and ".join(times) + f" on {machine}" for machine, times in by_machine.items())
    sentence = f"Measured, one notebook after another (committed records): {measured or 'not yet'}."
    if together:
        sentence += f" The chapter's pages together: {', '.join(together)}."
    if missing:
        sentence += f" The {' and '.join(missing)} profile{'s' if len(missing) > 1 else ''} of this page " \
                    f"{'have' if len(missing) > 1 else 'has'} not been timed yet."
    return sentence + " " + ANCHOR


def rewritten(text: str, stem: str, records: dict[str, dict]) -> str:
    """Return chapter source ``text`` with its runtime note's generated part replaced."""
    if not NOTE.search(text):
        raise ValueError(f"{stem}: no runtime note ending in {ANCHOR!r} found")
    return NOTE.sub(lambda m: m.group(1) + runtime_sentence(stem, records), text, count=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale notes instead of rewriting them")
    args = parser.parse_args()
    records, stale = load_records(), []
    for source in sorted(CHAPTERS.glob("*.md")):
        text = source.read_text()
        new = rewritten(text, source.stem, records)
        if new != text:
            stale.append(source.name)
            if not args.check:
                source.write_text(new)
    if args.check and stale:
        print("runtime notes disagree with the records (run python tools/runtime_notes.py):", ", ".join(stale))
        return 1
    print(("rewrote: " + ", ".join(stale)) if stale and not args.check else "runtime notes agree with the records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
