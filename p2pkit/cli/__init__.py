"""The ``p2pkit`` command line: one module per command group.

Bad input never produces a traceback: a command raises :class:`~p2pkit.cli.errors.BadInput`
(or lets a :class:`~p2pkit.errors.P2PKitError` or :class:`OSError` escape), and :func:`main`
prints one line on stderr naming the input, field and offset, and exits with status 2; the
statuses are listed in :mod:`p2pkit.cli.errors`, the flags in :mod:`p2pkit.cli.options`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: Command name -> "module:attribute" of the commands that belong to no protocol, imported only
#: when that command runs (a download should not pay for scapy and the dissector at start-up).
#: Protocol command groups come from :mod:`p2pkit.registry` (:func:`commands`).
COMMANDS = {
    "bencode": "p2pkit.cli.bencode:bencode_command",
    "conformance": "p2pkit.cli.conformance:conformance",
    "dissect": "p2pkit.cli.dissect_command:dissect_command",
    "tutorial": "p2pkit.cli.tutorial:tutorial",
}


#: The variable asking click for shell completion (``_P2PKIT_COMPLETE``): click answers it.
COMPLETION_VARIABLE = "_P2PKIT_COMPLETE"


def commands() -> dict[str, str]:
    """Every command: :data:`COMMANDS` plus each registered protocol's CLI group."""
    from p2pkit import registry

    found = dict(COMMANDS)
    for descriptor in registry.all_descriptors():
        if descriptor.cli is not None:
            name, target = descriptor.cli
            found.setdefault(name, target)
    return found


def __getattr__(name: str) -> Any:
    """``cli`` (the click group, :mod:`p2pkit.cli.group`), imported when first asked for: a
    run that needs no click (:mod:`p2pkit.cli.dissect_argv`) does not import click."""
    if name == "cli":
        from p2pkit.cli.group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``p2pkit`` console script; returns the exit status.

    Errors become one line on stderr (:func:`p2pkit.cli.errors.run`, the error boundary).
    ``p2pkit dissect FILE`` with flags only (``p2pkit.cli.dissect_argv.plain_dissect``) runs
    without click, behind the same boundary; anything else goes through click.
    """
    from p2pkit.cli.dissect_argv import plain_dissect

    args = sys.argv[1:] if argv is None else list(argv)
    params = None if COMPLETION_VARIABLE in os.environ else plain_dissect(args)
    if params is not None:
        from p2pkit.cli.boundary import guarded

        def dissect() -> Any:
            from p2pkit.cli.dissect import dissect

            try:
                return dissect(**params)
            except (EOFError, KeyboardInterrupt):
                # (as click: a blank line closes the terminal's ^C echo, then "interrupted")
                print(file=sys.stderr, flush=True)
                raise KeyboardInterrupt from None

        return guarded(dissect)
    from p2pkit.cli.errors import run

    return run(__getattr__("cli"), argv, prog_name="p2pkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
