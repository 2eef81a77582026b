"""Gnutella descriptors parsed straight into the JSON fields of their record, for the field
tree (``-V``) and JSON output of the dissector.

A deferred descriptor's record (:mod:`p2pkit.gnutella.deferred`) shows its payload as the
``fields`` of the record: what ``p2pkit.capture.record.json_value`` makes of the
``Container`` the lenient schema (:data:`~p2pkit.gnutella.descriptors.DescriptorLenient`)
parses (bytes as hex, text escaped, the ``type`` left out, Gnutella 0.4 §2.2 header first).
:func:`json_descriptor` gives those fields from the descriptor's bytes in one step, without
the Containers: the readers are put together once, at import, by the one builder of
:mod:`~p2pkit.gnutella.payload_readers` from the same construct declarations as
:mod:`~p2pkit.gnutella.descriptor_fast_path` (nothing here declares a layout), with the
leaves of :data:`JSON`, which write each value as its JSON:

- a ``Struct``'s runs of fixed-size fields: integers kept, ``Bytes(n)`` as hex, adapters
  through their own ``_decode`` and then the JSON conversion, into one dictionary;
- extension blocks (GGEP §Extension Block, Appendix B) by ``ggep._fast_extension_block``
  asked for dictionaries (``json=``): the same walk over the bytes, one dictionary per
  extension instead of a Container converted afterwards;
- ``NullTerminated`` text, counted ``Array`` (a list) and the payload-type switch of QRP:
  the builder's, the switch's variant name as its JSON;
- any other declaration (vendor messages, the QueryHit trailer, ``GreedyRange``):
  the fast path's reader of it and the JSON conversion of what it gives.

:func:`json_descriptor` returns None wherever the fast path would (the schema must run and
say what is wrong): the deferred record then decodes the Container and converts it as
before. Tests compare both on every descriptor of the committed Gnutella captures and on
random and mutated descriptors (``tests/gnutella/test_descriptor_json.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import construct

from p2pkit.capture.record import BINARY_INLINE_LIMIT, json_value
from p2pkit.gnutella import ggep
from p2pkit.gnutella.descriptor_fast_path import body_reader, vendor_body, whole_descriptor
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    PAYLOADS,
    _extension_block_or_none,
    _Trailer,
    _Vendor,
    counted_vector_parser,
)
from p2pkit.gnutella.fields import IPv4, VendorCode
from p2pkit.gnutella.payload_readers import Leaves, Refused, build_reader, unwrap
from p2pkit.schema import FixedLayout

__all__ = ["EXTENSION_JSON", "JSON", "JSON_READERS", "json_descriptor", "json_items",
           "json_reader", "json_record"]

#: A JSON reader: (payload bytes, position, the fields read so far, as JSON) -> (the value's
#: JSON, next position); it raises (anything) where the fast path would refuse.
JsonReader = Callable[[bytes, int, dict[str, Any]], tuple[Any, int]]


def _raw(con: construct.Construct) -> JsonReader:
    """The fast path's reader of ``con``, its value converted by ``json_value``."""
    read = body_reader(con)

    def read_json(data: bytes, pos: int, ctx: dict[str, Any]) -> tuple[Any, int]:
        value, pos = read(data, pos, ctx)
        return json_value(value), pos

    return read_json


def _extension_block(data: bytes, pos: int, ctx: dict[str, Any]) -> tuple[Any, int]:
    parts = ggep._fast_extension_block(data[pos:], json=EXTENSION_JSON)
    if parts is None:
        raise Refused
    return parts, len(data)


#: (adapter type, struct code of its field) -> its ``_decode`` as an expression giving the
#: same ``str`` (``{}``: the field's value), for the text adapters of fixed-size fields.
_INLINE_DECODES: dict[tuple[type, str], str] = {
    (type(VendorCode), "4s"): "{}.decode('latin-1')",
    (type(IPv4), "4s"): "f'{{{0}[0]}}.{{{0}[1]}}.{{{0}[2]}}.{{{0}[3]}}'",
}


def _json_exprs(layout: FixedLayout, values: list[str], r: str, env: dict[str, Any]
                ) -> list[tuple[str, str | None]]:
    """(name, the expression of its JSON) of each field of a fixed-size ``layout`` whose
    unpacked values are named ``values``: integers kept, ``Bytes(n)`` as hex (or as
    ``json_value`` writes longer ones), adapters through their own ``_decode`` and then the
    JSON of what they give; the names they use go into ``env`` (``r``: their prefix)."""
    if layout.consts:
        raise TypeError(f"no JSON reader for the constants of {layout.format}")
    env["jv"] = json_value
    adapters = dict(layout.adapters)
    out: list[tuple[str, str | None]] = []
    for i, (name, x) in enumerate(zip(layout.all_names, values)):
        code = layout.codes[i]
        inline = _INLINE_DECODES.get((type(adapters[i]), code)) if i in adapters else None
        if inline is not None:  # the adapter's _decode as an expression (tests compare)
            expr = f"(y if (y := {inline.format(x)}).isascii() else jv(y))"
        elif i in adapters:
            env[f"D{r}_{i}"] = adapters[i]._decode
            expr = (f"(y if type(y := D{r}_{i}({x}, None, '')) is str and y.isascii() "
                    f"else jv(y))")
        elif code[-1] == "s":
            expr = f"{x}.hex()" if int(code[:-1]) <= BINARY_INLINE_LIMIT else f"jv({x})"
        elif code[-1] in "bBhHiIlLqQ":
            expr = x  # an integer: its own JSON
        else:
            expr = f"jv({x})"
        out.append((name, expr))
    return out


