"""``p2pkit gnutella simulate --core``: both cores print the same figures; refusals."""

from __future__ import annotations

import json

from click.testing import CliRunner

from p2pkit.cli import cli
from p2pkit.cli.gnutella_simulate import estimate_memory


def _run(*args: str):
    return CliRunner().invoke(cli, ["gnutella", "simulate", *args])


def test_both_cores_print_the_same_figures():
    args = ("--nodes", "400", "--ttl", "2", "--ttl", "3", "--queries", "5", "--json")
    servent, arrays = _run(*args, "--core", "servent"), _run(*args, "--core", "array")
    assert servent.exit_code == arrays.exit_code == 0, servent.output + arrays.output
    assert servent.output == arrays.output
    assert [json.loads(line)["ttl"] for line in arrays.output.splitlines()] == [2, 3]


def test_a_size_that_cannot_fit_is_refused_with_one_line():
    result = _run("--nodes", "1000000000", "--ttl", "2")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "servents need about" in result.output
    assert estimate_memory(100_000) < 1 << 30
