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

import errno
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import click

from p2pkit.errors import P2PKitError

#: Exit status for input that does not decode (a file that is not what it claims to be), bad
#: usage, a busy port.
EXIT_BAD_INPUT = 2
#: Exit status when the input decodes but breaks a rule the user asked to check (``--strict``).
EXIT_DEVIATIONS = 1
#: Exit status when a search or lookup ran and found nothing (as ``grep``).
EXIT_NO_RESULTS = 1
#: Exit status of an unexpected exception (a bug), as sysexits' EX_SOFTWARE.
EXIT_INTERNAL = 70
#: Exit status when interrupted before the work finished (128 + SIGINT).
EXIT_INTERRUPTED = 130


class BadInput(P2PKitError):
    """Input named ``source`` could not be used; ``str()`` is the one line the CLI prints."""

    def __init__(self, source: str, error: BaseException | str) -> None:
        self.source = source
        self.error = error
        super().__init__(f"{source}: {describe_os_error(error)}" if source
                         else describe_os_error(error))


def describe_os_error(error: BaseException | str) -> str:
    """A short reason: ``strerror`` for OS errors (with a hint for a busy port)."""
    if isinstance(error, OSError):
        if error.errno == errno.EADDRINUSE:
            return "address already in use (is another server running on that port?)"
        if error.errno == errno.EADDRNOTAVAIL:
            return "cannot listen on that address (not an address of this machine)"
        if isinstance(error, socket.gaierror):  # getaddrinfo's own (negative) codes
            return f"unknown host ({error.strerror})" if error.errno == socket.EAI_NONAME \
                else str(error.strerror)
        if error.errno and error.errno > 0:
            return os.strerror(error.errno)
        if error.strerror:
            return error.strerror
    if isinstance(error, OverflowError):
        return "port out of range (1-65535)"
    return str(error)


def input_name(path: str) -> str:
    """How messages name a file argument (``-`` is standard input)."""
    return "standard input" if path == "-" else path


def standard_input() -> Any:
    """``sys.stdin.buffer``, or :class:`BadInput` when it is a terminal (``-`` there would
    wait for typing that never comes)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise BadInput("standard input", "is a terminal: pipe the input in, or name a file")
    return sys.stdin.buffer


def capture_source(path: str) -> Any:
    """A capture named on the command line: standard input for ``-``, else the path (checked
    to be an existing file), as :class:`BadInput` otherwise."""
    if path == "-":
        return standard_input()
    if not os.path.exists(path):
        raise BadInput(path, FileNotFoundError(2, "No such file or directory"))
    if os.path.isdir(path):
        raise BadInput(path, IsADirectoryError(21, "Is a directory"))
    return path


def read_input(path: str) -> bytes:
    """Read a file named on the command line (``-`` is standard input), as :class:`BadInput`."""
    try:
        if path == "-":
            data = standard_input().read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise BadInput(input_name(path), e) from None
    return data


def one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(str(text).split())


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


def run(command: click.Command, args: Sequence[str] | None = None,
        prog_name: str | None = None, **extra: Any) -> int:
    """Run a click command behind the error boundary; return its exit status."""
    try:
        rv = click.Command.main(command, args=list(args) if args is not None else None,
                                prog_name=prog_name, standalone_mode=False, **extra)
    except BrokenPipeError:
        # stdout went away (| head): nothing more to say, and nowhere to say it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as e:  # a command that calls sys.exit itself
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        if os.environ.get("P2PKIT_TRACEBACK") and not isinstance(
                e, (click.ClickException, click.exceptions.Exit)):
            raise
        return report(e)
    return rv if isinstance(rv, int) else 0


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
