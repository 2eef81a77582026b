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

from functools import partial
from typing import Any

from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.render import _short
from p2pkit.capture.summary_runs import SummaryRun
from p2pkit.gnutella.decoded_records import decoded_records
from p2pkit.gnutella.deferred import (
    _SPANS,
    DEFERRED_PAYLOADS,
    _decode,
    checked_summary,
    fast_summary_check,
)
from p2pkit.gnutella.descriptors import (
    HEADER_AFTER_GUID,
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
)
from p2pkit.gnutella.protocol import GNUTELLA

__all__ = ["DescriptorRecords"]

PROTOCOL = "gnutella"

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


def _run_format(name: str, present: tuple[str, ...]) -> tuple[str, tuple[int, ...] | None]:
    """The ``%`` format of a summary line's tail (``name key=value…``, the fields shown in the
    protocol's order, ``GNUTELLA.summary``) for a message whose values are ``present`` (in
    that order), and the order of the values in it (None: ``present``'s own order)."""
    at = {k: i for i, k in enumerate(present)}
    order = tuple(at[k] for k in SHOWN if k in at)
    fmt = name.replace("%", "%%") + "".join(f" {k}=%s" for k in SHOWN if k in at)
    return fmt, None if order == tuple(range(len(present))) else order


#: What a payload type's summary tails need: (the longest payload not looked at, the tail's
#: text before the GUID then (``name guid=``: see :func:`_plain_head`); the fast check, the
#: tail's format after it and the order of its values).
RunPlan = tuple[int, str, Any, str, "tuple[int, ...] | None"]


def _plain_head(name: str, fmt: str) -> str | None:
    """The text of a tail before the GUID's hex (``ping guid=``) when ``fmt`` (a tail of
    header values, :func:`_run_format`) is that text and `` ttl=%s hops=%s`` after the GUID,
    what the loop writes with one f-string; None when it is any other."""
    head = name.replace("%", "%%") + " guid="
    if fmt != head + "%s ttl=%s hops=%s":
        return None
    return name + " guid="


def _run_plans() -> dict[int, RunPlan | None]:
    """Payload descriptor -> how the loop draws its summary tails when its records' summary
    lines are drawn from their header values (``payload_keys`` disjoint from the fields
    shown, the values plain integers and the GUID's hex text, which ``_short`` leaves alone;
    see :data:`PLANS`); None for a payload type whose tails are drawn from its record."""
    out: dict[int, RunPlan | None] = {}
    for ptype, (name, keys, longest, check, shown, checked_keys) in PLANS.items():
        fmt, order = _run_format(name, _HEADER)
        plain = _plain_head(name, fmt)
        if (not keys.isdisjoint(SHOWN) or not checked_keys.isdisjoint(SHOWN) or order
                or plain is None):
            out[ptype] = None
            continue
        checked, order = _run_format(name, (*shown, *_HEADER))
        out[ptype] = (longest, plain, check, checked, order)
    return out


#: The fields a Gnutella summary line shows, in order (the registry's, which
#: :class:`~p2pkit.capture.summary_lines.SummaryLines` checks a run against).
SHOWN: tuple[str, ...] = GNUTELLA.summary
_HEADER = ("guid", "ttl", "hops")
#: Payload descriptor -> the ``%`` format of its summary tails and the order of the values
#: (see :func:`_run_format`); None: drawn from the summary dictionary.
RUN_PLANS = _run_plans()
#: :data:`RUN_PLANS` by payload descriptor byte (a tuple of 256: one index a descriptor);
#: None for a type without one, known or not.
_RUN_TABLE: tuple[RunPlan | None, ...] = tuple(RUN_PLANS.get(t) for t in range(256))


def _summary_tail(name: str, summary: dict[str, Any]) -> str:
    """The tail of the summary line of a record whose summary (header) fields are
    ``summary``: what ``SummaryLines`` draws from them."""
    tail = name
    for k in SHOWN:
        if k in summary:
            v = summary[k]
            t = type(v)
            if (t is str and len(v) <= 40 and v.isprintable()
                    or t is int and -(10 ** 39) < v < 10 ** 40):
                tail += f" {k}={v}"
            else:
                tail += f" {k}={_short(v)}"
    return tail


