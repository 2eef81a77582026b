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

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import click

#: Ports are 16-bit; 0 is only meaningful for our own address ("any free port").
MAX_PORT = 65535

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$")


def _check_host(host: str) -> str:
    if ":" in host:
        raise ValueError("write an IPv6 address in brackets, as [::1]:6881")
    if not _HOSTNAME.match(host):
        raise ValueError(f"{host!r} is not a host name or IPv4 address")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 address") from None
    return host


def _check_ipv6(inner: str) -> str:
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise ValueError(f"{inner!r} is not an IPv6 address") from None
    return inner


def parse_host_port(text: str, *, allow_zero: bool = False,
                    default_host: str | None = None) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` (or ``:PORT`` when there is a ``default_host``) as a pair.

    Raises ``ValueError`` with a one-line reason. Port 0 ("any free port") only with
    ``allow_zero``.

    >>> parse_host_port(":6346", default_host="127.0.0.1")
    ('127.0.0.1', 6346)
    """
    text = text.strip()
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError("unclosed '[': write an IPv6 address as [::1]:6881")
        if not rest.startswith(":"):
            raise ValueError("expected :PORT after the IPv6 address, as [::1]:6881")
        host, port_text = _check_ipv6(inner), rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:6881 or [::1]:6881")
        if host:
            host = _check_host(host)
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text)
    low = 0 if allow_zero else 1
    if not low <= port <= MAX_PORT:
        raise ValueError(f"port {port} is out of range ({low}-{MAX_PORT})")
    if not host:
        if default_host is None:
            raise ValueError("expected HOST:PORT, the host is missing")
        return default_host, port
    return host, port


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
