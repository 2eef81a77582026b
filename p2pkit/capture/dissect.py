"""The dissection pipeline: capture file → frames → packets → streams/datagrams → records.

>>> from importlib.resources import files
>>> sample = files("p2pkit") / "data" / "sample-bittorrent-utp-dht.pcap"
>>> first = next(r for r in dissect(sample) if r.message == "handshake")
>>> first.transport, first.protocol, first.fields["info_hash"]
('utp', 'bittorrent', '0ca4c8e7fb26a354b1a7aa15baeaf26067c66811')

Protocol-blind: which protocol a TCP direction or a datagram carries, and how to decode it,
comes from :mod:`p2pkit.registry` (:mod:`p2pkit.capture.detect`,
:mod:`p2pkit.capture.datagrams`).

:func:`dissect` streams: memory holds the TCP reassembly state, each direction's partial
message and a bounded window of records put back in frame order (:class:`FrameOrder`), not the
file. Reader damage (a truncated or corrupt capture) ends the iteration
early; the :class:`ParseError` is kept in ``Dissection.error`` for a one-line warning.
"""

from __future__ import annotations

import heapq
import socket
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from p2pkit import registry
from p2pkit.capture.datagrams import DatagramDissector
from p2pkit.capture.detect import DecodeAs, detect_stream
from p2pkit.capture.flows import StreamData, StreamEnd, StreamGap, TcpReassembler
from p2pkit.capture.frame_scan import FrameScanner
from p2pkit.capture.packets import (
    ETHERNET_IPV4_TCP,
    ETHERTYPE_IPV4,
    IPPROTO_TCP,
    IPPROTO_UDP,
    UDP_PORTS_LENGTH,
    EndpointPacket,
    Packet,
    decode_frame,
)
from p2pkit.capture.readers import LINKTYPE_ETHERNET, CaptureReader, Frame
from p2pkit.capture.record import Record, undecoded
from p2pkit.capture.tcp_lanes import TcpLanes
from p2pkit.errors import ParseError
from p2pkit.registry import StreamDecoder

__all__ = ["Dissection", "Dissector", "FrameOrder", "StreamDecoder", "dissect"]

#: Bytes of a direction held while its protocol is undecided.
DETECTION_WINDOW = 4096
#: Frames a record may lag behind the frame being read and still come out in frame order
#: (:class:`FrameOrder`); records, and bytes of their messages, held at most.
ORDER_WINDOW = 512
MAX_ORDER_HELD = 2048
MAX_ORDER_BYTES = 2 << 20
#: UDP endpoints whose texts the fast path keeps (emptied when full: memory stays flat).
MAX_ENDPOINTS = 8192
#: Records the fast path gathers (over consecutive frames) before it yields them as one batch.
BATCH_RECORDS = 64


@dataclass
class _Direction:
    src: str
    dst: str
    decoder: Any = None
    protocol: str | None = None
    head: list[StreamData] = field(default_factory=list)
    head_bytes: int = 0
    from_start: bool = True
    #: Every captured byte of the direction, and the frames that carried them (first, last,
    #: count): what an ``undecoded`` record reports when nothing else does.
    bytes: int = 0
    first_frame: int = 0
    last_frame: int = 0
    frames: int = 0
    last_time: float = 0.0
    gaps: int = 0

    def carried(self, length: int, frame: int, time: float) -> None:
        """Count ``length`` bytes of the direction that frame ``frame`` carried."""
        self.bytes += length
        if frame != self.last_frame:
            self.frames += 1
            if not self.first_frame:
                self.first_frame = frame
            self.last_frame, self.last_time = frame, time


