"""The ``p2pkit`` command line: one module per command group.

Bad input never produces a traceback: a command raises :class:`BadInput` (or lets a
:class:`~p2pkit.errors.P2PKitError` escape), and :func:`main` prints one line on stderr naming
the input, field and offset, and exits with status 2.
"""

from __future__ import annotations

import sys

import click

from p2pkit.cli.errors import EXIT_BAD_INPUT, BadInput
from p2pkit.errors import P2PKitError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="p2pkit")
def cli() -> None:
    """Teach, speak and judge BitTorrent, the Mainline DHT and Gnutella 0.6."""


def _register() -> None:
    from p2pkit.cli import bencode, bt, dht, dissect, gnutella

    cli.add_command(bencode.bencode_command)
    cli.add_command(bt.bt)
    cli.add_command(dht.dht)
    cli.add_command(dissect.dissect_command)
    cli.add_command(gnutella.gnutella)


_register()


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
