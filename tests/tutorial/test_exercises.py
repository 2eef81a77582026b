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
    with pytest.raises(ExerciseFailed, match="chapter 14 has no checked exercises"):
        check_file(14, _write(tmp_path, ""))
    with pytest.raises(FileNotFoundError):
        check_file(1, tmp_path / "nothing.py")


def test_every_chapter_has_checked_exercises() -> None:
    chapters = sorted(int(p.name[:2]) for p in (ROOT / "tutorials").glob("[0-9][0-9]-*.md"))
    assert sorted(CHAPTERS) == chapters


def test_chapter_11s_bug_is_caught_by_the_conformance_suite(tmp_path: Path) -> None:
    # the chapter's buggy peer: begin taken as an offset into the whole file
    source = ("def read_block(content, piece_length, index, begin, length):\n"
              "    return content[begin:begin + length]\n")
    [outcome] = check_file(11, _write(tmp_path, source))
    assert not outcome.passed
    assert "bittorrent/bep3/piece/last-piece-data: fail" in outcome.reason


def test_a_flood_that_forgets_duplicates_is_caught(tmp_path: Path) -> None:
    # counting one message per node reached (a BFS) misses every duplicate copy
    source = ("def qrp_hash(word, bits):\n    return 0\n"
              "def query_messages(neighbours, origin, ttl):\n"
              "    seen, level = {origin}, [origin]\n"
              "    for _ in range(ttl):\n"
              "        level = [n for u in level for n in neighbours[u] if n not in seen]\n"
              "        seen.update(level)\n"
              "    return len(seen) - 1\n")
    [qrp, flood] = check_file(9, _write(tmp_path, source))
    assert not qrp.passed and qrp.reason.startswith("qrp_hash(")
    assert not flood.passed and flood.reason.startswith("query_messages(<flat network of 60")


def test_a_lookup_that_stops_after_one_round_is_caught(tmp_path: Path) -> None:
    source = ("def iterative_lookup(target, start, ask, k=8, alpha=3):\n"
              "    t = int.from_bytes(target, 'big')\n"
              "    known = set(start)\n"
              "    for node in start[:alpha]:\n"
              "        known.update(ask(node))\n"
              "    return sorted(known, key=lambda n: int.from_bytes(n, 'big') ^ t)[:k]\n")
    [outcome] = check_file(8, _write(tmp_path, source))
    assert not outcome.passed and "lookups found the true 8 closest" in outcome.reason


def test_a_frame_split_that_keeps_a_partial_message_is_caught(tmp_path: Path) -> None:
    source = ("def split_messages(stream):\n"
              "    out, pos = [], 0\n"
              "    while pos < len(stream):\n"
              "        end = pos + 4 + int.from_bytes(stream[pos:pos + 4], 'big')\n"
              "        out.append(stream[pos:end])\n"
              "        pos = end\n"
              "    return out\n")
    [split, verify] = check_file(4, _write(tmp_path, source))
    assert not split.passed and "an incomplete message is not a message yet" in split.reason
    assert not verify.passed


def test_a_checker_failure_is_not_blamed_on_the_learner(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from p2pkit.tutorial import exercises

    def broken_check(function):
        function(1)  # the learner's function answers...
        raise KeyError("checker")  # ...then the checker itself fails

    exercise = exercises.CHAPTERS[3][0]
    monkeypatch.setitem(exercises.CHAPTERS, 3, [exercises.Exercise(
        3, 2, exercise.function, exercise.title, exercise.hint, broken_check)])
    [outcome] = check_file(3, _write(tmp_path, "def decode_compact(p):\n    return []\n"))
    assert outcome.reason.startswith("the checker of decode_compact() failed (KeyError")
