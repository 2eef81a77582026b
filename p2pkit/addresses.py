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
"""

from __future__ import annotations

import ipaddress
from typing import Any

import construct
from construct import Bytes, GreedyBytes, Int16ub, Struct

__all__ = ["AnyIPAddress", "CompactPeer", "CompactPeer6", "IPAddressAdapter", "IPv4Address",
           "IPv6Address"]


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
