"""``p2pkit tutorial``: exit 0 when every exercise passes, 1 when one fails (with its hint),
2 with one line on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from p2pkit.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str):
    return CliRunner().invoke(cli, ["tutorial", *args])


def test_solutions_pass_and_starting_code_fails() -> None:
    good = _run("check", "7", str(ROOT / "tutorials/solutions/ch07.py"))
    assert good.exit_code == 0, good.output
    assert good.output.splitlines()[-1] == "2 of 2 exercises of chapter 7 pass"
    start = _run("check", "7", str(ROOT / "tutorials/exercises/ch07.py"))
    assert start.exit_code == 1
    assert "FAIL  7.1 bucket_depth: bucket_depth() is not written yet" in start.output
    assert start.output.count("hint: ") == 2


def test_default_file_is_the_chapters_exercise_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = _run("check", "12")
    assert out.exit_code == 1 and "verify_proof() is not written yet" in out.output


@pytest.mark.parametrize("args, message", [
    (("check", "14", "x.py"), "chapter 14 has no checked exercises"),
    (("check", "1", "/nonexistent/x.py"), "No such file or directory"),
])
def test_bad_input_is_one_line(args: tuple[str, ...], message: str) -> None:
    out = _run(*args)
    assert out.exit_code == 2 and message in out.output
    assert "Traceback" not in out.output


def test_list_names_every_exercise() -> None:
    out = _run("list")
    assert out.exit_code == 0 and "12.4  verify_proof" in out.output
