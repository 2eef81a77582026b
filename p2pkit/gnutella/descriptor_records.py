"""The dissector's records of a run of Gnutella descriptors, split in one loop.

A TCP segment of a Gnutella link carries many descriptors (a pong cache, HSEP, QRP patches);
the dissector makes one record each (:mod:`p2pkit.gnutella.deferred`: the payload is parsed
when the record is first read). :meth:`DescriptorRecords.split` walks the bytes the
:class:`~p2pkit.gnutella.stream.StreamReader` holds and makes those records in one loop: the
descriptor header (Gnutella 0.4 §2.2: payload descriptor, TTL, hops, payload length) is
unpacked once and serves both the framing and the summary line, and a payload is looked at
only as far as the summary line needs:

- a payload type whose fields the summary line never shows, at a length that cannot reach
  a bound (:data:`~p2pkit.gnutella.deferred.DEFERRED_PAYLOADS`), is not looked at;
- pongs and pushes, whose port the summary line shows (only when the payload parses), are
  checked by :func:`~p2pkit.gnutella.deferred.fast_summary_check`;
- any other known payload by :func:`~p2pkit.gnutella.deferred.checked_summary`.

The loop stops at the first descriptor it cannot stand in for (incomplete, above the
reader's bound, an unknown payload type, a payload the check refuses): the reader frames and
parses that one as usual (its errors, deviations and bounds are the schema's), and calls the
loop again after it. Tests compare every record with the eagerly parsed one on the committed
captures and on mutated and random descriptors
(``tests/gnutella/test_descriptor_records.py``).
"""

from __future__ import annotations

import struct
from functools import partial
from typing import Any

from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.gnutella.deferred import (
    _SPANS,
    DEFERRED_PAYLOADS,
    _decode,
    checked_summary,
    fast_summary_check,
)
from p2pkit.gnutella.descriptors import HEADER_LENGTH, MAX_PAYLOAD_LENGTH, PAYLOADS

__all__ = ["DescriptorRecords"]

PROTOCOL = "gnutella"
#: Header bytes 16-22 (Gnutella 0.4 §2.2): payload descriptor, TTL, hops, payload length.
_TYPE_TO_LENGTH = struct.Struct("<BBBI")

#: A plan per payload type: (name, the payload keys of a record not looked at and the longest
#: such payload (-1: none), the fast check, the names it gives and the other payload keys).
Plan = tuple[str, frozenset[str], int, Any, tuple[str, ...], frozenset[str]]


def _plans() -> dict[int, Plan]:
    out = {}
    for ptype, (name, body) in PAYLOADS.items():
        _, deferred_keys, longest = DEFERRED_PAYLOADS.get(ptype, (name, frozenset(), -1))
        check, shown, checked_keys = fast_summary_check(body) or (None, (), frozenset())
        out[ptype] = (name, deferred_keys, longest, check, shown, checked_keys)
    return out


#: Payload descriptor -> its plan (see ``Plan``), derived from the declarations.
PLANS: dict[int, Plan] = _plans()


class DescriptorRecords:
    """The records of one direction's descriptors (``frame`` and ``time``: of the bytes being
    read, set by the stream decoder before each segment)."""

    __slots__ = ("transport", "src", "dst", "frame", "time", "max_payload_length", "made")

    def __init__(self, *, transport: str, src: str, dst: str,
                 max_payload_length: int = MAX_PAYLOAD_LENGTH) -> None:
        self.transport, self.src, self.dst = transport, src, dst
        self.frame, self.time = 0, 0.0
        self.max_payload_length = min(max_payload_length, MAX_PAYLOAD_LENGTH)
        #: How many records :meth:`split` made so far.
        self.made = 0

    def split(self, data: bytes, pos: int, offset: int, frames: list[Any]) -> int:
        """Append to ``frames`` the record of each complete descriptor of ``data`` from
        ``pos`` on (``offset``: the stream offset of ``data[0]``), up to the first one this
        cannot stand in for; return where that one starts (or the incomplete rest)."""
        frame, time, transport, src, dst = (self.frame, self.time, self.transport, self.src,
                                            self.dst)
        limit, plans, header = self.max_payload_length, PLANS, _TYPE_TO_LENGTH.unpack_from
        size, count = len(data), len(frames)
        while size - pos >= HEADER_LENGTH:
            ptype, ttl, hops, length = header(data, pos + 16)
            end = pos + HEADER_LENGTH + length
            plan = plans.get(ptype)
            if end > size or length > limit or plan is None:
                break
            name, keys, longest, check, shown, checked_keys = plan
            descriptor = data[pos:end]
            if length <= longest:  # nothing of the payload shown, no bound reachable
                summary: dict[str, Any] | None = {
                    "guid": descriptor[:16].hex(), "ttl": ttl, "hops": hops}
            elif check is not None:
                values = check(descriptor)
                if values is None:
                    break
                summary = {"guid": descriptor[:16].hex(), "ttl": ttl, "hops": hops}
                for key, value in zip(shown, values):
                    summary[key] = value
                keys = checked_keys
            else:
                checked = checked_summary(descriptor)
                if checked is None:
                    break
                name, fields = checked
                summary, keys = fields["summary"], fields["payload_keys"]
            at = offset + pos
            frames.append(LazyRecord(frame, time, transport, src, dst, PROTOCOL, name, None, at,
                                     end - pos, None, None, _SPANS,
                                     decode=partial(_decode, descriptor, at),
                                     summary=summary, payload_keys=keys))
            pos = end
        self.made += len(frames) - count
        return pos
