"""Gnutella descriptors decoded on demand (dissection): the summary line shows the descriptor's
name, GUID, TTL and hops (Gnutella 0.4 §2.2, the 23-byte header) and, for pongs, pushes and
query hits, the port; the field tree and JSON show the whole payload.

A descriptor whose payload can add no field the summary line shows, and whose decoding cannot
stop the stream, is framed and recorded without decoding its payload
(:class:`~p2pkit.capture.lazy_record.LazyRecord`); the payload is parsed by the same lenient
schema (:data:`~p2pkit.gnutella.descriptors.DescriptorLenient`) when the record's fields, value
or deviations are first read. Everything here is derived from the schemas:

- which payload types: those whose top-level field names are known from the declaration
  (a ``Struct``'s names; the key and the bodies' names of a payload-type switch, as QRP's
  ROUTE_TABLE_UPDATE; vendor messages, whose parser lists them in ``top_level_fields``)
  with no field the protocol's summary shows (``GNUTELLA.summary``): ping, bye, QRP, query,
  hsep and vendor messages;
- which lengths: the lenient schema turns every payload error into a deviation except a
  bound (:class:`~p2pkit.errors.LimitExceeded`), which stops the stream. The bounds are
  GGEP's (``MAX_EXTENSIONS`` extensions or parts, each at least one byte;
  ``MAX_INFLATED_SIZE`` inflated bytes, deflate expanding at most 1032 times, RFC 1951
  §3.2.5: a 258-byte match in at least 2 bits), so a payload of at most
  :data:`MAX_DEFERRED_PAYLOAD` bytes cannot reach one; a payload whose declaration holds no
  GGEP (:func:`may_reach_bound`: bye, QRP, hsep) cannot at any length.

Every other descriptor (pongs, pushes and query hits, whose port the summary line shows;
longer pings and queries) is checked first: :func:`fast_summary_check` (a run of fixed-size
fields with one ``unpack_from``, the rest with the check readers) or :func:`checked_summary`
(the fast path derived from the schemas,
:func:`~p2pkit.gnutella.descriptor_fast_path.check_descriptor`) walk it without decoding what
cannot fail (extension values, a hit's private area). When it parses, nothing in it can stop
the stream, and its record is deferred too, its summary fields taken from the check; when it
does not (a deviation, a bound), it is decoded at once as before. The dissector makes these
records a segment at a time (:mod:`p2pkit.gnutella.descriptor_records`).

Tests compare every deferred record with the eager one on the committed captures and on
hypothesis-generated descriptors (``tests/gnutella/test_deferred.py``, ``tests/gnutella/test_descriptor_records.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import construct

from p2pkit.capture.lazy_record import Decoded, DeferredValue, LazyRecord, scalar_summary
from p2pkit.capture.record import json_fields, json_value
from p2pkit.capture.spans import struct_spans
from p2pkit.deviations import deviations_of
from p2pkit.gnutella import ggep
from p2pkit.gnutella.descriptor_fast_path import (
    _fixed,
    body_reader,
    check_descriptor,
    fast_descriptor,
)
from p2pkit.gnutella.descriptor_json import json_descriptor
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
    DescriptorHeader,
    DescriptorLenient,
)
from p2pkit.gnutella.fields import IPv4, VendorCode
from p2pkit.gnutella.ggep import MAX_EXTENSIONS, MAX_INFLATED_SIZE, ExtensionBlock
from p2pkit.gnutella.protocol import GNUTELLA
from p2pkit.schema import FixedLayout, MessageSwitch

__all__ = ["DEFERRED_PAYLOADS", "MAX_DEFERRED_PAYLOAD", "checked_summary", "deferrable",
           "deferred_record", "fast_summary_check", "may_reach_bound"]

#: Deflate's largest expansion (RFC 1951: a 258-byte match coded in 2 bits, 1032:1).
DEFLATE_MAX_RATIO = 1032
#: The longest payload that cannot reach a GGEP bound (see the module's docstring).
MAX_DEFERRED_PAYLOAD = min(MAX_EXTENSIONS, MAX_INFLATED_SIZE // DEFLATE_MAX_RATIO - 1)

#: The header fields (Gnutella 0.4 §2.2) every descriptor record shows.
_HEADER_KEYS = ("guid", "ttl", "hops")


def may_reach_bound(con: construct.Construct) -> bool:
    """Whether parsing the declaration ``con`` may raise a bound
    (:class:`~p2pkit.errors.LimitExceeded`): only GGEP's (an extension block, the QueryHit
    trailer's private area) can; a declaration of a kind this does not know is taken to.

    >>> may_reach_bound(PAYLOADS[0xCD][1]), may_reach_bound(PAYLOADS[0x00][1])  # hsep, ping
    (False, True)
    """
    while isinstance(con, construct.Renamed):
        con = con.subcon
    if isinstance(con, (construct.FormatField, construct.Bytes)) or con is construct.GreedyBytes:
        return False
    if isinstance(con, (construct.Adapter, construct.Rebuild, construct.NullTerminated,
                        construct.Array, construct.GreedyRange)):
        return may_reach_bound(con.subcon)
    if isinstance(con, construct.Struct):
        return any(may_reach_bound(sub) for sub in con.subcons)
    if isinstance(con, MessageSwitch):
        return any(may_reach_bound(body) for _, body in con.by_id.values())
    return True


def _top_level_keys(body: construct.Construct) -> frozenset[str] | None:
    """The top-level field names a payload declaration gives (a ``Struct``'s names, the key
    and every body's names of a payload-type switch); None when they are not known."""
    if isinstance(body, construct.Struct):
        return frozenset(sc.name for sc in body.subcons if sc.name)
    if isinstance(body, MessageSwitch) and body.peek_at is None and body.empty is None:
        keys = {body.key}
        for _, sub in body.by_id.values():
            sub_keys = _top_level_keys(sub)
            if sub_keys is None or not isinstance(sub, construct.Struct):
                return None
            keys |= sub_keys
        return frozenset(keys)
    return None


def _deferred_payloads() -> dict[int, tuple[str, frozenset[str], int]]:
    summary = set(GNUTELLA.summary)
    out = {}
    for ptype, (name, body) in PAYLOADS.items():
        if hasattr(body, "top_level_fields"):  # vendor messages: no bound inside
            keys, longest = body.top_level_fields, MAX_PAYLOAD_LENGTH
        else:
            keys = _top_level_keys(body)
            if keys is None:
                continue
            # GGEP inside: a length that cannot reach its bounds (see the docstring)
            longest = MAX_DEFERRED_PAYLOAD if may_reach_bound(body) else MAX_PAYLOAD_LENGTH
        if keys & summary:
            continue
        # a payload that does not parse is kept raw under "payload" (unparsed_payload)
        out[ptype] = (name, keys | {"payload"}, longest)
    return out


#: Payload descriptor -> (name, the top-level fields its payload may add, the longest payload
#: deferred), for the payload types deferred.
DEFERRED_PAYLOADS: dict[int, tuple[str, frozenset[str], int]] = _deferred_payloads()
_LONGEST = {ptype: longest for ptype, (_, _, longest) in DEFERRED_PAYLOADS.items()}


def deferrable(data: bytes) -> bool:
    """Whether the descriptor ``data`` (header included) may be decoded later."""
    longest = _LONGEST.get(data[16])
    return longest is not None and len(data) - HEADER_LENGTH <= longest


def checked_summary(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """The name and the summary (``summary`` and ``payload_keys`` of a
    :class:`~p2pkit.capture.lazy_record.LazyRecord`, as
    ``p2pkit.gnutella.dissect.descriptor_record`` works them out from the parsed descriptor)
    of a descriptor that parses without a deviation or a bound; None for any other."""
    d = check_descriptor(data)
    if d is None:
        return None
    keys = tuple(d)
    shown = _SHOWN.get(keys)
    if shown is None:
        shown = _shown(keys)
    summary = {"guid": d["guid"].hex()}
    for k in shown[0]:
        v = d[k]
        t = type(v)
        if t is int or t is bool or v is None or (t is str and v.isascii()):
            summary[k] = v
        else:  # (as scalar_summary: only these are read off the value)
            return d["type"], scalar_summary(d, {"guid": summary["guid"]})
    return d["type"], {"summary": summary, "payload_keys": shown[1]}


#: The top-level keys of a checked descriptor -> (the keys a summary line may show, read off
#: the check; every other key, which a summary line asking for it decodes). Payload shapes
#: are few (one per payload type and variant), the cache is bounded all the same.
_SHOWN: dict[tuple[str, ...], tuple[tuple[str, ...], frozenset[str]]] = {}
_MAX_SHAPES = 256


def _shown(keys: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    wanted = set(GNUTELLA.summary) - {"guid"}
    shown = tuple(k for k in keys if k in wanted)
    other = frozenset(k for k in keys if k not in wanted and k not in ("guid", "type")
                      and k[:1] != "_")
    if len(_SHOWN) < _MAX_SHAPES:
        _SHOWN[keys] = (shown, other)
    return shown, other


#: Adapters whose ``_decode`` accepts every value of their fixed-size field (tests run them on
#: random bytes): a check need not run them.
TOTAL_DECODERS: tuple[type, ...] = (type(IPv4), type(VendorCode))

#: What :func:`fast_summary_check` gives: the check (descriptor bytes -> the shown values, or
#: None), the names of those values, and the other top-level fields (``payload_keys``).
SummaryCheck = tuple[Callable[[bytes], "tuple[Any, ...] | None"], tuple[str, ...],
                     frozenset[str]]


def _fixed_field(sub: construct.Construct) -> construct.Construct | None:
    """A named field of fixed size as :class:`~p2pkit.schema.FixedLayout` reads it (a
    ``Rebuild`` parses its field), or None."""
    if not sub.name or sub.name[:1] == "_":
        return None
    field = sub.subcon
    if isinstance(field, construct.Rebuild):
        field = field.subcon
    return sub.name / field if _fixed(field) else None


def fast_summary_check(body: construct.Construct) -> SummaryCheck | None:
    """For a payload declared as a run of fixed-size fields and then other fields (GGEP §Pong,
    §Push and §Query Hit Message) whose summary fields are plain integers of that run: a
    check that says what :func:`checked_summary` says, reading the run with one
    ``unpack_from`` and the rest with the check readers of
    :mod:`~p2pkit.gnutella.descriptor_fast_path` (a closing extension block: walked by
    ``ggep._fast_extension_block`` with ``check=True``); None for a
    payload of any other shape (:func:`checked_summary` then checks it).

    >>> check, shown, _ = fast_summary_check(PAYLOADS[0x01][1])  # pong
    >>> pong = bytes(16) + bytes([1, 1, 0, 14, 0, 0, 0, 0xCA, 0x18]) + bytes(12)
    >>> shown, check(pong), check(pong + b"\\xc3")  # a GGEP block cut short: no
    (('port',), (6346,), None)
    """
    if not isinstance(body, construct.Struct):
        return None
    subs = list(body.subcons)
    run = []
    while len(run) < len(subs) and (field := _fixed_field(subs[len(run)])) is not None:
        run.append(field)
    rest = subs[len(run):]
    if not run or not rest or not all(sub.name and sub.name[:1] != "_" for sub in rest):
        return None
    layout = FixedLayout(construct.Struct(*run))
    wanted = set(GNUTELLA.summary)
    adapted = dict(layout.adapters)
    shown = [(i, name) for i, name in enumerate(layout.all_names) if name in wanted]
    if any(sub.name in wanted for sub in rest) or any(
            i in adapted or layout.codes[i][-1] not in "BHILQ" for i, _ in shown):
        return None  # a summary value that is not a plain unsigned integer of the run
    indices = tuple(i for i, _ in shown)
    unpack, start = layout.struct.unpack_from, HEADER_LENGTH + layout.size
    if len(rest) == 1 and rest[0].subcon is ExtensionBlock.subcon:
        decoders = [(i, adapter._decode) for i, adapter in layout.adapters
                    if not isinstance(adapter, TOTAL_DECODERS)]
        check_block = ggep._fast_extension_block

        def check(data: bytes) -> tuple[Any, ...] | None:
            try:
                values = unpack(data, HEADER_LENGTH)
                for i, decode in decoders:
                    decode(values[i], None, "")
            except Exception:  # noqa: BLE001 - the schema says what is wrong
                return None
            if check_block(data[start:], True) is None:
                return None
            return tuple([values[i] for i in indices])
    else:  # the rest reads the run's fields (a count): they are its context
        names = layout.all_names
        # (an adapter that accepts every value is not run: only the rest's counts read the
        # context, and the values shown are plain integers)
        decoders = [(i, adapter._decode) for i, adapter in layout.adapters
                    if not isinstance(adapter, TOTAL_DECODERS)]
        steps = [(sub.name, body_reader(sub, check=True)) for sub in rest]

        def check(data: bytes) -> tuple[Any, ...] | None:
            try:
                values = list(unpack(data, HEADER_LENGTH))
                for i, decode in decoders:
                    values[i] = decode(values[i], None, "")
                ctx = dict(zip(names, values))  # (the readers index it: no Container)
                pos = start
                for name, step in steps:
                    ctx[name], pos = step(data, pos, ctx)
            except Exception:  # noqa: BLE001 - the schema says what is wrong
                return None
            if pos != len(data):
                return None
            return tuple([values[i] for i in indices])

    names_all = frozenset(sub.name for sub in body.subcons)
    return check, tuple(name for _, name in shown), frozenset(names_all - wanted)


def _decode(data: bytes, base: int) -> Decoded:
    """A deferred descriptor's (fields, value, deviations), called once per record shown:
    the fields parsed straight to JSON (:func:`~p2pkit.gnutella.descriptor_json.json_descriptor`,
    no deviation where it parses), the value (the Container) made only when read; else
    ``DescriptorLenient.parse`` and ``json_fields`` without their wrappers (the fast path
    first, as the schema tries it; the converter of the Container's shape; ``type``
    dropped)."""
    fields = json_descriptor(data)
    if fields is not None:
        return fields, DeferredValue(lambda: _value(data)), []
    return _decode_value(data, base)


def _value(data: bytes) -> construct.Container:
    """The descriptor's Container (``record.value``) of a descriptor
    :func:`~p2pkit.gnutella.descriptor_json.json_descriptor` parsed."""
    d = fast_descriptor(data)
    return DescriptorLenient.parse(data) if d is None else d


def _decode_value(data: bytes, base: int) -> Decoded:
    """(fields, value, deviations) through the Container."""
    d = fast_descriptor(data)
    if d is None:  # the schema says what is wrong (a deviation; a bound is raised)
        d = DescriptorLenient.parse(data)
    fields = json_value(d)
    if type(fields) is not dict:  # (a Container always converts to a dict)
        fields = json_fields(d)
    else:
        fields.pop("type", None)
    fields["guid"] = d["guid"].hex()
    return fields, d, deviations_of(d, base=base)


def deferred_record(data: bytes, *, transport: str, src: str, dst: str, offset: int | None,
                    frame: int, time: float, base: int = 0,
                    checked: tuple[str, dict[str, Any]] | None = None) -> LazyRecord:
    """The record of one descriptor whose payload is parsed when first asked for (the same
    record ``p2pkit.gnutella.dissect.descriptor_record`` makes): a :func:`deferrable` one,
    or one whose :func:`checked_summary` is ``checked``."""
    if checked is None:
        name, payload_keys, _ = DEFERRED_PAYLOADS[data[16]]
        summary = {"summary": {"guid": data[:16].hex(), "ttl": data[17], "hops": data[18]},
                   "payload_keys": payload_keys}
    else:
        name, summary = checked
    record = LazyRecord(frame, time, transport, src, dst, "gnutella", name, None, offset,
                        len(data), None, None, _SPANS, decode=lambda: _decode(data, base),
                        **summary)
    return record


#: The header's spans, one read-only mapping shared by the records.
_SPANS = MappingProxyType(struct_spans(DescriptorHeader, 0, HEADER_LENGTH))
