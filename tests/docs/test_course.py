"""The course (tutorials/): every chapter is a jupytext MyST notebook the docs build executes,
listed in the table of contents, with exercises whose solutions are folded (and executed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
CHAPTERS = sorted(TUTORIALS.glob("[0-9][0-9]-*.md"))


def test_chapters_exist_and_the_docs_see_them() -> None:
    assert len(CHAPTERS) >= 12
    link = ROOT / "docs" / "course"
    assert link.is_symlink() and link.resolve() == TUTORIALS.resolve()
    conf = (ROOT / "docs" / "conf.py").read_text()
    # a failing cell must fail the build (and CI)
    assert "nb_execution_raise_on_error = True" in conf
    assert re.search(r'nb_execution_mode = "(cache|force)"', conf)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_an_executable_notebook(chapter: Path) -> None:
    text = chapter.read_text()
    header = text.split("---", 2)[1]
    assert "format_name: myst" in header and "kernelspec:" in header and "name: python3" in header
    assert text.count("```{code-cell} ipython3") >= 1
    assert f"]({chapter.name})" in (TUTORIALS / "README.md").read_text()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_have_folded_solutions(chapter: Path) -> None:
    """Every exercise has a solution folded on the site (hide-input) and collapsed in
    JupyterLab (source_hidden), or is one the checker judges (``p2pkit tutorial check``)."""
    from p2pkit.tutorial.exercises import CHAPTERS as CHECKED

    text = chapter.read_text()
    number = int(chapter.stem[:2])
    exercises = re.findall(r"\*\*Exercise (\d+)\.(\d+)\.\*\*", text)
    assert len(exercises) >= 3
    assert {int(n) for n, _ in exercises} == {number}
    solutions = re.findall(r"```\{code-cell\} ipython3\n:tags: \[hide-input\]\n"
                           r":jupyter: \{source_hidden: true\}\n\n# Solution (\d+\.\d+)", text)
    assert len(solutions) == text.count("# Solution ")  # none left unfolded in JupyterLab
    checked = {f"{number}.{e.number}" for e in CHECKED[number]}
    written = {f"{a}.{b}" for a, b in exercises}
    assert len(solutions) >= 3 and set(solutions) <= written
    assert written - set(solutions) <= checked, "an exercise with neither solution nor checker"


def test_nothing_reaches_beyond_loopback() -> None:
    """Chapters run offline: no URL other than 127.0.0.1 is ever opened from a cell."""
    for chapter in CHAPTERS:
        cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", chapter.read_text(), re.S)
        for cell in cells:
            for host in re.findall(r"(?:https?|udp)://([^/:\"' ]+)", cell):
                assert host in ("127.0.0.1",), (chapter.name, host)
