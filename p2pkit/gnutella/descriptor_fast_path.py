"""Gnutella descriptors parsed without construct's streams: a fast path derived from the
schema objects of :mod:`p2pkit.gnutella.descriptors` (Gnutella 0.4 §2.2 header, the payloads
of GGEP §Usage, bye §2, QRP, vendor_msg §2, HSEP), for dissection, and its check.

:func:`fast_descriptor` reads one whole descriptor (its 23-byte header and a payload of exactly
the length the header gives) into the same ``Container`` the lenient schema
(:data:`~p2pkit.gnutella.descriptors.DescriptorLenient`) makes, field for field and in the same
order. It returns None wherever that schema would do anything but succeed (an unknown payload
type, a payload that does not parse, a bound), and the schema then runs and reports it: the
fast path never decides an error, a deviation or a bound. :func:`check_descriptor` says the
same without making any value (the summary lines' check).

Nothing here declares a layout. Each payload's readers are put together once, at import, by
the one builder of :mod:`~p2pkit.gnutella.payload_readers` from its construct declaration
(:data:`~p2pkit.gnutella.descriptors.PAYLOADS`); this module says what its leaves become:
:data:`VALUE` (integer fields from their ``FormatField`` formats, ``Bytes(n)``, adapters
through their own ``_decode``, ``GreedyRange`` of fixed items, and the hand-written
constructs through their own bytes-level parsers: extension blocks,
``ggep._fast_extension_block``; the QueryHit trailer, ``_Trailer.parse_bytes``; vendor
messages, ``_Vendor.parse_fast``) and :data:`CHECK` (the same, with what cannot fail left
out: extension values, text, a hit's private area; extension blocks by
``ggep.check_extension_block``). Tests compare both with the schema on every descriptor of
the committed Gnutella captures and on random and mutated descriptors
(``tests/gnutella/test_descriptor_fast_path.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import construct
from construct import Container, ListContainer

from p2pkit.gnutella import ggep
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
    DescriptorHeader,
    _Trailer,
    _Vendor,
)
from p2pkit.gnutella.fields import IPv4, Text, VendorCode
from p2pkit.gnutella.payload_readers import ANYTHING, Leaves, Reader, Refused, build_reader, unwrap
from p2pkit.gnutella.vendor import BODIES
from p2pkit.schema import FixedLayout, NamedBits

__all__ = ["BODY_READERS", "CHECK", "CHECK_READERS", "TOTAL_DECODERS", "VALUE", "body_reader",
           "check_descriptor", "fast_descriptor", "vendor_body", "whole_descriptor"]



def _format_reader(fmt: str) -> Reader:
    unpack, size = struct.Struct(fmt).unpack_from, struct.calcsize(fmt)

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size  # struct.error when short

    return read


def _bytes_reader(length: int, keep: bool = True) -> Reader:
    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        end = pos + length
        if end > len(data):
            raise Refused
        return (data[pos:end] if keep else None), end

    return read


def _greedy_bytes(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    return data[pos:], len(data)


def _extension_block(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    parts = ggep._fast_extension_block(data[pos:])
    if parts is None:
        raise Refused
    return parts, len(data)


def _trailer(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    return _Trailer.parse_bytes(data[pos:]), len(data)


def _vendor_body_readers() -> dict[tuple[tuple[str, int], int], Reader]:
    """The readers of the vendor message bodies that have one (the others: the schema)."""
    out = {}
    for key, versions in BODIES.items():
        for version, body in versions.items():
            try:
                out[key, version] = body_reader(body)
            except TypeError:
                continue
    return out


#: (vendor message, version) -> the reader of its body (filled when first needed: the readers
#: of the bodies are made after this module's).
_VENDOR_BODIES: dict[tuple[tuple[str, int], int], Reader] = {}


def vendor_body(key: tuple[str, int], version: int, payload: bytes) -> Any:
    """The body of the vendor message ``key`` at ``version`` (vendor_msg §2, the bodies of
    :data:`~p2pkit.gnutella.vendor.BODIES`) read by its fast path, for
    ``_Vendor.parse_fast``; None where it has none."""
    if not _VENDOR_BODIES:
        _VENDOR_BODIES.update(_vendor_body_readers())
    read = _VENDOR_BODIES.get((key, version))
    if read is None:
        return None
    value, _ = read(payload, 0, Container())
    return value


def _vendor_reader(vendor: _Vendor) -> Reader:
    parse, body = vendor.parse_fast, vendor_body

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        message = parse(data[pos:], body)
        if message is None:
            raise Refused
        return message, len(data)

    return read


def _adapter_reader(adapter: construct.Adapter, inner: Reader) -> Reader:
    decode = adapter._decode

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        value, pos = inner(data, pos, ctx)
        return decode(value, None, ""), pos

    return read


def _greedy_range_reader(con: construct.GreedyRange) -> Reader:
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    layout = FixedLayout(con.subcon)  # fixed items: the range ends where an item would not fit
    unpack, size = layout.unpacker(), layout.size

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        items = ListContainer()
        while len(data) - pos >= size:
            items.append(unpack(data[pos:pos + size]))
            pos += size
        return items, pos

    return read


#: The Container path's reader of each kind of leaf (``payload_readers.leaf_kind``): its
#: value as the schema parses it.
_VALUE_LEAVES: dict[str, Callable[[Any, Callable[[construct.Construct], Reader]], Reader]] = {
    "format": lambda con, build: _format_reader(con.fmtstr),
    "bytes": lambda con, build: _bytes_reader(con.length),
    "greedy_bytes": lambda con, build: _greedy_bytes,
    "adapter": lambda con, build: _adapter_reader(con, build(con.subcon)),
    "greedy_range": lambda con, build: _greedy_range_reader(con),
    "extension_block": lambda con, build: _extension_block,
    "trailer": lambda con, build: _trailer,
    "vendor": lambda con, build: _vendor_reader(con),
}


def _value_fixed(layout: FixedLayout, values: list[str], r: str, env: dict[str, Any]
                 ) -> list[tuple[str, str | None]]:
    """A run's fields as the schema parses them: adapters through their own ``_decode``."""
    adapters = dict(layout.adapters)
    out: list[tuple[str, str | None]] = []
    for i, (name, x) in enumerate(zip(layout.all_names, values)):
        if i in adapters:
            env[f"D{r}_{i}"] = adapters[i]._decode
            x = f"D{r}_{i}({x}, None, '')"
        out.append((name, x))
    return out


