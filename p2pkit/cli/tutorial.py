"""``p2pkit tutorial``: the course's exercise checker (:mod:`p2pkit.tutorial.exercises`).

``p2pkit tutorial check N [FILE]`` runs chapter N's exercises against the functions in FILE
(default: ``tutorials/exercises/chNN.py``, or ``exercises/chNN.py`` from inside
``tutorials/``), prints one line per exercise with a hint for each that fails, and exits 0 when
all pass, 1 when one fails, 2 on bad input (no such chapter, no such file, a file that does not
import). ``p2pkit tutorial list`` lists the chapters and their exercises.
"""

from __future__ import annotations

from pathlib import Path

import click

from p2pkit.cli.errors import EXIT_DEVIATIONS, BadInput, Group
from p2pkit.tutorial.exercises import CHAPTERS, ExerciseFailed, check_file


@click.group("tutorial", cls=Group)
def tutorial() -> None:
    """The course's exercises: check your solutions."""


@tutorial.command("list")
def list_command() -> None:
    """Chapters with checked exercises, and the function each asks for."""
    for chapter, exercises in sorted(CHAPTERS.items()):
        for e in exercises:
            click.echo(f"{chapter:>2}.{e.number}  {e.function:<18} {e.title}")


def _default_file(chapter: int) -> str:
    for candidate in (Path("tutorials/exercises"), Path("exercises")):
        path = candidate / f"ch{chapter:02d}.py"
        if path.is_file():
            return str(path)
    raise BadInput("", f"no tutorials/exercises/ch{chapter:02d}.py here: name your file")


@tutorial.command("check")
@click.argument("chapter", type=int)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check_command(chapter: int, file: str | None) -> None:
    """Check the exercises of CHAPTER against the functions defined in FILE."""
    if chapter not in CHAPTERS:
        raise BadInput("", f"chapter {chapter} has no checked exercises (chapters with some: "
                           f"{', '.join(map(str, sorted(CHAPTERS)))})")
    path = file or _default_file(chapter)
    try:
        outcomes = check_file(chapter, path)
    except ExerciseFailed as e:
        raise BadInput("", e) from None
    for o in outcomes:
        e = o.exercise
        if o.passed:
            click.echo(f"pass  {chapter}.{e.number} {e.function}: {e.title}")
        else:
            click.echo(f"FAIL  {chapter}.{e.number} {e.function}: {o.reason}")
            click.echo(f"      hint: {e.hint}")
    failed = sum(not o.passed for o in outcomes)
    click.echo(f"{len(outcomes) - failed} of {len(outcomes)} exercises of chapter {chapter} pass")
    if failed:
        raise click.exceptions.Exit(EXIT_DEVIATIONS)
