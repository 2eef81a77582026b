"""TCP stream reassembly for dissection (RFC 9293 §3.4 sequence numbers), one direction at a time.

A sans-I/O reassembler: feed it ``Packet`` objects in capture
order, get stream events back:

* :class:`StreamData` — bytes at a stream offset, in order, each byte once (retransmissions and
  overlaps removed, out-of-order segments held until the hole is filled);
* :class:`StreamGap` — bytes the capture never saw (a lost segment, or the tail a snaplen cut
  off): the consumer's framer continues after the gap where it can;
* :class:`StreamEnd` — FIN or RST (after any held data), or the end of the capture.

Sequence numbers are unwrapped to 64-bit stream offsets, so streams longer than 4 GiB and
sequence wrap-around work. A capture that starts mid-connection adopts the first sequence
number it sees as offset 0 and marks the direction ``mid_stream``; the framer resynchronises.

>>> from p2pkit.capture.packets import Packet, TCP_SYN, TCP_ACK
>>> r = TcpReassembler()
>>> def seg(seq, data, flags=TCP_ACK):
...     return r.packet(Packet(0, 0.0, "tcp", "10.0.0.1", 1, "10.0.0.2", 2, data, seq, 0, flags))
>>> seg(99, b"", TCP_SYN)
[]
>>> seg(105, b" world")     # out of order: held
[]
>>> [(e.offset, e.data) for e in seg(100, b"hell")]
[(0, b'hell')]
>>> [(e.offset, e.data) for e in seg(100, b"hello")]   # overlap: 1 new byte, then the held one
[(4, b'o'), (5, b' world')]
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from p2pkit.capture.packets import TCP_FIN, TCP_RST, TCP_SYN, Packet

__all__ = [
    "MAX_PENDING_BYTES",
    "StreamData",
    "StreamEnd",
    "StreamEvent",
    "StreamGap",
    "TcpDirection",
    "TcpReassembler",
]

#: Out-of-order bytes held per direction before the hole is declared lost (a gap).
MAX_PENDING_BYTES = 8 * 1024 * 1024
_MASK = 0xFFFFFFFF
_HALF = 0x80000000


@dataclass(slots=True, frozen=True)
class StreamData:
    """In-order bytes of one direction of a TCP connection, starting at stream ``offset``."""

    connection: int
    src: str
    dst: str
    offset: int
    data: bytes
    frame: int
    time: float


@dataclass(slots=True, frozen=True)
class StreamGap:
    """``length`` bytes at ``offset`` that the capture does not hold."""

    connection: int
    src: str
    dst: str
    offset: int
    length: int
    frame: int
    time: float


@dataclass(slots=True, frozen=True)
class StreamEnd:
    """The direction ended: ``reason`` is ``"fin"``, ``"rst"`` or ``"capture-end"``."""

    connection: int
    src: str
    dst: str
    offset: int
    reason: str
    frame: int
    time: float


StreamEvent = StreamData | StreamGap | StreamEnd


class TcpDirection:
    """Reassembly state of one direction (src → dst) of one connection."""

    def __init__(self, connection: int, src: str, dst: str) -> None:
        self.connection = connection
        self.src = src
        self.dst = dst
        self.next_seq: int | None = None  # 32-bit sequence number expected next
        self.offset = 0  # stream offset of next_seq
        self.mid_stream = False
        self.ended: str | None = None
        self._pending: list[tuple[int, int, bytes, int, int, float]] = []
        self._pending_bytes = 0
        self._order = itertools.count()
        self._fin_at: tuple[int, str, int, float] | None = None

    def _absolute(self, seq: int) -> int:
        assert self.next_seq is not None
        delta = (seq - self.next_seq) & _MASK
        return self.offset + (delta - (1 << 32) if delta >= _HALF else delta)

    def segment(self, pkt: Packet) -> list[StreamEvent]:
        """Take one segment of this direction; return the events it releases."""
        events: list[StreamEvent] = []
        if self.ended:
            return events
        if pkt.flags & TCP_SYN:
            if self.next_seq is None or not self.offset:
                self.next_seq = (pkt.seq + 1) & _MASK
                self.mid_stream = False
            return events
        if self.next_seq is None:
            self.next_seq = pkt.seq
            self.mid_stream = True
        start = self._absolute(pkt.seq)
        length = len(pkt.payload) + pkt.missing
        if length:
            if start == self.offset and not self._pending and not pkt.missing:
                # the common case: the next bytes, in order
                events.append(StreamData(self.connection, self.src, self.dst, start,
                                         pkt.payload, pkt.frame, pkt.time))
                self._advance(length)
            else:
                self._hold(start, pkt.payload, pkt.missing, pkt.frame, pkt.time)
                self._drain(events)
            if self._pending_bytes > MAX_PENDING_BYTES:
                self._skip_to_pending(events)
        if pkt.flags & (TCP_FIN | TCP_RST):
            reason = "rst" if pkt.flags & TCP_RST else "fin"
            self._fin_at = (start + length, reason, pkt.frame, pkt.time)
        if self._fin_at and (self.offset >= self._fin_at[0] or self._fin_at[1] == "rst"):
            if self._fin_at[1] == "rst":
                self._flush(events)
            _, reason, frame, time = self._fin_at
            self.ended = reason
            events.append(StreamEnd(self.connection, self.src, self.dst, self.offset, reason,
                                    frame, time))
        return events

    def finish(self, frame: int, time: float, reason: str | None = None) -> list[StreamEvent]:
        """End of capture (or of the connection: ``reason``): release held data, declaring the
        holes before it, and end."""
        events: list[StreamEvent] = []
        if self.ended:
            return events
        self._flush(events)
        reason = reason or (self._fin_at[1] if self._fin_at else "capture-end")
        self.ended = reason
        events.append(StreamEnd(self.connection, self.src, self.dst, self.offset, reason,
                                frame, time))
        return events

    def _hold(self, start: int, data: bytes, missing: int, frame: int, time: float) -> None:
        heapq.heappush(self._pending, (start, next(self._order), data, missing, frame, time))
        self._pending_bytes += len(data)

    def _drain(self, events: list[StreamEvent]) -> None:
        pending = self._pending
        while pending and pending[0][0] <= self.offset:
            start, _, data, missing, frame, time = heapq.heappop(pending)
            self._pending_bytes -= len(data)
            end = start + len(data) + missing
            if end <= self.offset:
                continue  # retransmission of bytes already delivered
            skip = self.offset - start
            if skip < len(data):
                chunk = data[skip:]
                events.append(StreamData(self.connection, self.src, self.dst, self.offset,
                                         chunk, frame, time))
                self._advance(len(chunk))
                gap = missing
            else:
                gap = end - self.offset
            if gap:
                events.append(StreamGap(self.connection, self.src, self.dst, self.offset, gap,
                                        frame, time))
                self._advance(gap)

    def take_in_order(self, seq: int, n: int) -> int | None:
        """When ``n`` bytes at sequence number ``seq`` are the next bytes in order (nothing held
        out of order, no FIN waiting): advance past them and return their stream offset, as
        :meth:`segment`'s common case does; otherwise None (the segment must go through
        :meth:`segment`). The in-order shortcut of :mod:`p2pkit.capture.tcp_lanes`."""
        if seq != self.next_seq or self._pending or self._fin_at is not None:
            return None
        offset = self.offset
        self._advance(n)
        return offset

    def _advance(self, n: int) -> None:
        self.offset += n
        self.next_seq = (self.next_seq + n) & _MASK  # type: ignore[operator]

    def _skip_to_pending(self, events: list[StreamEvent]) -> None:
        start, _, _, _, frame, time = self._pending[0]
        if start > self.offset:
            events.append(StreamGap(self.connection, self.src, self.dst, self.offset,
                                    start - self.offset, frame, time))
            self._advance(start - self.offset)
        self._drain(events)

    def _flush(self, events: list[StreamEvent]) -> None:
        while self._pending:
            self._skip_to_pending(events)


class TcpReassembler:
    """All TCP connections of a capture; feed packets in capture order.

    A connection is identified by its address/port 4-tuple; a SYN on a 4-tuple whose previous
    connection ended starts a new connection (port reuse). The initiator (SYN sender, or the
    first sender seen) is the connection's ``client``.
    """

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str], tuple[int, dict[str, TcpDirection]]] = {}
        self._ids = itertools.count(1)
        self.clients: dict[int, str] = {}
        self._by_id: dict[int, dict[str, TcpDirection]] = {}
        self._last = (0, 0.0)

    def direction(self, connection: int, src: str) -> TcpDirection | None:
        """The reassembly state of ``src``'s direction of ``connection`` (for mid_stream)."""
        directions = self._by_id.get(connection)
        return directions.get(src) if directions is not None else None

    def is_open(self, connection: int) -> bool:
        """Whether ``connection`` is still tracked (not both directions ended, nor reset)."""
        return connection in self._by_id

    def packet(self, pkt: Packet) -> list[StreamEvent]:
        """Take one TCP packet; return the stream events it releases."""
        src, dst = pkt.src, pkt.dst
        key = (src, dst) if src <= dst else (dst, src)
        self._last = (pkt.frame, pkt.time)
        entry = self._connections.get(key)
        events: list[StreamEvent] = []
        if entry is not None and pkt.flags & TCP_SYN and not pkt.flags & 0x10:
            cid, directions = entry
            if all(d.ended for d in directions.values()) or src in directions and (
                directions[src].offset > 0
            ):
                for d in directions.values():
                    events += d.finish(pkt.frame, pkt.time)
                entry = None
        if entry is None:
            if not (pkt.payload or pkt.missing or pkt.flags & TCP_SYN):
                return events  # a bare ACK/FIN/RST of a connection already closed, or unseen
            cid = next(self._ids)
            directions = {}
            entry = (cid, directions)
            self._connections[key] = entry
            self._by_id[cid] = directions
            self.clients[cid] = src
        cid, directions = entry
        direction = directions.get(src)
        if direction is None:
            direction = directions[src] = TcpDirection(cid, src, dst)
        events += direction.segment(pkt)
        if pkt.flags & TCP_RST:  # RFC 9293 §3.5.2: a reset aborts both directions
            for other in directions.values():
                events += other.finish(pkt.frame, pkt.time, "rst")
        if all(d.ended for d in directions.values()) and (
                len(directions) == 2 or pkt.flags & TCP_RST):
            del self._connections[key]  # closed: forget it, so memory stays flat
            del self._by_id[cid]
        return events

    def finish(self) -> list[StreamEvent]:
        """End of capture: flush every direction that has not ended."""
        frame, time = self._last
        events: list[StreamEvent] = []
        for _, directions in self._connections.values():
            for d in directions.values():
                events += d.finish(frame, time)
        return events
