"""Student and instructor notebooks (tools/notebooks.py), and the exercise checks they point to."""

import inspect
import re
import sys
from pathlib import Path

import nbformat
import pytest

from sslcourse import exercises

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402

SOURCES = sorted((ROOT / "chapters").glob("*.md"))


def solution_lines() -> set[str]:
    """Every line of code or prose (long enough to be distinctive) inside a solution directive."""
    lines = set()
    for source in SOURCES:
        for match in notebooks.DIRECTIVE.finditer(source.read_text()):
            if match["kind"] == "solution":
                body = notebooks.OPTION.sub("", match["body"])
                lines |= {s for line in body.splitlines()
                          if len(s := line.strip()) >= 20 and not s.startswith(("```", "import ", "from "))}
    return lines


def notebook_text(path: Path) -> str:
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, list[Path]]:
    out = tmp_path_factory.mktemp("notebooks")
    return {audience: notebooks.build(audience, out / audience) for audience in ("student", "instructor")}


def test_sources_have_solutions_to_hide():
    assert len(solution_lines()) > 50


def test_student_notebooks_contain_no_solution(builds):
    secret = solution_lines()
    for path in builds["student"]:
        text = notebook_text(path)
        assert "{solution}" not in text and "#### Solution" not in text
        leaked = [line for line in secret if line in text]
        assert leaked == [], f"{path.name} shows solution lines: {leaked[:3]}"


def test_instructor_notebooks_keep_every_solution(builds):
    text = "\n".join(notebook_text(path) for path in builds["instructor"])
    assert all(line in text for line in solution_lines())
    assert "{solution}" not in text and "{exercise}" not in text  # rewritten as Markdown


def test_every_exercise_survives_with_a_ready_check_call(builds):
    for source, student in zip(SOURCES, builds["student"], strict=True):
        exercises_in_source = [m for m in notebooks.DIRECTIVE.finditer(source.read_text()) if m["kind"] == "exercise"]
        notebook = nbformat.read(student, as_version=4)
        nbformat.validate(notebook)
        text = notebook_text(student)
        for match in exercises_in_source:
            assert f"#### Exercise: {match['title'].strip()}" in text
            for call in notebooks.CHECK_CALL.findall(match["body"]):
                assert any(c.cell_type == "code" and call in c.source for c in notebook.cells), call


def test_directive_split_keeps_surrounding_text():
    source = "Intro.\n\n```{exercise} Add\n:label: ex-add\n\nUse `exercises.check_add(f)`.\n```\n\n" \
             "````{solution} ex-add\n:class: dropdown\n\n```python\nsecret = 1\n```\n````\n\nOutro."
    student = notebooks.split_markdown(source, with_solutions=False)
    assert student == [("markdown", "Intro.\n\n#### Exercise: Add\n\nUse `exercises.check_add(f)`."),
                       ("code", '# Your answer to "Add", then run:\n# exercises.check_add(f)'),
                       ("markdown", "Outro.")]
    instructor = "\n".join(text for _, text in notebooks.split_markdown(source, with_solutions=True))
    assert "secret = 1" in instructor and "#### Solution" in instructor


def test_every_check_helper_is_used_by_an_exercise_and_tested_right_and_wrong():
    chapters = "\n".join(source.read_text() for source in SOURCES)
    tests = (ROOT / "tests" / "test_exercises.py").read_text()
    helpers = [name for name, fn in inspect.getmembers(exercises, inspect.isfunction)
               if name.startswith("check_") and fn.__module__ == exercises.__name__]
    assert len(helpers) >= 15
    for name in helpers:
        assert f"exercises.{name}(" in chapters, f"no chapter uses {name}"
        assert re.search(rf"assert exercises\.{name}\(", tests), f"no right answer tested for {name}"
        assert re.search(rf"assert not exercises\.{name}\(", tests), f"no wrong answer tested for {name}"


@pytest.mark.parametrize("name, first_line", [("bert_mask", "def bert_mask("),
                                              ("MAE.training_step", "def training_step(self, batch: Batch)")])
def test_a_literalinclude_becomes_the_code_it_names_in_the_notebooks(name, first_line):
    path = "../sslcourse/methods/mae.py" if "." in name else "../sslcourse/masking.py"
    markdown = notebooks.myst_to_markdown(f"```{{literalinclude}} {path}\n:pyobject: {name}\n```\n")
    assert markdown.startswith("```python\n" + first_line) and "{literalinclude}" not in markdown


def test_every_literalinclude_of_the_chapters_is_expanded_in_the_student_notebooks():
    for source in SOURCES:
        assert "{literalinclude}" not in notebooks.myst_to_markdown(source.read_text()), source.name
