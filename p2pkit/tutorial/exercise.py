"""What an exercise of the course is, and how its result is told (the checker's vocabulary).

An :class:`Exercise` names the function the learner writes, a hint, and a check that calls it
on inputs whose answer p2pkit knows and raises :class:`ExerciseFailed` with a sentence saying
what differs; :class:`Outcome` is one exercise's result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pkit.errors import P2PKitError

__all__ = ["CASES", "Exercise", "ExerciseFailed", "Outcome", "expect", "show"]

#: Random cases each check draws (seeded: the same inputs every run).
CASES = 50


class ExerciseFailed(P2PKitError):
    """The learner's function gave a wrong answer (or none); the message says which input."""


@dataclass(frozen=True)
class Exercise:
    """Exercise ``chapter.number``: write ``function``; ``check`` calls it."""

    chapter: int
    number: int
    function: str
    title: str
    hint: str
    check: Callable[[Callable[..., Any]], None]


@dataclass(frozen=True)
class Outcome:
    """One exercise's result: passed, or the reason and the hint."""

    exercise: Exercise
    passed: bool
    reason: str = ""


def show(value: Any) -> str:
    """``value`` as the checker prints it: bytes in hex, anything else as its ``repr``."""
    return value.hex() if isinstance(value, bytes | bytearray) else repr(value)


def expect(got: Any, want: Any, what: str) -> None:
    """Raise :class:`ExerciseFailed` naming ``what`` unless ``got == want``."""
    if got != want:
        raise ExerciseFailed(f"{what}: expected {show(want)}, got {show(got)}")