class DescriptorRecords:
    """The records of one direction's descriptors (``frame`` and ``time``: of the bytes being
    read, set by the stream decoder before each segment). With ``runs`` set (summary lines
    only, :mod:`p2pkit.capture.summary_runs`), :meth:`split` gives a
    :class:`~p2pkit.capture.summary_runs.SummaryRun` of the descriptors it would make records
    of, their summary lines' tails formatted in the loop."""

    __slots__ = ("transport", "src", "dst", "frame", "time", "max_payload_length", "made",
                 "runs", "fields_read")

    def __init__(self, *, transport: str, src: str, dst: str,
                 max_payload_length: int = MAX_PAYLOAD_LENGTH) -> None:
        self.transport, self.src, self.dst = transport, src, dst
        self.frame, self.time = 0, 0.0
        self.max_payload_length = min(max_payload_length, MAX_PAYLOAD_LENGTH)
        #: How many records (or runs) :meth:`split` made so far.
        self.made = 0
        self.runs = False
        #: Every record's fields will be read: :meth:`split` decodes each descriptor as it
        #: frames it (:mod:`p2pkit.gnutella.decoded_records`), no summary check first.
        self.fields_read = False

    def split(self, data: bytes, pos: int, offset: int, frames: list[Any]) -> int:
        """Append to ``frames`` the record of each complete descriptor of ``data`` from
        ``pos`` on (``offset``: the stream offset of ``data[0]``), up to the first one this
        cannot stand in for; return where that one starts (or the incomplete rest)."""
        count = len(frames)
        if self.runs:
            pos = self._runs(data, pos, offset, frames)
        elif self.fields_read:
            pos = decoded_records(self, data, pos, offset, frames)
        else:
            pos = self._records(data, pos, len(data), offset, frames, self.frame, self.time)
        self.made += len(frames) - count
        return pos

    def _records(self, data: bytes, pos: int, size: int, offset: int, frames: list[Any],
                 frame: int, time: float) -> int:
        """:meth:`split`'s records of the descriptors of ``data[pos:size]``."""
        transport, src, dst = self.transport, self.src, self.dst
        limit, plans, header = self.max_payload_length, PLANS, HEADER_AFTER_GUID.unpack_from
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
        return pos

    def _made(self, data: bytes, pos: int, size: int, offset: int, frame: int, time: float
              ) -> list[Any]:
        """The records of a run (the descriptors of ``data[pos:size]``)."""
        frames: list[Any] = []
        end = self._records(data, pos, size, offset, frames, frame, time)
        assert end == size
        return frames

    def _runs(self, data: bytes, pos: int, offset: int, frames: list[Any]) -> int:
        """:meth:`split` with runs: the same loop, each descriptor's summary tail formatted
        instead of its record made (a record still, between runs, for a descriptor whose
        tail this does not draw)."""
        limit, plans, header = self.max_payload_length, _RUN_TABLE, HEADER_AFTER_GUID.unpack_from
        size = len(data)
        whole = HEADER_LENGTH
        start = pos
        tails: list[str] = []
        bounds = [pos]  # where each descriptor ends (after where the first starts)
        add, grew = tails.append, bounds.append
        while size - pos >= whole:
            ptype, ttl, hops, length = header(data, pos + 16)
            end = pos + whole + length
            if end > size or length > limit:
                break
            plan = plans[ptype]
            if plan is not None:
                longest, plain, check, checked, order = plan
                if length <= longest:  # nothing of the payload shown, no bound reachable
                    # (the tail _run_format gives: f-strings build it with no format to read)
                    add(f"{plain}{data[pos:pos + 16].hex()} ttl={ttl} hops={hops}")
                    grew(end)
                    pos = end
                    continue
                if check is not None:
                    descriptor = data[pos:end]
                    values = check(descriptor)
                    if values is None:
                        break
                    values = (*values, descriptor[:16].hex(), ttl, hops)
                    if order is not None:
                        values = tuple([values[i] for i in order])
                    add(checked % values)
                    grew(end)
                    pos = end
                    continue
            elif ptype not in PLANS:
                break
            # any other payload: the record _records makes, its tail drawn from its summary
            # fields when they give the line
            one: list[Any] = []
            if self._records(data, pos, end, offset, one, self.frame, self.time) != end:
                break
            (made,) = one
            shown = made._summary
            if (plan is not None and shown is not None
                    and made._payload_keys.isdisjoint(SHOWN)):
                add(_summary_tail(made.message, shown))
                grew(end)
            else:
                if tails:
                    frames.append(self._run(data, start, pos, offset, tails, bounds))
                    tails, bounds = [], [end]
                    add, grew = tails.append, bounds.append
                else:
                    bounds[0] = end
                frames.append(made)
                start = end
            pos = end
        if tails:
            frames.append(self._run(data, start, pos, offset, tails, bounds))
        return pos

    def _run(self, data: bytes, start: int, stop: int, offset: int, tails: list[str],
             bounds: list[int]) -> SummaryRun:
        frame, time = self.frame, self.time
        return SummaryRun(frame, time, self.transport, self.src, self.dst, PROTOCOL, SHOWN,
                          tails, bounds, partial(self._made, data, start, stop, offset, frame,
                                                time))
