"""The click-free half of the CLI's error boundary (:mod:`p2pkit.cli.errors`): exit statuses,
:class:`BadInput`, the checks of file arguments, and :func:`guarded`, which runs a command's
work and turns whatever escapes it into one line and an exit status
(:func:`~p2pkit.cli.errors.report`, imported only then).

A run that needs no click (``p2pkit dissect FILE``, :mod:`p2pkit.cli.dissect_argv`) imports
this module and not click (``import click`` alone is about 110 M instructions; such a run
starts about 50 M sooner, the rest being standard modules imported anyway);
:mod:`p2pkit.cli.errors` re-exports every name here.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

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


def guarded(work: Callable[[], Any]) -> int:
    """Run ``work`` behind the error boundary; return its exit status (its result when an
    int, else 0). What escapes it is reported by :func:`p2pkit.cli.errors.report` (one line on
    stderr), a broken pipe ends quietly, ``sys.exit`` gives its status."""
    try:
        rv = work()
    except BrokenPipeError:
        # stdout went away (| head): nothing more to say, and nowhere to say it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as e:  # a command that calls sys.exit itself
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        from p2pkit.cli.errors import report, reported_with_traceback

        if os.environ.get("P2PKIT_TRACEBACK") and reported_with_traceback(e):
            raise
        return report(e)
    return rv if isinstance(rv, int) else 0