class Dissector:
    """Sans-I/O dissection: feed ``Packet`` objects, get :class:`Record` objects."""

    def __init__(self, *, decode_as: Iterable[DecodeAs] = (),
                 secrets: Mapping[str, Any] | None = None, summary_runs: bool = False,
                 fields_read: bool = False) -> None:
        self.decode_as = list(decode_as)
        #: Ask stream decoders that can for :class:`~p2pkit.capture.summary_runs.SummaryRun`
        #: objects instead of records (their ``summary_runs`` attribute).
        self.summary_runs = summary_runs
        #: Tell stream decoders that can (their ``fields_read`` attribute) that every record's
        #: fields will be read (field trees, JSON lines): a decoder may then decode a message
        #: as it frames it, once, instead of checking it for its summary line first.
        self.fields_read = fields_read
        #: Per protocol name, what its stream decoders need to decrypt (a key log), passed
        #: to that protocol's factory as ``secrets``.
        self.secrets = dict(secrets or {})
        self.tcp = TcpReassembler()
        self._directions: dict[tuple[int, str], _Direction] = {}
        self._connection_protocol: dict[int, str] = {}
        self.skipped_bytes = 0
        self.datagrams = DatagramDissector(secrets=self.secrets)
        #: Per protocol name, its stream decoder's factory (a ``"module:attribute"`` string
        #: until the first direction of that protocol: start-up imports no decoder).
        self._stream_factories: dict[str, Any] = {d.name: d.stream_decoder
                                                  for d in registry.stream_protocols()}

    # -- TCP --------------------------------------------------------------------------------

    def packet(self, pkt: Packet) -> Iterable[Record]:
        if pkt.transport == "tcp":
            return self._segment(pkt)
        protocol = self._override("udp", pkt.src, pkt.dst) if self.decode_as else None
        return self.datagrams.records(pkt, protocol)  # (a list: no generator per datagram)

    def _segment(self, pkt: Packet) -> Iterator[Record]:
        for event in self.tcp.packet(pkt):
            yield from self._stream_event(event)

    def finish(self) -> Iterator[Record]:
        for event in self.tcp.finish():
            yield from self._stream_event(event)
        yield from self.datagrams.finish()

    def _override(self, transport: str, src: str, dst: str) -> str | None:
        for rule in self.decode_as:
            if rule.transport == transport and (
                src.rsplit(":", 1)[1] == str(rule.port) or dst.rsplit(":", 1)[1] == str(rule.port)
            ):
                return rule.protocol
        return None

    def _stream_event(self, event: StreamData | StreamGap | StreamEnd) -> Iterator[Record]:
        key = (event.connection, event.src)
        d = self._directions.get(key)
        if d is None:
            d = self._directions[key] = _Direction(event.src, event.dst)
            d.protocol = self._override("tcp", event.src, event.dst)
            direction = self.tcp.direction(event.connection, event.src)
            d.from_start = not (direction and direction.mid_stream) and (
                not isinstance(event, StreamData) or event.offset == 0)
        if isinstance(event, StreamData):
            d.carried(len(event.data), event.frame, event.time)
        elif isinstance(event, StreamGap):
            d.gaps += event.length
        if d.decoder is None and d.protocol == "":
            if isinstance(event, StreamEnd):
                yield from self._end(event, d, key)
            return
        if isinstance(event, StreamData):
            if d.decoder is None:
                d.head.append(event)
                d.head_bytes += len(event.data)
                if not self._decide(event.connection, d, complete=False):
                    return
                yield from self._replay(d)
                return
            yield from d.decoder.data(event.offset, event.data, event.frame, event.time)
        elif isinstance(event, StreamGap):
            if d.decoder is None:
                if d.head:
                    self._decide(event.connection, d, complete=True)
                    yield from self._replay(d)
                d.from_start = False
            if d.decoder is not None:
                d.decoder.gap(event.offset, event.length)
        else:  # end
            if d.decoder is None and d.head:
                self._decide(event.connection, d, complete=True)
                yield from self._replay(d)
            if d.decoder is not None:
                yield from d.decoder.end()
            yield from self._end(event, d, key)

    def _end(self, event: StreamEnd, d: _Direction, key: tuple[int, str]) -> Iterator[Record]:
        """The direction ended: say what was not decoded, and forget it (memory stays flat)."""
        skipped = getattr(d.decoder, "skipped", 0)
        self.skipped_bytes += skipped
        if d.bytes:
            # reported where the direction ends (in frame order, however long it was idle);
            # the fields say which frames carried the bytes
            frames = (d.first_frame, d.last_frame, d.frames)
            if d.decoder is None:
                record = undecoded(protocol="data", transport="tcp", src=d.src, dst=d.dst,
                                   reason="unknown protocol", length=d.bytes, frames=frames,
                                   time=d.last_time, offset=0)
                record.frame, record.time = max(event.frame, d.last_frame), event.time
                yield record
            elif not getattr(d.decoder, "reports_undecoded", False):
                # (some decoders count the lost bytes of a gap as skipped: captured bytes only)
                left = min(skipped, d.bytes)
                if left > 0:
                    failed = getattr(d.decoder, "failed", None)
                    at = getattr(failed, "offset", None)
                    reason = ("after a gap" if d.gaps else "malformed" if failed
                              else "truncated")  # bytes left over at the end
                    record = undecoded(
                        protocol=d.protocol or "data", transport="tcp", src=d.src, dst=d.dst,
                        reason=reason, length=left, frames=frames, time=d.last_time,
                        at=at if isinstance(at, int) else None,
                        detail=str(getattr(failed, "reason", "") or ""))
                    record.frame, record.time = max(event.frame, d.last_frame), event.time
                    yield record
        del self._directions[key]
        # an HTTP/1.0 client half-closes before the answer: keep the connection's protocol
        # until the reassembler forgets the connection (both directions ended, or a reset)
        if not self.tcp.is_open(event.connection):
            self._connection_protocol.pop(event.connection, None)

    def _decide(self, connection: int, d: _Direction, *, complete: bool) -> bool:
        other = self._connection_protocol.get(connection)
        if d.protocol is None:
            head = b"".join(e.data for e in d.head)[:DETECTION_WINDOW]
            found = detect_stream(head, other=other, complete=complete or
                                  d.head_bytes >= DETECTION_WINDOW, from_start=d.from_start)
            if found is None:
                return False
            d.protocol = found
        if not d.protocol or d.protocol not in self._stream_factories:
            d.protocol = ""
            d.head.clear()
            return False
        self._connection_protocol.setdefault(connection, d.protocol)
        other = self._directions.get((connection, d.dst))
        peer = other.decoder if other is not None and other is not d else None
        extra = {"secrets": self.secrets[d.protocol]} if d.protocol in self.secrets else {}
        factory = registry.load(self._stream_factories[d.protocol])
        d.decoder = factory(src=d.src, dst=d.dst, transport="tcp", peer=peer, **extra)
        if not d.from_start and hasattr(d.decoder, "mid_stream"):
            d.decoder.mid_stream = True  # the capture missed its first bytes
        if self.summary_runs and hasattr(d.decoder, "summary_runs"):
            d.decoder.summary_runs = True
        if self.fields_read and hasattr(d.decoder, "fields_read"):
            d.decoder.fields_read = True
        return True

    def _replay(self, d: _Direction) -> Iterator[Record]:
        head, d.head = d.head, []
        if d.decoder is None:
            return
        for e in head:
            yield from d.decoder.data(e.offset, e.data, e.frame, e.time)


