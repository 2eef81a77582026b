"""The generated CLI reference (docs/_ext/p2pkit_cli_reference.py) covers the whole CLI.

The expected commands are read from ``p2pkit ... --help`` as a user sees it (click's own
"Commands:" listing), not from the tree walk under test.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from p2pkit.cli import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_cli_reference  # noqa: E402


def _help(path: list[str]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="p2pkit")
    assert result.exit_code == 0, result.output
    return result.output


def _commands_from_help(path: list[str]) -> list[list[str]]:
    """Every command below ``path``, from the "Commands:" section of each --help."""
    text = _help(path)
    found = [path]
    if "Commands:" not in text:
        return found
    listing = text.split("Commands:", 1)[1]
    for name in re.findall(r"^  (\S+)", listing, flags=re.M):
        found += _commands_from_help([*path, name])
    return found


def test_every_command_appears_once():
    documented = [c.path for c in p2pkit_cli_reference.walk()]
    expected = ["p2pkit" + "".join(" " + p for p in path) for path in _commands_from_help([])]
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(expected)
    assert {"p2pkit dht serve", "p2pkit gnutella serve", "p2pkit bt tracker"} <= set(documented)


def test_every_option_of_a_command_is_listed_with_help_and_default():
    serve = next(c for c in p2pkit_cli_reference.walk() if c.path == "p2pkit dht serve")
    text = _help(["dht", "serve"])
    for option in re.findall(r"^  (--[\w-]+)", text, flags=re.M):
        assert any(option in p.name.split(", ") for p in serve.params), option
    listen = next(p for p in serve.params if p.name == "--listen")
    assert listen.kind == "HOST:PORT" and listen.default and listen.help
    assert serve.usage.startswith("p2pkit dht serve [OPTIONS]")
    assert "DHT node" in serve.help


def test_unset_defaults_and_flags_show_no_default():
    create = next(c for c in p2pkit_cli_reference.walk() if c.path == "p2pkit bt create")
    private = next(p for p in create.params if p.name == "--private")
    assert private.kind == "flag" and private.default == ""
    tracker = next(p for p in create.params if p.name == "--tracker")
    assert tracker.kind.endswith("(repeatable)") and "Sentinel" not in tracker.default
