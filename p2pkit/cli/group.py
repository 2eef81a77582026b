"""The ``p2pkit`` click group: every command, each imported on first use
(:func:`p2pkit.cli.commands`)."""

from __future__ import annotations

import importlib

import click

from p2pkit.cli import commands
from p2pkit.cli.errors import Group

__all__ = ["cli"]


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