class FrameOrder:
    """Records back in frame order, within a bounded window.

    A record is reported in the frame that carried its last byte, but it may be *produced*
    later: while a direction's protocol is still being detected, while uTP packets wait for a
    missing ``seq_nr``. Records are held until the reader is ``window`` frames past them (or
    more than ``max_held`` records, or more than ``max_bytes`` bytes of messages, are held),
    then released lowest frame first; records of one frame keep the order they were produced
    in. Memory stays bounded by ``max_held`` and ``max_bytes``.

    Most records are produced in frame order: a record whose frame is at least the highest
    frame queued so far joins the end of a queue (already in order, nothing to sort); only a
    record produced late (lower frame) goes to a heap, keyed by (frame, push count). Releasing
    takes the lower of the two heads; at equal frames the queue's first (its records were
    pushed before any late record of that frame, since the highest frame queued never
    decreases), so the order is the one a single heap of (frame, push count) gives.

    >>> order = FrameOrder(window=2)
    >>> for n in (3, 1, 2):
    ...     order.push(Record(frame=n, time=0.0, transport="udp", src="a", dst="b",
    ...                       protocol="p", message=str(n)))
    >>> [r.frame for r in order.release(4)], [r.frame for r in order.flush()]
    ([1, 2], [3])
    """

    def __init__(self, window: int = ORDER_WINDOW, max_held: int = MAX_ORDER_HELD,
                 max_bytes: int = MAX_ORDER_BYTES) -> None:
        self.window = window
        self.max_held = max_held
        self.max_bytes = max_bytes
        #: Records pushed in frame order (each frame at least the one before).
        self._queue: deque[Record] = deque()
        #: The highest frame queued so far (never decreases).
        self._tail = -1
        #: Records produced after a record of a later frame: (frame, push count, record).
        self._late: list[tuple[int, int, Record]] = []
        self._count = 0
        #: Bytes of the messages held (their ``length``).
        self.held_bytes = 0

    @property
    def full(self) -> bool:
        """More held than the bounds allow: release the oldest now."""
        return (len(self._queue) + len(self._late) > self.max_held
                or self.held_bytes > self.max_bytes)

    def __len__(self) -> int:
        """Records held."""
        return len(self._queue) + len(self._late)

    def push(self, record: Record) -> None:
        frame = record.frame
        if frame >= self._tail:
            self._queue.append(record)
            self._tail = frame
        else:
            heapq.heappush(self._late, (frame, self._count, record))
            self._count += 1
        self.held_bytes += record.length

    def pop(self) -> Record:
        """The held record of the lowest frame."""
        late, queue = self._late, self._queue
        if late and (not queue or late[0][0] < queue[0].frame):
            record = heapq.heappop(late)[2]
        else:
            record = queue.popleft()
        self.held_bytes -= record.length
        return record

    def first_frame(self) -> int | None:
        """The lowest frame held (None: nothing held)."""
        late, queue = self._late, self._queue
        if late and (not queue or late[0][0] < queue[0].frame):
            return late[0][0]
        return queue[0].frame if queue else None

    def extend(self, records: Iterable[Record], out: list[Record], frame: int | None = None,
               only_when_ready: bool = True) -> None:
        """:meth:`push` each record and, after each, the oldest to ``out`` when more is held
        than the bounds allow (one record a push, as a burst fills them); with ``frame``,
        then, if :meth:`ready` ``frame`` (or whatever ``only_when_ready``), what
        :meth:`release_into` ``frame`` releases: one call for a frame's records and what the
        frame lets go."""
        queue, late = self._queue, self._late
        append, popleft, release = queue.append, queue.popleft, out.append
        tail = self._tail
        max_held, max_bytes = self.max_held, self.max_bytes
        for record in records:
            at = record.frame
            if at >= tail:
                append(record)
                tail = at
            else:
                heapq.heappush(late, (at, self._count, record))
                self._count += 1
            self.held_bytes += record.length
            if len(queue) + len(late) > max_held or self.held_bytes > max_bytes:
                if late:
                    release(self.pop())
                else:  # (pop inlined: with many records a frame, the bound releases them)
                    first = popleft()
                    self.held_bytes -= first.length
                    release(first)
        self._tail = tail
        if frame is None:
            return
        limit = frame - self.window
        if late:
            if only_when_ready and not (queue and queue[0].frame <= limit
                                        or late[0][0] <= limit):
                return
            while True:
                first_frame = self.first_frame()
                if first_frame is None or not (first_frame <= limit or self.full):
                    return
                release(self.pop())
        # (the common case, in frame order: the queue's head only)
        if only_when_ready and not (queue and queue[0].frame <= limit):
            return
        held_bytes = self.held_bytes
        while queue and (queue[0].frame <= limit or len(queue) > max_held
                          or held_bytes > max_bytes):
            first = popleft()
            held_bytes -= first.length
            release(first)
        self.held_bytes = held_bytes

    def release(self, frame: int) -> Iterator[Record]:
        """Records no later record can precede, now that ``frame`` has been read."""
        out: list[Record] = []
        self.release_into(frame, out)
        return iter(out)

    def release_into(self, frame: int, out: list[Record]) -> None:
        """:meth:`release`'s records, appended to ``out``."""
        self.extend((), out, frame, only_when_ready=False)

    def ready(self, frame: int) -> bool:
        """Whether :meth:`release` at ``frame`` gives anything (the lowest held frame is
        ``window`` frames behind; the bounds are kept by :meth:`extend`)."""
        limit = frame - self.window
        queue, late = self._queue, self._late
        return bool(queue and queue[0].frame <= limit or late and late[0][0] <= limit)

    def flush(self) -> Iterator[Record]:
        """Everything still held, in frame order (at the end of the capture)."""
        while self._queue or self._late:
            yield self.pop()


