"""The ``p2pkit`` command line: one module per command group.

Bad input never produces a traceback: a command raises :class:`~p2pkit.cli.errors.BadInput`
(or lets a :class:`~p2pkit.errors.P2PKitError` or :class:`OSError` escape), and :func:`main`
prints one line on stderr naming the input, field and offset, and exits with status 2; the
statuses are listed in :mod:`p2pkit.cli.errors`, the flags in :mod:`p2pkit.cli.options`.
"""

from __future__ import annotations

import importlib
import sys

import click

from p2pkit.cli.errors import Group, run

#: Command name -> "module:attribute" of the commands that belong to no protocol, imported only
#: when that command runs (a download should not pay for scapy and the dissector at start-up).
#: Protocol command groups come from :mod:`p2pkit.registry` (:func:`commands`).
COMMANDS = {
    "bencode": "p2pkit.cli.bencode:bencode_command",
    "conformance": "p2pkit.cli.conformance:conformance",
    "dissect": "p2pkit.cli.dissect:dissect_command",
    "tutorial": "p2pkit.cli.tutorial:tutorial",
}


def commands() -> dict[str, str]:
    """Every command: :data:`COMMANDS` plus each registered protocol's CLI group."""
    from p2pkit import registry

    found = dict(COMMANDS)
    for descriptor in registry.all_descriptors():
        if descriptor.cli is not None:
            name, target = descriptor.cli
            found.setdefault(name, target)
    return found


class _LazyGroup(Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = commands().get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2pkit")
def cli() -> None:
    """Teach, speak and judge BitTorrent, the Mainline DHT and Gnutella 0.6."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``p2pkit`` console script; returns the exit status.

    Errors become one line on stderr (:func:`p2pkit.cli.errors.run`, the error boundary).
    """
    return run(cli, argv, prog_name="p2pkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
