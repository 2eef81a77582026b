"""Summary lines of many records at once: the text ``p2pkit.capture.render.render_summary``
gives, record for record, with what repeats worked out once.

A summary line (tshark's default columns) is ``frame time src → dst protocol message
key=value…``. The frame number and time are the same for every message of one frame, the
endpoints and protocol for every message of one direction, and which fields the line shows
(the protocol descriptor's ``summary``, :mod:`p2pkit.registry`) for every message of one
protocol. :class:`SummaryLines` formats the first once per frame, the second when the
direction changes from one record to the next (a table of directions' texts cost more than it
saved: in a DHT capture nearly every datagram is a direction of its own, and a lookup costs
two thirds of the text) and looks the third up once per protocol; a
:class:`~p2pkit.capture.lazy_record.LazyRecord` whose header gives every field shown is read
from its header values, as :meth:`~p2pkit.capture.lazy_record.LazyRecord.summary_fields` does,
without a list of pairs. The lines of a batch of records come back as one string; a
:class:`~p2pkit.capture.summary_runs.SummaryRun` among them gives the lines of its messages,
its tails after one head.

Tests compare every line with ``render_summary`` on every record of every committed capture
and on random records (``tests/capture/test_summary_lines.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.record import Record
from p2pkit.capture.render import _short, _summary_keys
from p2pkit.capture.summary_runs import SummaryRun
from p2pkit.undecoded import UNDECODED_SUMMARY

__all__ = ["SummaryLines"]

#: What separates a line's two endpoints.
ARROW = " → "
#: The arrow written while lines are made as bytes (:meth:`SummaryLines.write`): a control
#: character, so that lines of ASCII text stay ASCII (one byte a character, encoded by a copy)
#: until the arrows are put in the bytes.
_ARROW_MARK = "\x1f"
_ARROW_BYTES = ARROW.encode()
_GROWTH = len(_ARROW_BYTES) - len(_ARROW_MARK.encode())

#: Integers whose decimal text is at most 40 characters (``_short`` shows them whole).
_SHORT_INT_MIN = -(10 ** 39) + 1
_SHORT_INT_MAX = 10 ** 40 - 1

_UNSET = object()


class SummaryLines:
    """Summary lines, times relative to ``start`` (the first frame's time, as tshark shows).

    >>> r = Record(frame=7, time=101.5, transport="tcp", src="10.0.0.1:1", dst="10.0.0.2:2",
    ...            protocol="bittorrent", message="request",
    ...            fields={"index": 1, "begin": 0, "length": 16384})
    >>> SummaryLines(start=100.0).text([r, r])  # doctest: +NORMALIZE_WHITESPACE
    '    7   1.500000 10.0.0.1:1 → 10.0.0.2:2 bittorrent request index=1 begin=0 length=16384\\n
         7   1.500000 10.0.0.1:1 → 10.0.0.2:2 bittorrent request index=1 begin=0 length=16384\\n'
    """

    def __init__(self, start: float = 0.0) -> None:
        self.start = start
        #: What the lines put between the endpoints (:data:`ARROW`, but for :meth:`write`).
        self._arrow = ARROW
        #: Lines made by :meth:`text` so far (each has one arrow).
        self.made = 0
        #: Per output stream (by identity), its binary buffer when :meth:`write` may write
        #: there, or None.
        self._binary: tuple[Any, Any] = (None, None)
        #: protocol → the fields its lines show (None: every short field).
        self._keys: dict[Any, tuple[str, ...] | None] = {}
        #: The last frame number and time seen, and their text.
        self._frame: Any = None
        self._time: Any = None
        self._prefix = ""

    def text(self, records: Iterable[Record]) -> str:
        """The summary lines of ``records``, each ended by a newline, as one string."""
        start = self.start
        lines: list[str] = []
        append = lines.append
        keys_of = self._keys
        frame_at, time_at, prefix = self._frame, self._time, self._prefix
        # the last record's direction and protocol (most records share them), by identity
        src_at = dst_at = protocol_at = where = keys = None
        # the last lazy record's payload keys and whether they miss every field shown, by
        # identity (a decoder gives all its records one frozenset)
        payload_at: Any = None
        wanted_at: Any = None
        disjoint = False
        lazy = LazyRecord
        run = SummaryRun
        arrow = self._arrow
        made = 0  # lines made (one a record, a run's one a message)
        for record in records:
            frame, time = record.frame, record.time
            if frame != frame_at or time != time_at or type(frame) is not int:
                frame_at, time_at = frame, time
                since = time - start
                if type(frame) is int and type(since) is float:  # (%: faster, same text)
                    prefix = "%5d %10.6f " % (frame, since)  # noqa: UP031
                else:
                    prefix = f"{frame:5d} {since:10.6f} "
            src, dst, protocol = record.src, record.dst, record.protocol
            if src is not src_at or dst is not dst_at or protocol is not protocol_at:
                src_at, dst_at, protocol_at = src, dst, protocol
                where = f"{src}{arrow}{dst} {protocol} "
                keys = keys_of.get(protocol, _UNSET)  # type: ignore[arg-type]
                if keys is _UNSET:
                    keys = keys_of[protocol] = _summary_keys(protocol)
            if type(record) is run:  # many messages' lines, each head + its tail
                if record.wanted is keys or record.wanted == keys:
                    head = prefix + where
                    append(head + ("\n" + head).join(record.tails))
                    made += record.hi - record.lo
                else:  # drawn for other fields: from the records
                    self._frame, self._time, self._prefix = frame_at, time_at, prefix
                    append(self.text(record.records())[:-1])
                continue
            made += 1
            message = record.message
            wanted = UNDECODED_SUMMARY if message == "undecoded" else keys
            if wanted is None:
                wanted = tuple(k for k, v in record.fields.items()
                               if not isinstance(v, (dict, list)))
            line = f"{prefix}{where}{message}"
            if type(record) is lazy and record._decode is not None:
                shown = record._summary
                if shown is not None:
                    payload = record._payload_keys
                    if payload is not payload_at or wanted is not wanted_at:
                        payload_at, wanted_at = payload, wanted
                        disjoint = payload.isdisjoint(wanted)
                    if not disjoint:
                        shown = None
            else:
                shown = None
            if shown is not None:
                # the header's fields (LazyRecord.summary_fields)
                for k in wanted:
                    if k in shown:
                        v = shown[k]
                        t = type(v)
                        if (t is str and len(v) <= 40 and v.isprintable()
                                or t is int and _SHORT_INT_MIN <= v <= _SHORT_INT_MAX):
                            line += f" {k}={v}"
                        else:
                            line += f" {k}={_short(v)}"
            else:
                for k, v in record.summary_fields(wanted):
                    line += f" {k}={_short(v)}"
            append(line)
        self._frame, self._time, self._prefix = frame_at, time_at, prefix
        self.made += made
        lines.append("")
        return "\n".join(lines)

    def write(self, records: Iterable[Record], out: Any) -> None:
        """Write :meth:`text` of ``records`` to the text stream ``out``: as bytes to its
        buffer when ``out`` is standard output into a file or a pipe, in UTF-8
        (``_binary_of``), else as text.

        The bytes are the same: the lines are made with a control character for each arrow,
        so that lines of ASCII text are encoded by a copy instead of character by character,
        then the arrows are put in the bytes. A line's text has no other such character
        (values that are not printable are shown escaped); should one hold it all the same,
        the bytes grow by other than the lines' count of arrows (:meth:`text` counts the
        lines), and the lines are made again as text.
        """
        binary = self._binary[1] if self._binary[0] is out else self._binary_of(out)
        if binary is None:
            out.write(self.text(records))
            return
        records = records if isinstance(records, (list, tuple)) else list(records)
        made, frame = self.made, (self._frame, self._time, self._prefix)
        self._arrow = _ARROW_MARK
        try:
            text = self.text(records)
        finally:
            self._arrow = ARROW
        data = text.encode("utf-8", out.errors)
        lines = data.replace(b"\x1f", _ARROW_BYTES)
        # (each mark put in grows the bytes by the same: their count, without counting)
        if len(lines) - len(data) != (self.made - made) * _GROWTH:  # a value holds a mark
            self.made = made
            self._frame, self._time, self._prefix = frame
            lines = self.text(records).encode("utf-8", out.errors)
        binary.write(lines)

    def _binary_of(self, out: Any) -> Any:
        """``out``'s binary buffer when it is the process's standard output writing UTF-8
        by blocks (a file or a pipe: not a terminal, which flushes by the line) and a newline
        is written as it is (``os.linesep``); None otherwise (write text). What ``out`` holds
        as text is flushed first, so the bytes follow it."""
        import codecs
        import os
        import sys

        binary = None
        if out is sys.__stdout__ and os.linesep == "\n":
            try:
                if (not out.line_buffering
                        and codecs.lookup(out.encoding).name == "utf-8"):
                    binary = out.buffer
            except (AttributeError, LookupError, TypeError):
                binary = None
        if binary is not None:
            out.flush()
        self._binary = (out, binary)
        return binary
