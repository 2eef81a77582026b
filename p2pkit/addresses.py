"""Compact addresses, shared by every BitTorrent layout that carries peers.

BEP 23: "the peers value may be a string consisting of multiples of 6 bytes. First 4 bytes are
the IP address and last 2 bytes are the port number. All in network (big endian) notation."
BEP 7 and BEP 32 use 18 bytes for IPv6 (16-byte address, 2-byte port). The same layouts appear
in tracker responses (BEP 23, BEP 7), PEX (BEP 11), KRPC ``values``/``nodes`` (BEP 5, BEP 32)
and the BEP 10 handshake (``yourip``, ``ipv4``, ``ipv6``).

>>> peer = CompactPeer.parse(bytes.fromhex("7f0000021ae1"))
>>> str(peer.ip), peer.port
('127.0.0.2', 6881)
>>> CompactPeer.build({"ip": "127.0.0.2", "port": 6881}).hex()
'7f0000021ae1'

Textual endpoints (``HOST:PORT``, ``[IPV6]:PORT``) have one parser, :func:`parse_host_port`,
used by the CLI, the conformance harness and its pytest plugin.

>>> parse_host_port("[::1]:6881"), parse_host_port("localhost:80")
(('::1', 6881), ('localhost', 80))
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import construct
from construct import Bytes, GreedyBytes, Int16ub, Struct

__all__ = ["MAX_PORT", "AnyIPAddress", "CompactPeer", "CompactPeer6", "IPAddressAdapter",
           "IPv4Address", "IPv6Address", "parse_host_port"]


class IPAddressAdapter(construct.Adapter):
    """Raw network-order address bytes as an :mod:`ipaddress` object (built from str/int too)."""

    def __init__(self, size: int, kind: type) -> None:
        super().__init__(Bytes(size))
        self.kind = kind

    def _decode(self, obj: bytes, context: Any, path: str) -> Any:
        return self.kind(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if isinstance(obj, (bytes, bytearray)):
            obj = bytes(obj)
        try:
            return self.kind(obj).packed
        except ValueError as e:
            raise construct.ExplicitError(f"not an {self.kind.__name__}: {obj!r}",
                                          path=path) from e


class AnyIPAddress(construct.Adapter):
    """All remaining bytes, 4 or 16, as an IPv4 or IPv6 address (BEP 10 ``yourip``: "either an
    IPv4 (4 bytes) or an IPv6 (16 bytes) address")."""

    def __init__(self) -> None:
        super().__init__(GreedyBytes)

    def _decode(self, obj: bytes, context: Any, path: str) -> Any:
        return ipaddress.ip_address(obj)  # ValueError unless 4 or 16 bytes

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        try:
            return ipaddress.ip_address(obj).packed
        except ValueError as e:
            raise construct.ExplicitError(f"not an IP address: {obj!r}", path=path) from e


#: Four bytes of IPv4 address in network order, as :class:`ipaddress.IPv4Address`.
IPv4Address = IPAddressAdapter(4, ipaddress.IPv4Address)
#: Sixteen bytes of IPv6 address in network order, as :class:`ipaddress.IPv6Address`.
IPv6Address = IPAddressAdapter(16, ipaddress.IPv6Address)

# fmt: off
#: BEP 23: 4 bytes of host and 2 bytes of port, network byte order.
CompactPeer = Struct("ip" / IPv4Address, "port" / Int16ub)
#: BEP 7 / BEP 32: 16 bytes of IPv6 address and 2 bytes of port, network byte order.
CompactPeer6 = Struct("ip" / IPv6Address, "port" / Int16ub)
# fmt: on


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