def _json_display(layout: FixedLayout, env: dict[str, Any]) -> tuple[list[str], str]:
    """The names of a fixed ``layout``'s unpacked values in generated code, and the dictionary
    display that turns them into the JSON of its Container."""
    values = [f"v{i}" for i in range(len(layout.all_names))]
    exprs = _json_exprs(layout, values, "", env)
    return values, "{" + ", ".join(f"{name!r}: {expr}" for name, expr in exprs) + "}"


def json_items(item: construct.Construct) -> Callable[[bytes], list[dict[str, Any]] | None]:
    """A function reading a concatenation of fixed-size ``item`` records (one
    ``iter_unpack``, as :meth:`~p2pkit.schema.FixedLayout.many_unpacker`) into the JSON of
    their Containers; None when the input is not a whole number of records.

    >>> from p2pkit.gnutella.vendor import SupportedMessage
    >>> json_items(SupportedMessage)(b"BEAR" + bytes([4, 0, 1, 0]))
    [{'vendor': 'BEAR', 'selector': 4, 'version': 1}]
    """
    layout = FixedLayout(item)
    env: dict[str, Any] = {"jv": json_value, "iter_unpack": layout.struct.iter_unpack}
    values, display = _json_display(layout, env)
    source = (f"def read_items(data):\n"
              f"    if len(data) % {layout.size}:\n        return None\n"
              f"    return [{display} for {', '.join(values)}, in iter_unpack(data)]\n")
    exec(compile(source, f"<json items {layout.format}>", "exec"), env)
    return env["read_items"]


def json_record(item: construct.Construct) -> Callable[[bytes], dict[str, Any] | None]:
    """A function reading one fixed-size ``item`` record at the start of its input (extra
    bytes ignored, as :meth:`~p2pkit.schema.FixedLayout.unpacker`) into the JSON of its
    Container; None when the input is too short.

    >>> json_record(ggep.UltrapeerValue)(bytes([1, 30, 2]))
    {'version': 1, 'leaf_slots': 30, 'ultrapeer_slots': 2}
    """
    layout = FixedLayout(item)
    env: dict[str, Any] = {"jv": json_value, "unpack_from": layout.struct.unpack_from}
    values, display = _json_display(layout, env)
    source = (f"def read_record(data):\n"
              f"    if len(data) < {layout.size}:\n        return None\n"
              f"    {', '.join(values)}, = unpack_from(data)\n"
              f"    return {display}\n")
    exec(compile(source, f"<json record {layout.format}>", "exec"), env)
    return env["read_record"]


def _extension_values() -> dict[str, Callable[[bytes], Any]]:
    """Extension ID -> the JSON of its value from its payload, for the registered extensions
    whose decoder is a ``Struct`` of fixed-size fields (what ``ggep.value_fast_path`` reads
    with the same layout; the others: the JSON of ``ggep._value``)."""
    out = {}
    for ext_id, decoder in ggep.EXTENSIONS.items():
        if isinstance(decoder, construct.Struct):
            try:
                out[ext_id] = json_record(decoder)
            except TypeError:
                continue
    return out


#: How extension blocks are read into JSON (``ggep._fast_extension_block``'s ``json``).
EXTENSION_JSON = ggep.JsonOutput(convert=json_value, inline=BINARY_INLINE_LIMIT,
                                 values=_extension_values())


def _greedy_range_reader(con: construct.GreedyRange) -> JsonReader:
    """Fixed-size items up to where one would not fit (as the fast path's ``GreedyRange``
    reader), one ``iter_unpack``."""
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    items, size = json_items(con.subcon), FixedLayout(con.subcon).size

    def read(data: bytes, pos: int, ctx: dict[str, Any]) -> tuple[Any, int]:
        end = pos + (len(data) - pos) // size * size
        return items(data[pos:end]), end

    return read


def _private_area(data: bytes) -> Any:
    """The JSON of what ``_extension_block_or_none`` reads of a QueryHit's private area."""
    if not data or data[0] != ggep.GGEP_MAGIC:
        return None
    parts = ggep._fast_extension_block(data, json=EXTENSION_JSON)
    return json_value(_extension_block_or_none(data)) if parts is None else parts


