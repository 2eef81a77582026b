"""Multiaddr: self-describing network addresses, binary and text (multiaddr.md).

"a multiaddr value is a recursive (TLV)+ structure": each component is a protocol code
(unsigned varint, multiaddr-protocols.csv) followed by a value whose size the protocol fixes
(``ip4`` 32 bits, ``tcp`` 16 bits, ``tls`` none) or, for size ``V``, a varint length and that
many bytes (``dns``, ``p2p``…). Text: ``/ip4/127.0.0.1/udp/1234``, the same example the spec
gives as ``0x4 0x7f 0x0 0x0 0x1 0x91 0x2 0x4 0xd2``.

>>> m = Multiaddr.from_text("/ip4/127.0.0.1/udp/1234")
>>> bytes(m).hex()
'047f000001910204d2'
>>> str(Multiaddr.from_bytes(bytes.fromhex("047f000001910204d2")))
'/ip4/127.0.0.1/udp/1234'
>>> Multiaddr.from_text("/ip4/127.0.0.1/tcp")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: multiaddr, field tcp, offset 15: tcp needs a value
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import construct
from construct import Int8ub, Int16ub, Struct

from p2pkit.addresses import IPv4Address, IPv6Address
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs import multibase
from p2pkit.ipfs.multihash import BoundedBytes, Multihash
from p2pkit.ipfs.varint import UnsignedVarintField
from p2pkit.schema import Schema

__all__ = ["MAX_COMPONENTS", "MAX_VALUE_LENGTH", "PROTOCOLS", "Multiaddr", "MultiaddrBinary"]

#: Longest variable-size value (a DNS name is at most 255 bytes, a unix path 4 KiB).
MAX_VALUE_LENGTH = 4096
#: Most components in one multiaddr (real ones have 2 to 8).
MAX_COMPONENTS = 32


class _Utf8(construct.Adapter):
    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return obj.decode("utf-8")

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        return obj.encode("utf-8")


_Text = _Utf8(BoundedBytes(MAX_VALUE_LENGTH))
_Binary = BoundedBytes(MAX_VALUE_LENGTH)
_Nothing = construct.Pass

#: name -> (code, value construct), multiaddr-protocols.csv (size 32 -> 4 bytes, V -> varint
#: length prefix, 0 -> no value).
PROTOCOLS: dict[str, tuple[int, construct.Construct]] = {
    "ip4": (4, IPv4Address),
    "tcp": (6, Int16ub),
    "udp": (273, Int16ub),
    "dccp": (33, Int16ub),
    "ip6": (41, IPv6Address),
    "ip6zone": (42, _Text),
    "ipcidr": (43, Int8ub),
    "dns": (53, _Text),
    "dns4": (54, _Text),
    "dns6": (55, _Text),
    "dnsaddr": (56, _Text),
    "sctp": (132, Int16ub),
    "udt": (301, _Nothing),
    "utp": (302, _Nothing),
    "unix": (400, _Text),
    "p2p": (421, _Binary),
    "tls": (448, _Nothing),
    "sni": (449, _Text),
    "noise": (454, _Nothing),
    "quic": (460, _Nothing),
    "quic-v1": (461, _Nothing),
    "webtransport": (465, _Nothing),
    "certhash": (466, _Binary),
    "http": (480, _Nothing),
    "https": (443, _Nothing),
    "ws": (477, _Nothing),
    "wss": (478, _Nothing),
    "p2p-circuit": (290, _Nothing),
    "webrtc-direct": (280, _Nothing),
    "webrtc": (281, _Nothing),
}
_BY_CODE = {code: name for name, (code, _) in PROTOCOLS.items()}
_ALIASES = {"ipfs": "p2p"}  # "ipfs, backwards compatibility; equivalent to /p2p"

# fmt: off
#: One component: the protocol code and its value.
Component = Struct(
    "code" / UnsignedVarintField * "protocol code (multiaddr-protocols.csv)",
    "value" / construct.Switch(construct.this.code,
                               {code: con for code, con in PROTOCOLS.values()},
                               default=construct.Error) * "value, sized by the protocol",
)
# fmt: on


class _Components(construct.Construct):
    """Components until the end of the input (at most :data:`MAX_COMPONENTS`); an unknown
    protocol code is a :class:`ParseError`."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        out = construct.ListContainer()
        while stream.read(1):
            stream.seek(-1, 1)
            if len(out) >= MAX_COMPONENTS:
                raise LimitExceeded(f"more than {MAX_COMPONENTS} components", offset=stream.tell())
            start = stream.tell()
            code = UnsignedVarintField._parsereport(stream, context, path)
            if code not in _BY_CODE:
                raise ParseError(f"unknown multiaddr protocol code {code}",
                                 path=f"[{len(out)}] -> code", offset=start)
            stream.seek(start)
            out.append(Component._parsereport(stream, context, f"{path} -> [{len(out)}]"))
        return out

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        for i, comp in enumerate(obj):
            Component._build(comp, stream, context, f"{path} -> [{i}]")
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable number of components", path=path)


#: A binary multiaddr: components until the end of the input.
MultiaddrBinary = Schema(_Components(), protocol="multiaddr")


