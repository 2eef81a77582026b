"""The ``p2pkit`` command line: one module per command group.

Bad input never produces a traceback: a command raises :class:`BadInput` (or lets a
:class:`~p2pkit.errors.P2PKitError` escape), and :func:`main` prints one line on stderr naming
the input, field and offset, and exits with status 2.
"""

from __future__ import annotations

import importlib
import sys

import click

from p2pkit.cli.errors import EXIT_BAD_INPUT, BadInput
from p2pkit.errors import P2PKitError

#: Command name -> "module:attribute", imported only when that command runs (a download
#: should not pay for scapy and the dissector at start-up).
COMMANDS = {
    "bencode": "p2pkit.cli.bencode:bencode_command",
    "bt": "p2pkit.cli.bt:bt",
    "conformance": "p2pkit.cli.conformance:conformance",
    "dht": "p2pkit.cli.dht:dht",
    "dissect": "p2pkit.cli.dissect:dissect_command",
    "gnutella": "p2pkit.cli.gnutella:gnutella",
}


class _LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2pkit")
def cli() -> None:
    """Teach, speak and judge BitTorrent, the Mainline DHT and Gnutella 0.6."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``p2pkit`` console script; returns the exit status."""
    try:
        rv = cli.main(args=argv, prog_name="p2pkit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("p2pkit: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except BadInput as e:
        click.echo(f"p2pkit: {e}", err=True)
        return EXIT_BAD_INPUT
    except P2PKitError as e:
        click.echo(f"p2pkit: {e}", err=True)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
