"""The one vocabulary of ``p2pkit`` flags, and the one ``HOST:PORT`` parser.

=================  ==========================================================================
``--listen``       our own address, ``HOST:PORT`` (port 0: any free port)
``--peer``         a remote peer or servent to connect to, ``HOST:PORT`` (repeatable)
``--bootstrap``    a DHT node to join through, ``HOST:PORT`` (repeatable)
``--timeout``      give up after this many seconds (a failure)
``--duration``     a server stops cleanly after this many seconds (not a failure)
``--json``         machine-readable output
``FILE`` or ``-``  every file argument that is read accepts ``-`` for standard input
=================  ==========================================================================

Addresses: ``127.0.0.1:6881``, ``localhost:6881``, ``[::1]:6881``; a bare ``:6881`` means the
command's default host.

>>> parse_host_port("[::1]:6881")
('::1', 6881)
>>> parse_host_port("localhost:80")
('localhost', 80)
>>> parse_host_port("127.0.0.1:0")
Traceback (most recent call last):
...
ValueError: port 0 is out of range (1-65535)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from p2pkit.addresses import MAX_PORT, parse_host_port  # noqa: F401  (re-exported: the vocabulary)


def show_host_port(host: str, port: int) -> str:
    """The address as the user would type it back (IPv6 in brackets).

    >>> show_host_port("::1", 6881)
    '[::1]:6881'
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HostPort(click.ParamType):
    """A click parameter type for ``HOST:PORT``: the value is a ``(host, port)`` tuple."""

    name = "HOST:PORT"

    def __init__(self, *, allow_zero: bool = False, default_host: str | None = None) -> None:
        self.allow_zero = allow_zero
        self.default_host = default_host

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, int]:
        """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``; a bad one is a usage
        error naming the option."""
        if isinstance(value, tuple):
            return value
        try:
            return parse_host_port(str(value), allow_zero=self.allow_zero,
                                   default_host=self.default_host)
        except ValueError as e:
            self.fail(f"{value}: {e}", param, ctx)


def listen_option(default: str, help: str = "Our own address (port 0: any free port).",
                  ) -> Callable[[Callable], Callable]:
    """``--listen HOST:PORT``: where we listen."""
    return click.option("--listen", default=default, show_default=True,
                        type=HostPort(allow_zero=True, default_host=default.rpartition(":")[0]
                                      .strip("[]")),
                        help=help)


def peer_option(help: str, *, required: bool = False, multiple: bool = True,
                name: str = "peers") -> Callable[[Callable], Callable]:
    """``--peer HOST:PORT``: a remote to connect to."""
    return click.option("--peer", name, multiple=multiple, required=required,
                        type=HostPort(), help=help)


def bootstrap_option(help: str = "A DHT node to join through, HOST:PORT (repeatable).", *,
                     required: bool = False) -> Callable[[Callable], Callable]:
    """``--bootstrap HOST:PORT``: a DHT node to join through (never a default router)."""
    return click.option("--bootstrap", "bootstraps", multiple=True, required=required,
                        type=HostPort(), help=help)


def timeout_option(default: float | None, help: str = "Give up after this many seconds.",
                   ) -> Callable[[Callable], Callable]:
    """``--timeout SECONDS``: give up (and fail) after this long."""
    return click.option("--timeout", type=click.FloatRange(0, min_open=True), default=default,
                        show_default=default is not None, metavar="SECONDS", help=help)


def duration_option(help: str = "Stop cleanly after this many seconds (default: until "
                    "SIGINT or SIGTERM).") -> Callable[[Callable], Callable]:
    """``--duration SECONDS``: a server's run time."""
    return click.option("--duration", type=click.FloatRange(0), default=None,
                        metavar="SECONDS", help=help)


def json_option(help: str = "Print JSON instead of text.") -> Callable[[Callable], Callable]:
    """``--json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)
