"""The exercise checker: every solution in tutorials/solutions passes, every starting file in
tutorials/exercises fails each exercise with a reason and a hint, and wrong answers are named
by the input they fail on."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pkit.tutorial.exercises import CHAPTERS, ExerciseFailed, check_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_solution_passes(chapter: int) -> None:
    outcomes = check_file(chapter, ROOT / "tutorials" / "solutions" / f"ch{chapter:02d}.py")
    assert [o.reason for o in outcomes if not o.passed] == []
    assert [o.exercise.function for o in outcomes] == [e.function for e in CHAPTERS[chapter]]


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_starting_file_fails_with_a_helpful_message(chapter: int) -> None:
    outcomes = check_file(chapter, ROOT / "tutorials" / "exercises" / f"ch{chapter:02d}.py")
    assert outcomes and not any(o.passed for o in outcomes)
    for o in outcomes:
        assert o.reason == f"{o.exercise.function}() is not written yet"
        assert len(o.exercise.hint) > 30


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "mine.py"
    path.write_text(source)
    return path


def test_a_wrong_answer_names_the_input(tmp_path: Path) -> None:
    # the classic mistake: forgetting the zero padding to a power of two
    source = ("import hashlib\n"
              "def merkle_root(leaves):\n"
              "    level = list(leaves)\n"
              "    while len(level) > 1:\n"
              "        if len(level) % 2: level.append(level[-1])\n"
              "        level = [hashlib.sha256(level[i] + level[i + 1]).digest()"
              " for i in range(0, len(level), 2)]\n"
              "    return level[0]\n")
    [info, merkle] = check_file(2, _write(tmp_path, source))
    assert not info.passed and "defines no function info_hash()" in info.reason
    assert not merkle.passed and merkle.reason.startswith("merkle_root of 3 leaves: expected ")


def test_hashing_a_re_encoding_is_caught(tmp_path: Path) -> None:
    source = ("import hashlib\nfrom p2pkit import bencode\n"
              "def info_hash(t):\n"
              "    return hashlib.sha1(bencode.encode(bencode.decode(t, strict=False)[b'info']))"
              ".digest()\n")
    [info, _] = check_file(2, _write(tmp_path, source))
    assert not info.passed and "not canonical" in info.reason


def test_a_function_that_raises_is_reported(tmp_path: Path) -> None:
    [outcome] = check_file(3, _write(tmp_path, "def decode_compact(p):\n    return 1 / 0\n"))
    assert outcome.reason == "decode_compact() raised ZeroDivisionError: division by zero"


def test_files_that_cannot_be_checked(tmp_path: Path) -> None:
    with pytest.raises(ExerciseFailed, match="importing it failed: SyntaxError"):
        check_file(1, _write(tmp_path, "def build_request(:\n"))
    with pytest.raises(ExerciseFailed, match="chapter 5 has no checked exercises"):
        check_file(5, _write(tmp_path, ""))
    with pytest.raises(FileNotFoundError):
        check_file(1, tmp_path / "nothing.py")
