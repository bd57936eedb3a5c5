"""The package's "Course:" back-links name sections of the book that exist.

Docstrings point to the section that explains their code as ``Course: :ref:`label` `` (like
d2l's ``Defined in :numref:``), and the book defines each label as a MyST target ``(label)=``
on the line before a heading of chapters/*.md or book/*.md. Free text ("ch. 6 §VICReg") can
name a section that does not exist; a label can be checked.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "sslcourse").rglob("*.py"))
PAGES = sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "book").glob("*.md"))

# :ref:`label` or :ref:`shown text <label>`
REF = re.compile(r":ref:`(?:[^`<]*<(?P<target>[^`>]+)>|(?P<label>[^`<>]+))`")
TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=[ \t]*$")
HEADING = re.compile(r"^#{1,6} \S")

def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def label_definitions() -> list[tuple[str, str, int]]:
    """Return (label, page, line number) for every ``(label)=`` target of the book's pages."""
    found = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if match := TARGET.match(line):
                found.append((match["label"], _relative(page), number))
    return found


def references() -> list[tuple[str, str, int]]:
    """Return (label, source file, line number) for every ``:ref:`` in the package's sources."""
    found = []
    for source in SOURCES:
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            for match in REF.finditer(line):
                found.append(((match["target"] or match["label"]).strip(), _relative(source), number))
    return found


def test_references_are_found_in_both_forms():
    assert [m["target"] or m["label"] for m in REF.finditer("Course: :ref:`a-b`, :ref:`the b <c_d>`.")] == \
        ["a-b", "c_d"]
    assert TARGET.match("(ch5-moco)=") and not TARGET.match("see (ch5-moco)= here")


def test_every_reference_names_a_label_the_book_defines():
    defined = {label for label, _, _ in label_definitions()}
    found = references()
    assert found, "no :ref: found in sslcourse: the pattern or the sources changed"
    broken = [f"{path}:{number}: :ref:`{label}`" for label, path, number in found if label not in defined]
    assert broken == [], "labels not defined as (label)= in chapters/*.md or book/*.md:\n" + "\n".join(broken)


def test_no_label_is_defined_twice():
    places: dict[str, list[str]] = {}
    for label, page, number in label_definitions():
        places.setdefault(label, []).append(f"{page}:{number}")
    twice = {label: where for label, where in places.items() if len(where) > 1}
    assert twice == {}


def test_every_label_sits_right_before_a_heading():
    # A target before a paragraph would link to the paragraph, not to the section it names.
    misplaced = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for index, line in enumerate(lines):
            if TARGET.match(line) and not (index + 1 < len(lines) and HEADING.match(lines[index + 1])):
                misplaced.append(f"{_relative(page)}:{index + 1}: {line}")
    assert misplaced == []


def test_every_course_line_links_with_a_ref():
    # A "Course:" line without a :ref: is a free-text reference, which nothing checks.
    free = [f"{_relative(source)}:{number}: {line.strip()}"
            for source in SOURCES
            for number, line in enumerate(source.read_text().splitlines(), start=1)
            if "Course:" in line and ":ref:`" not in line]
    assert free == [], "'Course:' lines without a :ref: label:\n" + "\n".join(free)
