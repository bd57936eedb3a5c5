"""Student and instructor notebooks from the chapter sources.

    python tools/notebooks.py student      # -> _build/notebooks/student/*.ipynb, no solutions
    python tools/notebooks.py instructor   # -> _build/notebooks/instructor/*.ipynb, with solutions

In the book, exercises and solutions are sphinx-exercise directives (solutions fold away).
Jupyter and Colab do not render directives or roles, so both builds rewrite them as plain
Markdown (admonitions, citations, cross-references; a ``literalinclude`` becomes the code).
The student build deletes every solution (and any code cell tagged ``solution``) and puts an
empty code cell after each exercise, with the exercise's check helper ready to call. The
instructor build keeps the solutions, right after their exercises.
"""

from __future__ import annotations

import argparse
import ast
import re
import textwrap
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

# A directive block: an opening fence of 3+ backticks or colons with {exercise} or {solution},
# up to the first line that is exactly the same fence (nested fences are shorter).
DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>exercise|solution)\}(?P<title>[^\n]*)\n"
                       r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.M | re.S)
OPTION = re.compile(r"^:(label|class|nonumber|hidden):[^\n]*\n", re.M)
CHECK_CALL = re.compile(r"`(exercises\.check_\w+\([^`]*\))`")
ROLE = re.compile(r"\{(?P<role>cite:t|cite:p|cite|doc|ref|numref|eq|term)\}`(?P<text>[^`]*)`")
TARGET = re.compile(r"^\([^()\s]+\)=[ \t]*\n", re.M)
ADMONITION = re.compile(r"^:::\{(?:admonition|note|tip|warning|important)\}(?P<title>[^\n]*)\n(?:^:class:[^\n]*\n)?"
                        r"(?P<body>.*?)^:::[ \t]*$", re.M | re.S)
LITERALINCLUDE = re.compile(r"^```\{literalinclude\} (?P<path>\S+)\n:pyobject: (?P<name>[\w.]+)\n```", re.M)


def _role_text(match: re.Match) -> str:
    role, text = match["role"], match["text"]
    if role.startswith("cite"):
        return "[" + text.replace(",", ", ") + "]"
    if "<" in text:  # {doc}`the next page <06_collapse>`
        return text.split("<")[0].strip()
    return f"({text})" if role == "eq" else text


def _included_code(match: re.Match) -> str:
    """The code of a ``literalinclude``'s ``:pyobject:``, a function, class or ``Class.method``."""
    path = (CHAPTERS / match["path"]).resolve()
    source = path.read_text()
    node: ast.AST = ast.parse(source)
    for name in match["name"].split("."):  # Sphinx's dotted path: the class, then its member
        node = next(n for n in ast.walk(node) if getattr(n, "name", None) == name)
    segment = ast.get_source_segment(source, node, padded=True)
    return "```python\n" + textwrap.dedent(segment) + "\n```"


def myst_to_markdown(text: str) -> str:
    """MyST roles, admonitions and ``literalinclude`` in ``text`` as plain Markdown."""
    text = LITERALINCLUDE.sub(_included_code, text)
    text = TARGET.sub("", text)  # "(label)=" lines: cross-reference targets only the book uses
    text = ADMONITION.sub(lambda m: f"**{m['title'].strip()}.** {m['body'].strip()}", text)
    return ROLE.sub(_role_text, text)


def _exercise_markdown(kind: str, title: str, body: str) -> str:
    body = OPTION.sub("", body).strip()
    heading = "Exercise" if kind == "exercise" else "Solution"
    title = title.strip()
    if kind == "solution":  # the solution's "title" is the label of its exercise
        title = ""
    return f"#### {heading}{': ' + title if title else ''}\n\n{body}\n"


def split_markdown(source: str, with_solutions: bool) -> list[tuple[str, str]]:
    """``source`` as a list of (cell type, text): directives rewritten, stubs after exercises."""
    pieces: list[tuple[str, str]] = []
    text, last = "", 0
    for match in DIRECTIVE.finditer(source):
        text += source[last:match.start()]
        last = match.end()
        kind, body = match["kind"], match["body"]
        if kind == "solution" and not with_solutions:
            continue
        text += _exercise_markdown(kind, match["title"], body)
        if kind == "exercise" and not with_solutions:
            pieces.append(("markdown", text))
            text = ""
            checks = CHECK_CALL.findall(body)
            if checks:
                stub = f"# Your answer to \"{match['title'].strip()}\", then run:\n"
                pieces.append(("code", stub + "".join(f"# {call}\n" for call in checks)))
            else:
                pieces.append(("markdown", "**Your answer:**"))
    text += source[last:]
    if text.strip():
        pieces.append(("markdown", text))
    return [(kind, text.strip("\n")) for kind, text in pieces]


def convert(notebook: nbformat.NotebookNode, with_solutions: bool) -> nbformat.NotebookNode:
    """A copy of ``notebook`` for students (no solutions) or instructors (solutions kept)."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            if with_solutions:
                cells.append(cell)
            continue
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        for kind, text in split_markdown(cell.source, with_solutions):
            text = myst_to_markdown(text)
            make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
            cells.append(make(text))
    converted = nbformat.v4.new_notebook(cells=cells, metadata=notebook.metadata)
    converted.metadata.pop("jupytext", None)
    converted.nbformat_minor = 5
    return converted


def build(audience: str, out: Path | None = None) -> list[Path]:
    """Write every chapter for ``audience`` ("student" or "instructor"); return the files."""
    out = out or ROOT / "_build" / "notebooks" / audience
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(CHAPTERS.glob("*.md")):
        notebook = convert(jupytext.read(source), with_solutions=audience == "instructor")
        for number, cell in enumerate(notebook.cells):  # unique ids, as nbformat 4.5 wants
            cell.id = f"cell-{number}"
        path = out / f"{source.stem}.ipynb"
        nbformat.write(notebook, path)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audience", choices=["student", "instructor"])
    parser.add_argument("--out", type=Path, help="default: _build/notebooks/AUDIENCE")
    args = parser.parse_args()
    for path in build(args.audience, args.out):
        print(path)


if __name__ == "__main__":
    main()
