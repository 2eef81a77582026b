"""Leaf fields shared by the Gnutella schemas: GUIDs, IPv4 addresses, endpoints, text.

Gnutella 0.4 protocol (as quoted in GGEP §Usage and bye §2): integers are little-endian "as
usual on Gnutella", except the IP address (network order) and the query flags (min_speed §,
big-endian). A GUID is 16 opaque bytes (handshaking_0.6 §3 ``GUID:`` header, QRP §Appendix B
headers).

>>> endpoint = IPv4Endpoint.parse(bytes([127, 0, 0, 10, 0xCA, 0x18]))
>>> endpoint.ip, endpoint.port
('127.0.0.10', 6346)
>>> Text.build("bravo charlie")
b'bravo charlie'
"""

from __future__ import annotations

import ipaddress
from typing import Any

import construct
from construct import Bytes, Int16ul, Struct

__all__ = ["Guid", "IPv4", "IPv4Endpoint", "IPv6", "Text", "VarIntLE", "VendorCode"]


class _IPv4Adapter(construct.Adapter):
    """Four bytes in network order as a dotted-quad string."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        if len(obj) == 4:  # what str(IPv4Address(obj)) gives, without the object
            return f"{obj[0]}.{obj[1]}.{obj[2]}.{obj[3]}"
        return str(ipaddress.IPv4Address(obj))

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return ipaddress.IPv4Address(obj).packed


class _IPv6Adapter(construct.Adapter):
    """Sixteen bytes in network order as an IPv6 string (IPv6 §, GGEP ``6``)."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return str(ipaddress.IPv6Address(obj))

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return ipaddress.IPv6Address(obj).packed


class _TextAdapter(construct.Adapter):
    """Bytes as ``str``: UTF-8, with undecodable bytes kept (``surrogateescape``).

    Gnutella never fixed a character set for names and criteria; old servents sent Latin-1.
    ``surrogateescape`` keeps every byte, so ``build(parse(b)) == b`` holds for any input.
    """

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return obj.decode("utf-8", "surrogateescape")

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        if isinstance(obj, bytes):
            return obj
        return obj.encode("utf-8", "surrogateescape")


class _Latin1Adapter(construct.Adapter):
    """Bytes as ``str``, one character per byte (vendor codes, GGEP IDs: never altered)."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return obj.decode("latin-1")

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return obj.encode("latin-1")


class _VarIntLE(construct.Construct):
    """An unsigned little-endian integer filling the rest of its stream, at most 8 bytes.

    GGEP ``DU`` ("1 to 4 bytes"), ``LF`` and ``CT`` use it; the build is minimal (no trailing
    zero bytes, at least one byte).
    """

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        data = construct.stream_read_entire(stream, path)
        if not 1 <= len(data) <= 8:
            raise construct.ExplicitError(f"{len(data)}-byte integer (1 to 8 expected)", path=path)
        return int.from_bytes(data, "little")

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> int:
        if not isinstance(obj, int) or not 0 <= obj < 1 << 64:
            raise construct.ExplicitError(f"{obj!r} is not a 64-bit unsigned integer", path=path)
        size = max(1, (obj.bit_length() + 7) // 8)
        construct.stream_write(stream, obj.to_bytes(size, "little"), size, path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable-length integer", path=path)


# fmt: off
#: A 16-byte globally unique identifier (descriptor ids, servent ids).
Guid = Bytes(16)
IPv4 = _IPv4Adapter(Bytes(4))
IPv6 = _IPv6Adapter(Bytes(16))
#: An IPv4 address and a little-endian port (pongs, GGEP ``IPP``/``ALT``/``PUSH``).
IPv4Endpoint = Struct("ip" / IPv4, "port" / Int16ul)
Text = _TextAdapter(construct.GreedyBytes)
#: A vendor code: "4 ASCII characters [...] case sensitive" (vendor_msg §2, QueryHit trailer).
VendorCode = _Latin1Adapter(Bytes(4))
VarIntLE = _VarIntLE()
# fmt: on
