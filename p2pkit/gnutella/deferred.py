"""Gnutella descriptors decoded on demand (dissection): the summary line shows the descriptor's
name, GUID, TTL and hops (Gnutella 0.4 §2.2, the 23-byte header) and, for pongs, pushes and
query hits, the port; the field tree and JSON show the whole payload.

A descriptor whose payload can add no field the summary line shows, and whose decoding cannot
stop the stream, is framed and recorded without decoding its payload
(:class:`~p2pkit.capture.lazy_record.LazyRecord`); the payload is parsed by the same lenient
schema (:data:`~p2pkit.gnutella.descriptors.DescriptorLenient`) when the record's fields, value
or deviations are first read. Everything here is derived from the schemas:

- which payload types: the :data:`~p2pkit.gnutella.descriptors.PAYLOADS` bodies that are
  ``Struct`` declarations (their top-level field names are known) with no field the protocol's
  summary shows (``GNUTELLA.summary``): ping, bye, query, hsep; and vendor messages, whose
  parser lists its top-level fields (``top_level_fields``) and holds no bound;
- which lengths: the lenient schema turns every payload error into a deviation except a
  bound (:class:`~p2pkit.errors.LimitExceeded`), which stops the stream. In those bodies the
  bounds are GGEP's (``MAX_EXTENSIONS`` extensions or parts, each at least one byte;
  ``MAX_INFLATED_SIZE`` inflated bytes, deflate expanding at most 1032 times, RFC 1951
  §3.2.5: a 258-byte match in at least 2 bits), so a payload of at most
  :data:`MAX_DEFERRED_PAYLOAD` bytes cannot reach one.

Every other descriptor (pongs, pushes and query hits, whose port the summary line shows;
QRP; longer payloads) is checked first (:func:`checked_summary`): the fast path derived from
the schemas (:func:`~p2pkit.gnutella.descriptor_fast_path.check_descriptor`) walks it
without decoding what cannot fail (extension values, a hit's private area). When it parses,
nothing in it can stop the stream, and its record is deferred too, its summary fields taken
from the check; when it does not (a deviation, a bound), it is decoded at once as before.

Tests compare every deferred record with the eager one on the committed captures and on
hypothesis-generated descriptors (``tests/p2pkit/gnutella/test_deferred.py``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import construct

from p2pkit.capture.lazy_record import Decoded, LazyRecord, scalar_summary
from p2pkit.capture.record import json_fields
from p2pkit.capture.spans import struct_spans
from p2pkit.deviations import deviations_of
from p2pkit.gnutella.descriptor_fast_path import check_descriptor
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
    DescriptorHeader,
    DescriptorLenient,
)
from p2pkit.gnutella.ggep import MAX_EXTENSIONS, MAX_INFLATED_SIZE
from p2pkit.gnutella.protocol import GNUTELLA

__all__ = ["DEFERRED_PAYLOADS", "MAX_DEFERRED_PAYLOAD", "checked_summary", "deferrable",
           "deferred_record"]

#: Deflate's largest expansion (RFC 1951: a 258-byte match coded in 2 bits, 1032:1).
DEFLATE_MAX_RATIO = 1032
#: The longest payload that cannot reach a GGEP bound (see the module's docstring).
MAX_DEFERRED_PAYLOAD = min(MAX_EXTENSIONS, MAX_INFLATED_SIZE // DEFLATE_MAX_RATIO - 1)

#: The header fields (Gnutella 0.4 §2.2) every descriptor record shows.
_HEADER_KEYS = ("guid", "ttl", "hops")


def _deferred_payloads() -> dict[int, tuple[str, frozenset[str], int]]:
    summary = set(GNUTELLA.summary)
    out = {}
    for ptype, (name, body) in PAYLOADS.items():
        if isinstance(body, construct.Struct):  # GGEP may be inside: bounded length
            keys = frozenset(sc.name for sc in body.subcons if sc.name)
            longest = MAX_DEFERRED_PAYLOAD
        elif hasattr(body, "top_level_fields"):  # vendor messages: no bound inside
            keys, longest = body.top_level_fields, MAX_PAYLOAD_LENGTH
        else:
            continue
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


def _decode(data: bytes, base: int) -> Decoded:
    d = DescriptorLenient.parse(data)
    fields = json_fields(d)
    fields["guid"] = d.guid.hex()
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