def _trailer(data: bytes, pos: int, ctx: dict[str, Any]) -> tuple[Any, int]:
    """The QueryHit trailer (``_Trailer.parse_bytes`` given :func:`_private_area`), each
    other value as its JSON."""
    out = {}
    for k, v in _parse_trailer(data[pos:], "", False, _private_area).items():
        t = type(v)
        if t is int or v is None or k == "private_extensions" or t is str and v.isascii():
            out[k] = v
        elif t is bytes and len(v) <= BINARY_INLINE_LIMIT:
            out[k] = v.hex()
        else:
            out[k] = json_value(v)
    return out, len(data)


_parse_trailer = _Trailer.parse_bytes


def _vendor_reader(vendor: _Vendor) -> JsonReader:
    """vendor_msg §2: ``_Vendor.parse_fast`` given the JSON readers of the vectors (Messages
    and Features Supported), every other top-level value converted by ``json_value``."""
    vectors = {name: counted_vector_parser(schema, json_items)
               for name, (schema, _) in vendor.vectors.items()}
    done = frozenset(key for _, key in vendor.vectors.values())
    parse, body = vendor.parse_fast, vendor_body

    def read(data: bytes, pos: int, ctx: dict[str, Any]) -> tuple[Any, int]:
        message = parse(data[pos:], body, vectors)
        if message is None:
            raise Refused
        out = {}
        for k, v in message.items():
            t = type(v)
            out[k] = v if (t is int or k in done or t is str and v.isascii()) else json_value(v)
        return out, len(data)

    return read


#: The JSON reader of each kind of leaf: extension blocks, vendor messages, the QueryHit
#: trailer and ``GreedyRange`` by their own readers here, any other by the fast path's reader
#: and the JSON conversion of what it gives.
_JSON_LEAVES: dict[str, Callable[[Any, Any], JsonReader]] = {
    "format": lambda con, build: _raw(con),
    "bytes": lambda con, build: _raw(con),
    "greedy_bytes": lambda con, build: _raw(con),
    "adapter": lambda con, build: _raw(con),
    "greedy_range": lambda con, build: _greedy_range_reader(con),
    "extension_block": lambda con, build: _extension_block,
    "trailer": lambda con, build: _trailer,
    "vendor": lambda con, build: _vendor_reader(con),
}


#: The JSON fields of the dissector's record (:func:`json_descriptor`): each value as
#: ``json_value`` converts the Container's.
JSON = Leaves("json", dict, _json_exprs, list, json_value, _JSON_LEAVES)


def json_reader(con: construct.Construct) -> JsonReader:
    """The JSON reader of a declaration (see :mod:`~p2pkit.gnutella.payload_readers` for the
    kinds); TypeError where the fast path has none.

    >>> read = json_reader(PAYLOADS[0x40][1])  # push
    >>> read(bytes(15) + bytes([1, 1, 0, 0, 0, 127, 0, 0, 1, 0xCA, 0x18]), 0, {})[0]
    {'servent_id': '00000000000000000000000000000001', 'file_index': 1, 'ip_address': '127.0.0.1', 'port': 6346, 'extensions': []}
    """
    return build_reader(con, JSON)


#: Payload descriptor -> (whether its reader writes into the descriptor's dictionary, the
#: JSON reader of its payload), for every payload of PAYLOADS.
#:
#: :meta hide-value:
JSON_READERS: dict[int, tuple[bool, JsonReader]] = {
    ptype: ((True, build_reader(body, JSON, into=True))
            if isinstance(unwrap(body), construct.Struct) else (False, json_reader(body)))
    for ptype, (_, body) in PAYLOADS.items()}


def json_descriptor(data: bytes) -> dict[str, Any] | None:
    """The ``fields`` of the record of the descriptor ``data`` (header and the whole payload):
    what ``json_fields`` makes of ``fast_descriptor(data)`` (the GUID in hex first, the
    ``type`` left out), or None where ``fast_descriptor`` gives None.

    >>> json_descriptor(bytes(16) + bytes([0x00, 1, 0]) + bytes(4))
    {'guid': '00000000000000000000000000000000', 'ttl': 1, 'hops': 0, 'extensions': []}
    """
    entry = JSON_READERS.get(whole_descriptor(data))  # type: ignore[arg-type]
    if entry is None:
        return None
    into, read = entry
    out = {"guid": data[:16].hex(), "ttl": data[17], "hops": data[18]}
    try:
        if into:
            _, end = read(data, HEADER_LENGTH, out)
        else:
            fields, end = read(data, HEADER_LENGTH, {})
            for k, value in fields.items():
                out[k] = value
    except Exception:  # noqa: BLE001 - the Container path says what is wrong
        return None
    if end != len(data):
        return None
    return out