def _value_to_text(name: str, value: Any) -> str:
    if name == "p2p":
        return multibase.encode("base58btc", value)[1:]
    if name == "certhash":
        return multibase.encode("base64url", value)
    if name in ("ip6zone", "dns", "dns4", "dns6", "dnsaddr", "sni"):
        return value
    if name == "unix":
        return value.lstrip("/")  # the path is the rest of the text form
    return str(value)


def _value_from_text(name: str, text: str) -> Any:
    if name == "ip4":
        return ipaddress.IPv4Address(text)
    if name == "ip6":
        return ipaddress.IPv6Address(text)
    if name in ("tcp", "udp", "dccp", "sctp"):
        if not text.isdigit() or int(text) > 0xFFFF:
            raise ValueError(f"port {text!r} is not 0..65535")
        return int(text)
    if name == "ipcidr":
        if not text.isdigit() or int(text) > 128:
            raise ValueError(f"mask {text!r} is not 0..128")
        return int(text)
    if name == "p2p":
        from p2pkit.ipfs.peer_id import PeerId

        return bytes(PeerId.from_text(text))
    if name == "certhash":
        _, data = multibase.decode(text)
        Multihash.parse(data)
        return data
    if not text:
        raise ValueError(f"{name} needs a non-empty value")
    return text


@dataclass(frozen=True)
class Multiaddr:
    """A multiaddr: ``(protocol name, value)`` components (value ``None`` for protocols with
    no value; an :mod:`ipaddress` object, an ``int`` port, ``str`` or ``bytes`` otherwise)."""

    components: tuple[tuple[str, Any], ...]

    @classmethod
    def from_bytes(cls, data: bytes) -> Multiaddr:
        """The binary form (``MultiaddrBinary``)."""
        return cls(tuple((_BY_CODE[c.code], c.value) for c in MultiaddrBinary.parse(data)))

    @classmethod
    def from_text(cls, text: str) -> Multiaddr:
        """The text form, ``/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…``."""
        if not isinstance(text, str) or not text.startswith("/"):
            raise ParseError("a multiaddr starts with '/'", protocol="multiaddr", offset=0)
        if len(text) > MAX_VALUE_LENGTH * 2:
            raise LimitExceeded(f"{len(text)} characters", protocol="multiaddr", offset=0)
        parts = text.split("/")[1:]
        if parts and parts[-1] == "":
            parts.pop()  # a trailing slash
        comps: list[tuple[str, Any]] = []
        offset = 1
        i = 0
        while i < len(parts):
            if len(comps) >= MAX_COMPONENTS:
                raise LimitExceeded(f"more than {MAX_COMPONENTS} components",
                                    protocol="multiaddr", offset=offset)
            name = _ALIASES.get(parts[i], parts[i])
            if name not in PROTOCOLS:
                raise ParseError(f"unknown protocol {parts[i]!r}", protocol="multiaddr",
                                 offset=offset)
            name_offset = offset
            offset += len(parts[i]) + 1
            if PROTOCOLS[name][1] is _Nothing:
                comps.append((name, None))
                i += 1
                continue
            if name == "unix":  # "the path is everything after /unix/"
                value_text = "/".join(parts[i + 1:])
                i = len(parts)
            elif i + 1 < len(parts):
                value_text = parts[i + 1]
                i += 2
            else:
                raise ParseError(f"{name} needs a value", protocol="multiaddr", path=name,
                                 offset=name_offset)
            try:
                value = _value_from_text(name, value_text)
            except (ValueError, ParseError) as e:
                raise ParseError(f"bad {name} value {value_text!r}: {e}", protocol="multiaddr",
                                 path=name, offset=offset) from None
            comps.append((name, "/" + value if name == "unix" else value))
            offset += len(value_text) + 1
        return cls(tuple(comps))

    @classmethod
    def decode(cls, value: str | bytes) -> Multiaddr:
        """:meth:`from_text` for ``str``, :meth:`from_bytes` for bytes."""
        return cls.from_text(value) if isinstance(value, str) else cls.from_bytes(value)

    def __bytes__(self) -> bytes:
        try:
            return MultiaddrBinary.build([{"code": PROTOCOLS[name][0], "value": value}
                                          for name, value in self.components])
        except KeyError as e:
            raise BuildError(f"unknown protocol {e}", protocol="multiaddr") from None

    def __str__(self) -> str:
        out = []
        for name, value in self.components:
            out.append(name if value is None else f"{name}/{_value_to_text(name, value)}")
        return "/" + "/".join(out)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.components)

    def value_for(self, name: str) -> Any:
        """The value of the first component called ``name``; ``KeyError`` if none.

        >>> Multiaddr.from_text("/ip6/::1/tcp/4001").value_for("tcp")
        4001
        """
        for n, value in self.components:
            if n == name:
                return value
        raise KeyError(name)

    def encapsulate(self, other: Multiaddr) -> Multiaddr:
        """``self`` followed by ``other`` (multiaddr.md §Encapsulation)."""
        return Multiaddr(self.components + other.components)

    @property
    def peer_id(self) -> bytes | None:
        """The multihash of the last ``/p2p/`` component, if any."""
        found = [v for n, v in self.components if n == "p2p"]
        return found[-1] if found else None