#: The Container path (``record.value``, :func:`fast_descriptor`): each value as
#: :data:`~p2pkit.gnutella.descriptors.DescriptorLenient` parses it.
VALUE = Leaves("value", Container, _value_fixed, ListContainer, lambda name: name,
               _VALUE_LEAVES)

#: Adapters whose ``_decode`` accepts every value of their field (tests run them on random
#: bytes): a check need not run them.
TOTAL_DECODERS: tuple[type, ...] = (type(IPv4), type(VendorCode), type(Text), NamedBits)


def _check_extension_block(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    """``ggep.check_extension_block`` of the rest (its two steps here: one call fewer)."""
    if _CHECKED_BLOCK(data, pos) is None and _walk_block(data[pos:], True) is None:
        raise Refused
    return None, len(data)


_CHECKED_BLOCK, _walk_block = ggep._CHECKED_BLOCK, ggep._fast_extension_block


def _check_trailer(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    _Trailer.parse_bytes(data[pos:], check=True)  # ExplicitError where it breaks
    return None, len(data)


def _check_greedy_range(con: construct.GreedyRange) -> Reader:
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    layout = FixedLayout(con.subcon)
    if any(not isinstance(adapter, TOTAL_DECODERS) for _, adapter in layout.adapters):
        return _greedy_range_reader(con)
    size = layout.size

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        return None, pos + (len(data) - pos) // size * size

    return read


def _check_adapter(con: construct.Adapter, build: Callable[[construct.Construct], Reader]
                   ) -> Reader:
    """An adapter that accepts every value is not run; any other is."""
    if isinstance(con, TOTAL_DECODERS):
        return build(con.subcon)
    return _VALUE_LEAVES["adapter"](con, build)


#: The check's reader of each kind of leaf: what may fail is run, what cannot is left out
#: (extension values, a QueryHit's private area, text, bytes); the others: the Container
#: path's.
_CHECK_LEAVES = {
    **_VALUE_LEAVES,
    "bytes": lambda con, build: _bytes_reader(con.length, keep=False),
    "greedy_bytes": lambda con, build: ANYTHING,
    "adapter": _check_adapter,
    "greedy_range": lambda con, build: _check_greedy_range(con),
    "extension_block": lambda con, build: _check_extension_block,
    "trailer": lambda con, build: _check_trailer,
}


def _check_fixed(layout: FixedLayout, values: list[str], r: str, env: dict[str, Any]
                 ) -> list[tuple[str, str | None]]:
    """A run's fields checked: the decoders that may fail run, nothing is kept."""
    out: list[tuple[str, str | None]] = [(name, None) for name in layout.all_names]
    for i, adapter in layout.adapters:
        if not isinstance(adapter, TOTAL_DECODERS):
            env[f"D{r}_{i}"] = adapter._decode
            out[i] = (layout.all_names[i], f"D{r}_{i}({values[i]}, None, '')")
    return out


def _check_inline(con: construct.Construct, env: dict[str, Any]) -> str | None:
    """The check of an extension block (``ggep.check_extension_block``'s two steps) and of
    the QueryHit trailer as statements on ``data[pos:end]``."""
    if con is ggep.ExtensionBlock.subcon:
        env["CheckedBlock"], env["WalkBlock"] = ggep._CHECKED_BLOCK, ggep._fast_extension_block
        return ("if pos < end and CheckedBlock(data, pos, end) is None and "
                "WalkBlock(data[pos:end], True) is None: raise Refused")  # (none: a block)
    if isinstance(con, _Trailer):
        env["CheckTrailer"] = _Trailer.parse_bytes
        return "CheckTrailer(data[pos:end], '', True)"  # ExplicitError where it breaks
    return None


#: The check of summary lines (:func:`check_descriptor`): whether the payload parses, values
#: kept only where asked (``build_reader``'s ``keep``).
CHECK = Leaves("check", None, _check_fixed, None, lambda name: name, _CHECK_LEAVES,
               _check_inline)


def body_reader(con: construct.Construct) -> Reader:
    """The Container path's reader of a declaration (see
    :mod:`~p2pkit.gnutella.payload_readers` for the kinds); TypeError for any other kind.

    >>> read = body_reader(PAYLOADS[0x40][1])  # push
    >>> fields, end = read(bytes(16) + bytes([1, 0, 0, 0, 127, 0, 0, 1, 0xCA, 0x18]), 0, None)
    >>> fields.ip_address, fields.port, fields.extensions, end
    ('127.0.0.1', 6346, ListContainer([]), 26)
    """
    return build_reader(con, VALUE)


#: Payload descriptor -> (name, the reader of its payload), for every payload of PAYLOADS.
#:
#: :meta hide-value:
BODY_READERS: dict[int, tuple[str, Reader]] = {
    ptype: (name, body_reader(body)) for ptype, (name, body) in PAYLOADS.items()}
#: The same payloads' checks (:data:`CHECK`): whether each parses, nothing kept.
#:
#: :meta hide-value:
CHECK_READERS: dict[int, tuple[str, Reader]] = {
    ptype: (name, build_reader(body, CHECK)) for ptype, (name, body) in PAYLOADS.items()}

#: Payload descriptor -> the reader of a payload declared as a ``Struct``, writing its fields
#: into the descriptor's container (the same fields, one container fewer).
_INTO: dict[int, Reader] = {
    ptype: build_reader(body, VALUE, into=True) for ptype, (_, body) in PAYLOADS.items()
    if isinstance(unwrap(body), construct.Struct)}

_HEADER = FixedLayout(DescriptorHeader).struct
#: The payload length of a header (Gnutella 0.4 §2.2: its last field), from the same layout.
_LENGTH = struct.Struct(_HEADER.format[0] + _HEADER.format[-1])
_LENGTH_AT = _HEADER.size - _LENGTH.size


def whole_descriptor(data: bytes) -> int | None:
    """The payload descriptor of ``data`` when it is one whole descriptor (Gnutella 0.4
    §2.2: a header whose payload length is what follows it, at most ``MAX_PAYLOAD_LENGTH``),
    else None: what every reader of a descriptor here asks first.

    >>> whole_descriptor(bytes(16) + bytes([0x00, 1, 0, 2, 0, 0, 0]) + bytes(2))
    0
    """
    if type(data) is not bytes or len(data) < HEADER_LENGTH:
        return None
    length = _LENGTH.unpack_from(data, _LENGTH_AT)[0]
    if length != len(data) - HEADER_LENGTH or length > MAX_PAYLOAD_LENGTH:
        return None
    return data[16]


def check_descriptor(data: bytes) -> bool:
    """Whether :func:`fast_descriptor` (so the schema) parses ``data``, without making any
    value (:data:`CHECK`; tests compare both).

    >>> pong = bytes([0x01, 1, 0, 20, 0, 0, 0]) + bytes(14) + bytes.fromhex("c3824455 4101")
    >>> check_descriptor(bytes(16) + pong), check_descriptor(bytes(16) + pong[:-1])
    (True, False)
    """
    entry = CHECK_READERS.get(whole_descriptor(data))  # type: ignore[arg-type]
    if entry is None:
        return False
    try:
        _, end = entry[1](data, HEADER_LENGTH, None)
    except Exception:  # noqa: BLE001 - the schema says what is wrong
        return False
    return end == len(data)


def fast_descriptor(data: bytes) -> Container | None:
    """The descriptor ``data`` (header and the whole payload, nothing after) as
    :data:`~p2pkit.gnutella.descriptors.DescriptorLenient` parses it, or None where that
    schema must run.

    >>> d = fast_descriptor(bytes(16) + bytes([0x00, 1, 0]) + bytes(4))
    >>> d.type, d.ttl, d.extensions
    ('ping', 1, ListContainer([]))
    """
    return _read(data, BODY_READERS)


def _read(data: bytes, readers: dict[int, tuple[str, Reader]]) -> Container | None:
    ptype = whole_descriptor(data)
    entry = readers.get(ptype)  # type: ignore[arg-type]
    if entry is None:
        return None
    name, read = entry
    out = Container()
    out["guid"], out["type"], out["ttl"], out["hops"] = data[:16], name, data[17], data[18]
    into = _INTO.get(ptype)
    try:
        if into is not None:
            _, end = into(data, HEADER_LENGTH, out)
        else:
            fields, end = read(data, HEADER_LENGTH, None)
            for k, value in fields.items():
                out[k] = value
    except Exception:  # noqa: BLE001 - the schema says what is wrong
        return None
    if end != len(data):
        return None
    return out
