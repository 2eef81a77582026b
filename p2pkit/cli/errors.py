"""How CLI commands fail: one line on stderr, a documented exit status, never a traceback.

The error boundary is :func:`run` (used by :func:`p2pkit.cli.main` and by every group and
top-level command through ``BoundaryMixin``, so ``tracker()`` called from a script behaves
the same). It maps

* click's usage errors (bad option, out-of-range port, missing argument) to one line and
  status 2 (``EXIT_BAD_INPUT``);
* :class:`BadInput` and every other :class:`~p2pkit.errors.P2PKitError` to one line naming the
  input, and status 2;
* :class:`OSError` (a missing file, a port already in use) to one line and status 2;
* an interrupt (Ctrl-C outside a server) to ``interrupted`` and status 130;
* anything else (a bug) to one line naming the exception and status 70
  (``EXIT_INTERNAL``); ``P2PKIT_TRACEBACK=1`` shows the traceback instead.

Exit statuses, the same in every command:

====  =======================================================================================
0     done (a server stopped by SIGINT or SIGTERM, or after ``--duration``, also exits 0)
1     the work ran but the answer is "no": no search hits, no peers, an incomplete download,
      deviations under ``--strict``/``--lenient``, a damaged capture read part-way
2     bad input: usage, unreadable or undecodable files, bad addresses, a busy port
70    an internal error (a bug: please report it)
130   interrupted before the work could finish
====  =======================================================================================
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

# (re-exported: the names every command imports from here)
from p2pkit.cli.boundary import (  # noqa: F401
    EXIT_BAD_INPUT,
    EXIT_DEVIATIONS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NO_RESULTS,
    BadInput,
    capture_source,
    describe_os_error,
    guarded,
    input_name,
    one_line,
    read_input,
    standard_input,
)
from p2pkit.errors import P2PKitError


def _usage_line(e: click.UsageError) -> str:
    ctx = e.ctx
    where = ctx.command_path if ctx is not None else "p2pkit"
    hint = f" (see '{where} --help')" if ctx is not None else ""
    return f"{where}: {one_line(e.format_message())}{hint}"


def report(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr and return the exit status it maps to."""
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        exc.show()  # a group run without a command: its help page, as click does
        return exc.exit_code
    if isinstance(exc, click.UsageError):
        click.echo(_usage_line(exc), err=True)
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        click.echo(f"p2pkit: {one_line(exc.format_message())}", err=True)
        return exc.exit_code
    if isinstance(exc, (click.exceptions.Abort, KeyboardInterrupt)):
        click.echo("p2pkit: interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(exc, P2PKitError):
        click.echo(f"p2pkit: {one_line(str(exc))}", err=True)
        return EXIT_BAD_INPUT
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        click.echo(f"p2pkit: {one_line(where + describe_os_error(exc))}", err=True)
        return EXIT_BAD_INPUT
    click.echo(f"p2pkit: internal error: {type(exc).__name__}: {one_line(str(exc))} "
               "(a bug; P2PKIT_TRACEBACK=1 shows where)", err=True)
    return EXIT_INTERNAL


def reported_with_traceback(exc: BaseException) -> bool:
    """Whether ``P2PKIT_TRACEBACK=1`` shows ``exc``'s traceback (not click's own usage
    errors and exits, which are the user's, not a bug's)."""
    return not isinstance(exc, (click.ClickException, click.exceptions.Exit))


def run(command: click.Command, args: Sequence[str] | None = None,
        prog_name: str | None = None, **extra: Any) -> int:
    """Run a click command behind the error boundary (``p2pkit.cli.boundary.guarded``);
    return its exit status."""
    return guarded(lambda: click.Command.main(
        command, args=list(args) if args is not None else None, prog_name=prog_name,
        standalone_mode=False, **extra))


class BoundaryMixin:
    """Give a click command or group :func:`run` as its ``main`` in standalone mode."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args=args, prog_name=prog_name,  # type: ignore[misc]
                                complete_var=complete_var, standalone_mode=False, **extra)
        sys.exit(run(self, args, prog_name, complete_var=complete_var, **extra))  # type: ignore[arg-type]


class Command(BoundaryMixin, click.Command):
    """A top-level click command with the error boundary."""


class Group(BoundaryMixin, click.Group):
    """A click group with the error boundary; its subcommands need nothing."""
