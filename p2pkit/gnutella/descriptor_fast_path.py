"""Gnutella descriptors parsed without construct's streams: a fast path derived from the
schema objects of :mod:`p2pkit.gnutella.descriptors` (Gnutella 0.4 §2.2 header, the payloads
of GGEP §Usage, bye §2, QRP, vendor_msg §2, HSEP), for dissection.

:func:`fast_descriptor` reads one whole descriptor (its 23-byte header and a payload of exactly
the length the header gives) into the same ``Container`` the lenient schema
(:data:`~p2pkit.gnutella.descriptors.DescriptorLenient`) makes, field for field and in the same
order. It returns None wherever that schema would do anything but succeed (an unknown payload
type, a payload that does not parse, a bound), and the schema then runs and reports it: the
fast path never decides an error, a deviation or a bound.

Nothing here declares a layout. Each payload's reader is put together once, at import, from
its construct declaration (:data:`~p2pkit.gnutella.descriptors.PAYLOADS`): integer fields
from their ``FormatField`` formats, ``Bytes(n)``, adapters through their own ``_decode``,
``NullTerminated`` by its terminator, counted ``Array`` by its ``this.<field>`` count,
``GreedyRange`` of fixed items, nested ``Struct``, the payload-type switch of QRP
(:class:`~p2pkit.schema.MessageSwitch`), and the hand-written constructs through their own
bytes-level parsers (extension blocks: ``ggep._fast_extension_block``; the QueryHit trailer:
``_Trailer.parse_bytes``; vendor messages: ``_Vendor.parse_fast``). A declaration of any
other kind raises :class:`TypeError` at import, so a payload type cannot silently take a path
that disagrees with its schema. Tests compare both on every descriptor of the committed
Gnutella captures and on random and mutated descriptors
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
from p2pkit.gnutella.vendor import BODIES
from p2pkit.schema import FixedLayout, MessageSwitch

__all__ = ["BODY_READERS", "CHECK_READERS", "body_reader", "check_descriptor", "fast_descriptor"]

#: A reader: (payload bytes, position, the fields read so far) -> (value, next position); it
#: raises (anything) where the schema would not succeed.
Reader = Callable[[bytes, int, Container], tuple[Any, int]]


class _Refused(Exception):
    """The fast path stops: the schema runs and says why."""


def _unwrap(con: construct.Construct) -> construct.Construct:
    while isinstance(con, construct.Renamed):
        con = con.subcon
    return con


def _format_reader(fmt: str) -> Reader:
    unpack, size = struct.Struct(fmt).unpack_from, struct.calcsize(fmt)

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        return unpack(data, pos)[0], pos + size  # struct.error when short

    return read


def _bytes_reader(length: int) -> Reader:
    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        end = pos + length
        if end > len(data):
            raise _Refused
        return data[pos:end], end

    return read


def _terminated(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    if pos != len(data):
        raise _Refused
    return None, pos


def _greedy_bytes(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    return data[pos:], len(data)


def _extension_block(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    parts = ggep._fast_extension_block(data[pos:])
    if parts is None:
        raise _Refused
    return parts, len(data)


def _extension_block_check(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    parts = ggep._fast_extension_block(data[pos:], check=True)
    if parts is None:
        raise _Refused
    return parts, len(data)


def _trailer(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    return _Trailer.parse_bytes(data[pos:]), len(data)


def _trailer_check(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
    return _Trailer.parse_bytes(data[pos:], check=True), len(data)


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

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        message = parse(data[pos:], body)
        if message is None:
            raise _Refused
        return message, len(data)

    return read


def _adapter_reader(adapter: construct.Adapter, check: bool) -> Reader:
    inner, decode = body_reader(adapter.subcon, check), adapter._decode

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        value, pos = inner(data, pos, ctx)
        return decode(value, None, ""), pos

    return read


def _null_terminated_reader(con: construct.NullTerminated, check: bool) -> Reader:
    if con.include or not con.consume or not con.require or len(con.term) != 1:
        raise TypeError(f"no fast path for {con!r}")
    term, inner = con.term, body_reader(con.subcon, check)

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        end = data.find(term, pos)
        if end < 0:
            raise _Refused
        value, _ = inner(data[pos:end], 0, ctx)
        return value, end + 1

    return read


def _array_reader(con: construct.Array, check: bool) -> Reader:
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    count, item = con.count, body_reader(con.subcon, check)

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        n = count(ctx) if callable(count) else count
        if not 0 <= n:
            raise _Refused
        items = ListContainer()
        for _ in range(n):
            value, pos = item(data, pos, ctx)
            items.append(value)
        return items, pos

    return read


def _greedy_range_reader(con: construct.GreedyRange) -> Reader:
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    layout = FixedLayout(con.subcon)  # fixed items: the range ends where an item would not fit
    unpack, size = layout.unpacker(), layout.size

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        items = ListContainer()
        while len(data) - pos >= size:
            items.append(unpack(data[pos:pos + size]))
            pos += size
        return items, pos

    return read


def _fixed(con: construct.Construct) -> bool:
    """A field :class:`~p2pkit.schema.FixedLayout` reads (an integer, ``Bytes(n)``, an
    adapter over either)."""
    con = _unwrap(con)
    if isinstance(con, construct.Adapter):
        con = _unwrap(con.subcon)
    return isinstance(con, construct.FormatField) or (
        isinstance(con, construct.Bytes) and isinstance(con.length, int))


def _run_reader(run: list[construct.Construct]) -> Callable[[bytes, int, Container], int]:
    """Consecutive fixed-size fields read with one ``unpack_from`` (their
    :class:`~p2pkit.schema.FixedLayout`), written into the struct's container."""
    layout = FixedLayout(construct.Struct(*run))
    unpack, size = layout.struct.unpack_from, layout.size
    adapters = dict(layout.adapters)
    fields = [(name, adapters[i]._decode if i in adapters else None)
              for i, name in enumerate(layout.all_names)]

    def read(data: bytes, pos: int, out: Container) -> int:
        for (name, decode), value in zip(fields, unpack(data, pos)):  # struct.error: short
            out[name] = value if decode is None else decode(value, None, "")
        return pos + size

    return read