class Dissection:
    """Iterate over the records of a capture; ``error`` holds reader damage afterwards.

    ``fast`` (the default) reads frames with :class:`~p2pkit.capture.frame_scan.FrameScanner`,
    unpacks Ethernet/IPv4/TCP headers in one call and hands in-order TCP segments of a known
    direction straight to its decoder (:mod:`p2pkit.capture.tcp_lanes`); ``fast=False`` takes
    every frame through :class:`CaptureReader`, ``decode_frame`` and :meth:`Dissector.packet`
    (the reference the tests compare it with: same records, same bytes to every decoder).
    """

    def __init__(self, source: str | Path | BinaryIO, *, decode_as: Iterable[DecodeAs] = (),
                 frame_order: bool = True, secrets: Mapping[str, Any] | None = None,
                 fast: bool = True, summary_runs: bool = False, fields_read: bool = False):
        self.source = source
        #: Let decoders hand over :class:`~p2pkit.capture.summary_runs.SummaryRun` objects
        #: (summary lines only) among the records :meth:`batches` gives.
        self.summary_runs = summary_runs
        #: Every record's fields will be read (``-V``, JSON): passed to the decoders
        #: (:attr:`Dissector.fields_read`), which may decode as they frame.
        self.fields_read = fields_read
        #: Emit records in frame order (:class:`FrameOrder`) rather than as they complete.
        self.frame_order = frame_order
        self.decode_as = list(decode_as)
        self.fast = fast
        self.error: ParseError | None = None
        self.frames = 0
        #: Time of the first frame (summary lines show times relative to it, as tshark does).
        self.first_time: float | None = None
        self.dissector = Dissector(decode_as=self.decode_as, secrets=secrets,
                                   summary_runs=summary_runs, fields_read=fields_read)
        self._reader: CaptureReader | None = None

    @property
    def position(self) -> int:
        """Bytes of the (decompressed) file read so far, for progress bars."""
        return self._reader.offset if self._reader is not None else 0

    def __iter__(self) -> Iterator[Record]:
        return chain.from_iterable(self.batches())

    def batches(self) -> Iterator[list[Record]]:
        """The records of ``iter(dissection)``, in the same order, as lists: those released after
        one frame is read (a consumer handles a batch at once: a summary writes it in one
        call); on the fast path, the records of consecutive frames gathered until there are
        ``BATCH_RECORDS`` (one list a frame cost 2.7 % of a DHT summary run). With
        ``summary_runs``, a batch may hold :class:`~p2pkit.capture.summary_runs.SummaryRun`
        objects (each standing for the records ``records()`` gives)."""
        kind: Any = FrameOrder
        if self.summary_runs:
            from p2pkit.capture.summary_runs import RunOrder
            kind = RunOrder
        # unordered: every record leaves as soon as it is pushed (nothing is ever held)
        order = kind() if self.frame_order else kind(max_held=-1)
        if self.fast:
            yield from self._scanned(order)
        else:
            yield from self._one_by_one(order)
        batch: list[Record] = []
        order.extend(self.dissector.finish(), batch)
        batch.extend(order.flush())
        if batch:
            yield batch

    def _one_by_one(self, order: FrameOrder) -> Iterator[list[Record]]:
        """Every frame through the reader, :func:`decode_frame` and the dissector."""
        dissector = self.dissector
        extend, release = order.extend, order.release_into
        queue, late, window = order._queue, order._late, order.window
        batch: list[Record] = []
        with CaptureReader(self.source) as reader:
            self._reader = reader
            for frame in reader:
                self.frames = number = frame.number
                if self.first_time is None:
                    self.first_time = frame.time
                pkt = decode_frame(frame)
                if pkt is not None:
                    extend(dissector.packet(pkt), batch)
                    # (FrameOrder.ready inlined: it runs once per frame)
                    limit = number - window
                    if queue and queue[0].frame <= limit or late and late[0][0] <= limit:
                        release(number, batch)
                    if batch:
                        yield batch
                        batch = []
            self.error = reader.error

    def _scanned(self, order: FrameOrder) -> Iterator[list[Record]]:
        """The same, frames read as tuples over blocks, the common frame's headers unpacked
        at once, and in-order segments of a known TCP direction given to its decoder here
        (every test below is one :class:`~p2pkit.capture.tcp_lanes.TcpLanes` documents; the
        rest goes to :meth:`Dissector.packet` as in :meth:`_one_by_one`)."""
        dissector = self.dissector
        lanes = TcpLanes(dissector.tcp, dissector._directions)
        lane_of, learn = lanes.get, lanes.learn
        extend, release = order.extend, order.release_into
        queue, late, window = order._queue, order._late, order.window
        batch: list[Record] = []
        headers = ETHERNET_IPV4_TCP.unpack_from
        udp_header = UDP_PORTS_LENGTH.unpack_from
        ntop, inet = socket.inet_ntop, socket.AF_INET
        last_tcp = (0, 0.0)  # frame and time of the last TCP segment taken here
        new_packet = object.__new__
        # a UDP datagram's records straight from the datagram dissector (no --decode-as rule
        # to look up: what Dissector.packet would do)
        datagram_records = None if dissector.decode_as else dissector.datagrams.records
        endpoints: dict[tuple[bytes, int], tuple[str, str]] = {}
        with FrameScanner(self.source) as scanner:
            self._reader = scanner
            for number, time, linktype, block, start, end, original in scanner.scan():
                self.frames = number
                if self.first_time is None:
                    self.first_time = time
                records: Any = None
                pkt = key = None
                if linktype == LINKTYPE_ETHERNET and end - start >= ETHERNET_IPV4_TCP.size:
                    (ethertype, vihl, total, fragment, proto, source, destination, sport, dport,
                     seq, ack, offset_flags) = headers(block, start)
                    stop = start + 14 + total  # the IPv4 datagram's end (Ethernet padding after)
                    if (ethertype != ETHERTYPE_IPV4 or vihl != 0x45 or fragment & 0x3FFF
                            or total < 20 or stop > end):
                        pkt = decode_frame(Frame(number, time, linktype, block[start:end],
                                                 original, 0))
                    elif proto == IPPROTO_TCP:
                        header = (offset_flags >> 12) * 4
                        if header < 20 or total < 20 + header:
                            continue  # not a TCP segment (decode_frame says None)
                        at = start + 34 + header
                        flags = offset_flags & 0x1FF
                        key = (source, sport, destination, dport)
                        lane = lane_of(key)
                        if lane is not None and not flags & 0x07 and not lane[0].ended:
                            direction = lane[0]
                            if at == stop:  # a bare acknowledgment changes nothing
                                records = ()
                            elif lane[1] is not None and lane[1].decoder is not None:
                                offset = direction.take_in_order(seq, stop - at)
                                if offset is not None:
                                    d = lane[1]
                                    d.carried(stop - at, number, time)
                                    records = d.decoder.data(offset, block[at:stop], number,
                                                             time)
                        if records is None:
                            pkt = Packet(number, time, "tcp", ntop(inet, source), sport,
                                         ntop(inet, destination), dport, block[at:stop], seq,
                                         ack, flags, 0)
                        else:
                            last_tcp = (number, time)
                    elif proto == IPPROTO_UDP:
                        if total < 28:
                            continue  # no room for the UDP header (decode_frame says None)
                        sport, dport, length = udp_header(block, start + 34)
                        at = start + 42
                        last = start + 34 + length if 8 <= length <= total - 20 else stop
                        # (each endpoint's texts made once: what Packet.src/dst would format)
                        named = endpoints.get((source, sport))
                        if named is None:
                            named = self._endpoint(endpoints, source, sport)
                        to = endpoints.get((destination, dport))
                        if to is None:
                            to = self._endpoint(endpoints, destination, dport)
                        # (EndpointPacket(number, time, "udp", named[0], sport, to[0], dport,
                        # block[at:last], 0, 0, 0, 0, named[1], to[1]), its slots set here:
                        # a third of the class call's cost, once per datagram)
                        pkt = new_packet(EndpointPacket)
                        pkt.frame, pkt.time, pkt.transport = number, time, "udp"
                        pkt.src_ip, pkt.src_port, pkt.dst_ip, pkt.dst_port = (
                            named[0], sport, to[0], dport)
                        pkt.payload = block[at:last]
                        pkt.seq = pkt.ack = pkt.flags = pkt.missing = 0
                        pkt.src, pkt.dst = named[1], to[1]
                        if datagram_records is not None:  # (Dissector.packet's UDP branch)
                            records, pkt = datagram_records(pkt), None
                    else:
                        continue  # neither TCP nor UDP
                else:
                    pkt = decode_frame(Frame(number, time, linktype, block[start:end], original,
                                             0))
                if pkt is not None:
                    records = dissector.packet(pkt)
                    if key is not None:
                        learn(key, pkt.src, pkt.dst)
                elif records is None:
                    continue
                if records:  # (not a bare acknowledgment's empty tuple)
                    extend(records, batch, number)  # (and what this frame lets go)
                else:
                    # (FrameOrder.ready inlined: it runs once per frame)
                    limit = number - window
                    if queue and queue[0].frame <= limit or late and late[0][0] <= limit:
                        release(number, batch)
                if len(batch) >= BATCH_RECORDS:
                    yield batch
                    batch = []
            self.error = scanner.error
        if batch:
            yield batch
        tcp = dissector.tcp
        if last_tcp[0] > tcp._last[0]:
            tcp._last = last_tcp


    @staticmethod
    def _endpoint(endpoints: dict[tuple[bytes, int], tuple[str, str]], address: bytes,
                  port: int) -> tuple[str, str]:
        """An IPv4 endpoint's address and ``address:port`` texts (as :class:`Packet` formats
        them), kept in ``endpoints`` (emptied when it holds :data:`MAX_ENDPOINTS`)."""
        if len(endpoints) >= MAX_ENDPOINTS:
            endpoints.clear()
        ip = socket.inet_ntop(socket.AF_INET, address)
        named = endpoints[(address, port)] = (ip, f"{ip}:{port}")
        return named


def dissect(source: str | Path | BinaryIO, *, decode_as: Iterable[DecodeAs] = (),
            frame_order: bool = True, secrets: Mapping[str, Any] | None = None,
            fast: bool = True) -> Iterator[Record]:
    """Every dissected message of a capture file, in frame order (``frame_order=False``: in
    the order they complete). ``secrets``: per protocol name, what decrypts its streams
    (``{"bittorrent": KeyLog}``: an MSE key log).

    The same records the CLI prints (``p2pkit dissect FILE --format jsonl``).
    """
    return iter(Dissection(source, decode_as=decode_as, frame_order=frame_order,
                           secrets=secrets, fast=fast))
