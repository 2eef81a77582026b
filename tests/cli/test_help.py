"""Every command, option and argument of the tree is documented in ``--help``."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from p2pkit.cli import cli
from tests.cli.conftest import walk

COMMANDS = list(walk())


def _id(path):
    return " ".join(path) or "p2pkit"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[_id(p) for p, _ in COMMANDS])
def test_every_option_and_argument_has_help(path, command):
    assert (command.help or "").strip(), f"{_id(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="p2pkit")
    assert result.exit_code == 0, result.output
    page = result.stdout
    for param in command.params:
        if isinstance(param, click.Option):
            if param.hidden:
                continue
            assert (param.help or "").strip(), f"{_id(path)} {param.opts[0]} has no help"
            assert param.opts[0] in page
        elif isinstance(param, click.Argument):
            # the description (below the usage line) names every form the argument takes
            described = " ".join(page.split("Options:")[0].split("\n", 1)[1].split())
            metavar = param.make_metavar(click.Context(command)).strip("[].")
            for form in metavar.replace("]", "").split("|"):
                if form == "-":
                    assert "- for standard input" in described, f"{_id(path)}: say what - does"
                else:
                    assert form in described, f"{_id(path)}: the help does not describe {form}"


def test_salt_only_where_it_applies():
    with_salt = {_id(p) for p, c in COMMANDS if any("--salt" in getattr(x, "opts", ())
                                                    for x in c.params)}
    assert with_salt == {"dht get", "dht put"}


def test_every_subcommand_is_listed_in_its_group_help():
    for path, command in COMMANDS:
        if isinstance(command, click.Group):
            page = CliRunner().invoke(cli, [*path, "--help"], prog_name="p2pkit").stdout
            for name in command.list_commands(click.Context(command)):
                assert name in page, f"{_id(path)} --help does not list {name}"