def _struct_reader(con: construct.Struct, check: bool, into: bool = False) -> Reader:
    """``into``: the fields go into the container given as the context (a descriptor's,
    after its header fields), which is returned."""
    steps: list[tuple[str | None, Any]] = []  # (name, reader), or (None, run reader)
    run: list[construct.Construct] = []
    for sub in list(con.subcons) + [None]:
        if sub is not None and sub.name and not sub.name.startswith("_") and _fixed(sub):
            run.append(sub)
            continue
        if run:
            steps.append((None, _run_reader(run)))
            run = []
        if sub is None:
            break
        if sub is construct.Terminated:
            steps.append(("", _terminated))
            continue
        if sub.name is None or sub.name.startswith("_"):
            raise TypeError(f"no fast path for an unnamed field of {con!r}")
        steps.append((sub.name, body_reader(sub, check)))

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        out = ctx if into else Container()
        for name, step in steps:
            if name is None:
                pos = step(data, pos, out)
            else:
                value, pos = step(data, pos, out)
                if name:
                    out[name] = value
        return out, pos

    return read


def _switch_reader(switch: MessageSwitch, check: bool) -> Reader:
    if switch.peek_at is not None or switch.empty is not None:
        raise TypeError(f"no fast path for {switch!r}")
    table = switch.table
    kind = _format_reader(switch.type_field.fmtstr)
    bodies = {type_id: (name, body_reader(body, check))
              for type_id, (name, body) in table.messages.items()}
    key = table.key

    def read(data: bytes, pos: int, ctx: Container) -> tuple[Any, int]:
        type_id, pos = kind(data, pos, ctx)
        name, body = bodies[type_id]  # KeyError: unknown, the schema reports it
        fields, pos = body(data, pos, ctx)
        if pos != len(data):  # parse_body: the body must use the stream up
            raise _Refused
        out = Container()
        out[key] = name
        for k, value in fields.items():
            out[k] = value
        return out, pos

    return read


