"""The dissection pipeline: capture file → frames → packets → streams/datagrams → records.

>>> from importlib.resources import files
>>> sample = files("p2pkit") / "data" / "sample-bittorrent-utp-dht.pcap"
>>> first = next(r for r in dissect(sample) if r.message == "handshake")
>>> first.transport, first.protocol, first.fields["info_hash"]
('utp', 'bittorrent', '0ca4c8e7fb26a354b1a7aa15baeaf26067c66811')

:func:`dissect` streams: memory holds the TCP reassembly state and each direction's partial
message, not the file. Reader damage (a truncated or corrupt capture) ends the iteration
early; the :class:`ParseError` is kept in :attr:`Dissection.error` for a one-line warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from p2pkit.capture.bittorrent import PeerWireStream
from p2pkit.capture.datagrams import DatagramDissector
from p2pkit.capture.detect import DecodeAs, detect_stream
from p2pkit.capture.dht import KrpcDissector
from p2pkit.capture.flows import StreamData, StreamEnd, StreamGap, TcpReassembler
from p2pkit.capture.gnutella import GnutellaStream
from p2pkit.capture.http_tracker import HttpTrackerStream
from p2pkit.capture.packets import Packet, decode_frame
from p2pkit.capture.readers import CaptureReader
from p2pkit.capture.record import Record
from p2pkit.errors import ParseError

__all__ = ["Dissection", "Dissector", "StreamDecoder", "dissect"]

#: Bytes of a direction held while its protocol is undecided.
DETECTION_WINDOW = 4096


class StreamDecoder(Protocol):
    """What a protocol's stream dissector offers the pipeline."""

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterable[Record]: ...

    def gap(self, offset: int, length: int) -> None: ...

    def end(self) -> Iterable[Record]: ...


@dataclass
class _Direction:
    src: str
    dst: str
    decoder: Any = None
    protocol: str | None = None
    head: list[StreamData] = field(default_factory=list)
    head_bytes: int = 0
    from_start: bool = True


StreamFactory = Callable[..., StreamDecoder]


def _paired(decoder: type) -> StreamFactory:
    """A factory of ``decoder`` for one direction, linked to the opposite direction's decoder
    (a response needs its request; an extension id is named by the other side's handshake)."""

    def make(src: str, dst: str, *, transport: str, from_start: bool,
             peer: Any = None) -> StreamDecoder:
        # Even a capture that starts mid-connection may start right at a handshake (no SYN
        # seen), so every decoder looks for one first; ``from_start`` only guided detection.
        stream = decoder(transport=transport, src=src, dst=dst)
        if peer is not None:
            stream.peer, peer.peer = peer, stream
        return stream

    return make


#: Stream protocol name -> factory of its per-direction decoder.
STREAM_DECODERS: dict[str, StreamFactory] = {
    "bittorrent": _paired(PeerWireStream),
    "bt-tracker-http": _paired(HttpTrackerStream),
    "gnutella": _paired(GnutellaStream),
}


class Dissector:
    """Sans-I/O dissection: feed :class:`Packet` objects, get :class:`Record` objects."""

    def __init__(self, *, decode_as: Iterable[DecodeAs] = ()) -> None:
        self.decode_as = list(decode_as)
        self.tcp = TcpReassembler()
        self._directions: dict[tuple[int, str], _Direction] = {}
        self._connection_protocol: dict[int, str] = {}
        self.skipped_bytes = 0
        self.datagrams = DatagramDissector(krpc=KrpcDissector())

    # -- TCP --------------------------------------------------------------------------------

    def packet(self, pkt: Packet) -> Iterator[Record]:
        if pkt.transport == "tcp":
            for event in self.tcp.packet(pkt):
                yield from self._stream_event(event)
        else:
            protocol = self._override("udp", pkt.src, pkt.dst)
            yield from self.datagrams.datagram(pkt, protocol)

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
        if d.decoder is None and d.protocol == "":
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
            self.skipped_bytes += getattr(d.decoder, "skipped", 0)
            del self._directions[key]  # ended: forget it, so memory stays flat
            if (event.connection, event.dst) not in self._directions:
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
        if not d.protocol or d.protocol not in STREAM_DECODERS:
            d.protocol = ""
            d.head.clear()
            return False
        self._connection_protocol.setdefault(connection, d.protocol)
        other = self._directions.get((connection, d.dst))
        peer = other.decoder if other is not None and other is not d else None
        d.decoder = STREAM_DECODERS[d.protocol](d.src, d.dst, transport="tcp",
                                                from_start=d.from_start, peer=peer)
        return True

    def _replay(self, d: _Direction) -> Iterator[Record]:
        head, d.head = d.head, []
        if d.decoder is None:
            return
        for e in head:
            yield from d.decoder.data(e.offset, e.data, e.frame, e.time)


class Dissection:
    """Iterate over the records of a capture; ``error`` holds reader damage afterwards."""

    def __init__(self, source: str | Path | BinaryIO, *, decode_as: Iterable[DecodeAs] = ()):
        self.source = source
        self.decode_as = list(decode_as)
        self.error: ParseError | None = None
        self.frames = 0
        #: Time of the first frame (summary lines show times relative to it, as tshark does).
        self.first_time: float | None = None
        self.dissector = Dissector(decode_as=self.decode_as)
        self._reader: CaptureReader | None = None

    @property
    def position(self) -> int:
        """Bytes of the (decompressed) file read so far, for progress bars."""
        return self._reader.offset if self._reader is not None else 0

    def __iter__(self) -> Iterator[Record]:
        dissector = self.dissector
        with CaptureReader(self.source) as reader:
            self._reader = reader
            for frame in reader:
                self.frames = frame.number
                if self.first_time is None:
                    self.first_time = frame.time
                pkt = decode_frame(frame)
                if pkt is not None:
                    yield from dissector.packet(pkt)
            self.error = reader.error
        yield from dissector.finish()


def dissect(source: str | Path | BinaryIO, *, decode_as: Iterable[DecodeAs] = ()
            ) -> Iterator[Record]:
    """Every dissected message of a capture file, in the order they complete.

    The same records the CLI prints (``p2pkit dissect FILE --format jsonl``).
    """
    return iter(Dissection(source, decode_as=decode_as))
