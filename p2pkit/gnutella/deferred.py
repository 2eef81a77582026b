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
longer pings and queries) is checked first: :func:`fast_summary_check` (a check-only walk
generated from the payload's declaration, :data:`~p2pkit.gnutella.descriptor_fast_path.CHECK`:
no Container, no dictionary, only the summary's values kept) or, for a payload without one,
:func:`checked_summary` (the fast path, :func:`~p2pkit.gnutella.descriptor_fast_path.fast_descriptor`).
When it parses, nothing in it can stop
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
from p2pkit.gnutella.descriptor_fast_path import CHECK, TOTAL_DECODERS, fast_descriptor
from p2pkit.gnutella.descriptor_json import json_descriptor
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
    DescriptorHeader,
    DescriptorLenient,
)
from p2pkit.gnutella.ggep import MAX_EXTENSIONS, MAX_INFLATED_SIZE
from p2pkit.gnutella.payload_readers import build_reader, unwrap
from p2pkit.gnutella.protocol import GNUTELLA
from p2pkit.schema import MessageSwitch

__all__ = ["DEFERRED_PAYLOADS", "MAX_DEFERRED_PAYLOAD", "TOTAL_DECODERS", "checked_summary",
           "deferrable", "deferred_record", "fast_summary_check", "may_reach_bound"]

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
    of a descriptor that parses without a deviation or a bound; None for any other. A
    payload :func:`fast_summary_check` has a check for is checked (no value made); any
    other is read by the fast path."""
    if type(data) is not bytes or len(data) < HEADER_LENGTH:
        return None
    checked = _SUMMARY_CHECKS.get(data[16])
    if checked is not None:
        check, shown, keys = checked
        values = check(data)
        if values is None:
            return None
        summary = {"guid": data[:16].hex(), "ttl": data[17], "hops": data[18]}
        for key, value in zip(shown, values):
            summary[key] = value
        return PAYLOADS[data[16]][0], {"summary": summary, "payload_keys": keys}
    d = fast_descriptor(data)
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


#: What :func:`fast_summary_check` gives: the check (descriptor bytes -> the shown values, or
#: None), the names of those values, and the other top-level fields (``payload_keys``).
SummaryCheck = tuple[Callable[[bytes], "tuple[Any, ...] | None"], tuple[str, ...],
                     frozenset[str]]


def fast_summary_check(body: construct.Construct) -> SummaryCheck | None:
    """For a payload declared as a ``Struct`` (GGEP §Ping, §Pong, §Push, §Query and §Query
    Hit Message, bye §2, HSEP) whose summary fields are plain unsigned integers of its
    fixed-size runs: a check that says what :func:`checked_summary` says and gives those
    fields' values, generated by :func:`~p2pkit.gnutella.payload_readers.build_reader` with
    the check's leaves (:data:`~p2pkit.gnutella.descriptor_fast_path.CHECK`: no Container,
    no dictionary; an extension block checked by ``ggep.check_extension_block``); None for a
    payload of any other shape (:func:`checked_summary` then reads it).

    >>> check, shown, _ = fast_summary_check(PAYLOADS[0x01][1])  # pong
    >>> pong = bytes(16) + bytes([1, 1, 0, 14, 0, 0, 0, 0xCA, 0x18]) + bytes(12)
    >>> shown, check(pong), check(pong + b"\\xc3")  # a GGEP block cut short: no
    (('port',), (6346,), None)
    """
    body = unwrap(body)
    if not isinstance(body, construct.Struct):
        return None
    wanted = set(GNUTELLA.summary)
    shown = tuple(sub.name for sub in body.subcons if sub.name in wanted)
    for sub in body.subcons:
        if sub.name in wanted:
            field = unwrap(sub.subcon)
            if not isinstance(field, construct.FormatField) or field.fmtstr[-1] not in "BHILQ":
                return None  # a summary value that is not a plain unsigned integer
    try:
        check = build_reader(body, CHECK, keep=shown, start=HEADER_LENGTH)
    except TypeError:
        return None
    names = frozenset(sub.name for sub in body.subcons)
    return check, shown, frozenset(names - wanted)


#: Payload descriptor -> its :func:`fast_summary_check`, for the payloads that have one.
_SUMMARY_CHECKS: dict[int, SummaryCheck] = {
    ptype: checked for ptype, (_, body) in PAYLOADS.items()
    if (checked := fast_summary_check(body)) is not None}


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