def body_reader(con: construct.Construct, check: bool = False) -> Reader:
    """The reader of a declaration (see the module docstring for the kinds); TypeError for
    any other kind.

    >>> read = body_reader(PAYLOADS[0x40][1])  # push
    >>> fields, end = read(bytes(16) + bytes([1, 0, 0, 0, 127, 0, 0, 1, 0xCA, 0x18]), 0, None)
    >>> fields.ip_address, fields.port, fields.extensions, end
    ('127.0.0.1', 6346, ListContainer([]), 26)
    """
    con = _unwrap(con)
    if isinstance(con, construct.FormatField):
        return _format_reader(con.fmtstr)
    if isinstance(con, construct.Bytes) and isinstance(con.length, int):
        return _bytes_reader(con.length)
    if con is construct.GreedyBytes:
        return _greedy_bytes
    if isinstance(con, construct.Rebuild):
        return body_reader(con.subcon, check)  # parsing a Rebuild parses its field
    if isinstance(con, construct.Adapter):
        return _adapter_reader(con, check)
    if isinstance(con, construct.NullTerminated):
        return _null_terminated_reader(con, check)
    if isinstance(con, construct.Array):
        return _array_reader(con, check)
    if isinstance(con, construct.GreedyRange):
        return _greedy_range_reader(con)
    if isinstance(con, construct.Struct):
        return _struct_reader(con, check)
    if isinstance(con, MessageSwitch):
        return _switch_reader(con, check)
    if con is ggep.ExtensionBlock.subcon:
        return _extension_block_check if check else _extension_block
    if isinstance(con, _Trailer):
        return _trailer_check if check else _trailer
    if isinstance(con, _Vendor):
        return _vendor_reader(con)
    raise TypeError(f"no fast path for {con!r}")


#: Payload descriptor -> (name, the reader of its payload), for every payload of PAYLOADS.
#:
#: :meta hide-value:
BODY_READERS: dict[int, tuple[str, Reader]] = {
    ptype: (name, body_reader(body)) for ptype, (name, body) in PAYLOADS.items()}
#: The same readers with ``check=True``: extension blocks and the QueryHit trailer's private
#: area are walked, not decoded (what cannot fail is left out; see :func:`check_descriptor`).
#:
#: :meta hide-value:
CHECK_READERS: dict[int, tuple[str, Reader]] = {
    ptype: (name, body_reader(body, check=True)) for ptype, (name, body) in PAYLOADS.items()}

#: Payload descriptor -> the reader of a payload declared as a ``Struct``, writing its fields
#: into the descriptor's container (the same fields, one container fewer), as ``readers`` ->
#: ``into`` readers.
_INTO: dict[int, dict[int, Reader]] = {
    id(readers): {ptype: _struct_reader(_unwrap(body), check, into=True)
                  for ptype, (_, body) in PAYLOADS.items()
                  if isinstance(_unwrap(body), construct.Struct)}
    for readers, check in ((BODY_READERS, False), (CHECK_READERS, True))}

_HEADER = FixedLayout(DescriptorHeader).struct


def check_descriptor(data: bytes) -> Container | None:
    """Whether :func:`fast_descriptor` (so the schema) parses ``data``, without decoding
    what cannot fail: None when it does not, else the descriptor with the values of its
    extension blocks (and of a QueryHit's private area) left out. Every other field is the
    one :func:`fast_descriptor` gives (a summary line reads them; tests compare both).

    >>> pong = bytes([0x01, 1, 0, 20, 0, 0, 0]) + bytes(14) + bytes.fromhex("c3824455 4101")
    >>> check_descriptor(bytes(16) + pong).port
    0
    """
    return _read(data, CHECK_READERS)


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
    if type(data) is not bytes or len(data) < HEADER_LENGTH:
        return None
    guid, ptype, ttl, hops, length = _HEADER.unpack_from(data)
    entry = readers.get(ptype)
    if entry is None or length != len(data) - HEADER_LENGTH or length > MAX_PAYLOAD_LENGTH:
        return None
    name, read = entry
    out = Container()
    out["guid"], out["type"], out["ttl"], out["hops"] = guid, name, ttl, hops
    into = _INTO[id(readers)].get(ptype)
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
