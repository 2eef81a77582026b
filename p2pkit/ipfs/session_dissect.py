"""What a decrypted Noise session carries, as dissector records (one direction at a time).

Once a key log gives the transport keys (:mod:`p2pkit.ipfs.noise_keylog`), the plaintext of a
libp2p TCP connection is, per direction (libp2p connections §Upgrading connections):

1. the muxer negotiation with multistream-select (``/multistream/1.0.0``, ``/yamux/1.0.0``),
   absent when both Noise payloads announced ``stream_muxers`` (connections §Inlining Muxer
   Negotiation): the first byte is then a yamux version, 0, which no multistream line starts
   with;
2. yamux frames (yamux §Framing: a 12-byte header, a data frame's payload after it);
3. in each yamux stream, reassembled from its data frames: multistream-select lines, then the
   messages of the protocol the stream agreed on: ``/ipfs/ping/1.0.0`` (32-byte payloads,
   ping §Protocol), identify and identify push, kad-dht and Bitswap (one varint-length-
   prefixed protobuf each: identify §Protocol, kad-dht §RPC messages, Bitswap §Wire format).

Records use the decrypted stream's offsets; a message is reported in the frame carrying the
Noise message that completed it. Limits: at most :data:`MAX_TRACKED_STREAMS` streams per
direction (a stream is freed on FIN or RST), each message bounded by its protocol's maximum
before it is buffered; a stream that breaks its protocol's framing gets one deviation and its
remaining bytes are counted, not decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from p2pkit.capture.record import Record, json_fields
from p2pkit.deviations import Deviation
from p2pkit.errors import ParseError
from p2pkit.ipfs import bitswap, identify, kad_dht, ping, yamux
from p2pkit.ipfs.bitswap_messages import MAX_BITSWAP_MESSAGE_LENGTH, BitswapMessage
from p2pkit.ipfs.identify_messages import MAX_IDENTIFY_LENGTH, IdentifyMessage
from p2pkit.ipfs.kad_dht_messages import MAX_KAD_MESSAGE_LENGTH, KadMessage
from p2pkit.ipfs.multistream import HEADER, LS, MAX_LINE_LENGTH, NA, MultistreamMessage
from p2pkit.ipfs.protobuf import Message, delimited_frame_length
from p2pkit.ipfs.varint import decode_uvarint
from p2pkit.ipfs.yamux import HEADER_LENGTH, MAX_WINDOW, YamuxHeader

__all__ = ["MAX_TRACKED_STREAMS", "PROTOCOL_MESSAGES", "SESSION_MESSAGES", "PlaintextDirection",
           "line_kind"]

PROTOCOL = "ipfs"
#: Streams followed at once in one direction (yamux's ACK backlog, four times over).
MAX_TRACKED_STREAMS = 4 * yamux.MAX_STREAMS
IDENTIFY_PUSH = "/ipfs/id/push/1.0.0"
#: Stream protocol -> (record message name, protobuf message, largest message).
PROTOCOL_MESSAGES: dict[str, tuple[str, Message, int]] = {
    identify.PROTOCOL_ID: ("identify", IdentifyMessage, MAX_IDENTIFY_LENGTH),
    IDENTIFY_PUSH: ("identify", IdentifyMessage, MAX_IDENTIFY_LENGTH),
    kad_dht.PROTOCOL_ID: ("kad_dht", KadMessage, MAX_KAD_MESSAGE_LENGTH),
    **{p: ("bitswap", BitswapMessage, MAX_BITSWAP_MESSAGE_LENGTH) for p in bitswap.PROTOCOL_IDS},
}
#: Record message names this module writes.
SESSION_MESSAGES = ("yamux", "ping", "identify", "kad_dht", "bitswap", "stream_data")
#: Bitswap block bytes are shown as length + SHA-1.
_SUMMARISED = frozenset({"data", "blocks"})


def line_kind(line: str) -> str:
    """What a multistream-select line is (multistream-select §Protocol)."""
    return ("header" if line == HEADER else "not_available" if line == NA
            else "list" if line == LS else "protocol")


def _line_length(buffer: bytearray) -> int | None:
    """Bytes of the multistream line at the start of ``buffer``; None while incomplete; -1
    when the bytes are not a line (a varint length, then ``/``, ``na`` or ``ls``)."""
    try:
        length, after = decode_uvarint(bytes(buffer[:10]))
    except ParseError:
        return None if len(buffer) < 9 else -1
    if length > MAX_LINE_LENGTH or length < 2:
        return -1
    head = bytes(buffer[after:after + 3])
    if not (head[:1] == b"/" or b"na\n".startswith(head) or b"ls\n".startswith(head)):
        return -1
    if len(buffer) < after + length:
        return None
    if buffer[after + length - 1] != 0x0A:
        return -1
    return after + length


@dataclass
class _StreamDirection:
    """One direction of one yamux stream: its bytes, its lines, then its protocol."""

    stream_id: int
    buffer: bytearray = field(default_factory=bytearray)
    offset: int = 0  # bytes of the stream already consumed
    lines: list[str] = field(default_factory=list)
    protocol: str | None = None
    failed: bool = False


class PlaintextDirection:
    """The decrypted bytes of one direction of a libp2p connection, decoded into records.

    ``make_record(message, offset, length, frame, time)`` builds a record with the stream
    direction's addresses (the caller owns them).
    """

    def __init__(self, *, transport: str, src: str, dst: str) -> None:
        self.transport, self.src, self.dst = transport, src, dst
        self.phase = "muxer"  # then "yamux"; "failed" after bytes that break the framing
        self.buffer = bytearray()
        self.offset = 0  # decrypted-stream offset of buffer[0]
        self.streams: dict[int, _StreamDirection] = {}
        self.muxer_lines: list[str] = []
        self.skipped = 0

    def _record(self, message: str, offset: int, length: int, frame: int, time: float,
                fields: dict[str, Any], value: Any = None) -> Record:
        return Record(frame=frame, time=time, transport=self.transport, src=self.src,
                      dst=self.dst, protocol=PROTOCOL, message=message, fields=fields,
                      offset=offset, length=length, value=value)

    def _deviation(self, record: Record, offset: int, rule: str, message: str,
                   spec: str) -> None:
        record.deviations.append(Deviation(offset=offset, rule=f"{PROTOCOL}/{rule}",
                                           message=message, spec=spec))

    # -- the connection's plaintext ----------------------------------------------------------

    def feed(self, plaintext: bytes, frame: int, time: float) -> Iterator[Record]:
        """The plaintext of one Noise transport message."""
        if self.phase == "failed":
            self.skipped += len(plaintext)
            return
        self.buffer += plaintext
        while self.buffer and self.phase != "failed":
            if self.phase == "muxer":
                if self.buffer[0] == 0:  # a yamux header: the muxer was inlined
                    self.phase = "yamux"
                    continue
                size = _line_length(self.buffer)
                if size is None:
                    return
                if size < 0:
                    yield self._fail("muxer negotiation: not a multistream line", frame, time)
                    return
                line = MultistreamMessage.parse(bytes(self.buffer[:size]))
                self.muxer_lines.append(line)
                yield self._record("multistream", self.offset, size, frame, time,
                                   {"line": line, "kind": line_kind(line), "layer": "muxer"})
                self._consume(size)
                if line == yamux.PROTOCOL_ID:
                    self.phase = "yamux"
                continue
            if len(self.buffer) < HEADER_LENGTH:
                return
            try:
                header = YamuxHeader.parse(bytes(self.buffer[:HEADER_LENGTH]))
            except ParseError as e:
                yield self._fail(f"yamux header: {e.reason}", frame, time)
                return
            length = header.length if header.type == "data" else 0
            if length > MAX_WINDOW:
                yield self._fail(f"a yamux data frame of {length} bytes (more than any window)",
                                 frame, time)
                return
            if len(self.buffer) < HEADER_LENGTH + length:
                return
            payload = bytes(self.buffer[HEADER_LENGTH:HEADER_LENGTH + length])
            yield self._record("yamux", self.offset, HEADER_LENGTH + length, frame, time,
                               {**json_fields(header, drop=()), "data": length},
                               value=header)
            self._consume(HEADER_LENGTH + length)
            yield from self._stream(header, payload, frame, time)

    def _consume(self, size: int) -> None:
        del self.buffer[:size]
        self.offset += size

    def _fail(self, reason: str, frame: int, time: float) -> Record:
        record = self._record("undecoded", self.offset, len(self.buffer), frame, time,
                              {"reason": "malformed", "layer": "decrypted"})
        self._deviation(record, self.offset, "decrypted", reason, "libp2p connections")
        self.phase = "failed"
        self.skipped += len(self.buffer)
        self.buffer.clear()
        return record

    # -- yamux streams -----------------------------------------------------------------------

    def _stream(self, header: Any, payload: bytes, frame: int, time: float) -> Iterator[Record]:
        sid = header.stream_id
        if sid == 0:
            return
        stream = self.streams.get(sid)
        if stream is None and (payload or header.flags.SYN or header.flags.ACK):
            if len(self.streams) >= MAX_TRACKED_STREAMS:
                return  # counted in the yamux records, not decoded
            stream = self.streams[sid] = _StreamDirection(sid)
        if stream is not None and payload:
            if stream.failed:
                self.skipped += len(payload)
            else:
                stream.buffer += payload
                yield from self._stream_messages(stream, frame, time)
        if stream is not None and (header.flags.FIN or header.flags.RST):
            self.skipped += len(stream.buffer)
            del self.streams[sid]

    def _stream_messages(self, stream: _StreamDirection, frame: int,
                         time: float) -> Iterator[Record]:
        buf = stream.buffer
        while buf and not stream.failed:
            if stream.protocol is None:
                size = _line_length(buf)
                if size is None:
                    return
                if size > 0:
                    line = MultistreamMessage.parse(bytes(buf[:size]))
                    stream.lines.append(line)
                    yield self._stream_record(stream, "multistream", size, frame, time,
                                              {"line": line, "kind": line_kind(line)})
                    continue
                agreed = [ln for ln in stream.lines if line_kind(ln) == "protocol"]
                stream.protocol = agreed[-1] if agreed else ""
            if stream.protocol == ping.PROTOCOL_ID:
                if len(buf) < ping.PING_LENGTH:
                    return
                payload = bytes(buf[:ping.PING_LENGTH])
                yield self._stream_record(stream, "ping", ping.PING_LENGTH, frame, time,
                                          {"payload": payload.hex()})
                continue
            known = PROTOCOL_MESSAGES.get(stream.protocol)
            if known is None:
                yield self._stream_record(stream, "stream_data", len(buf), frame, time,
                                          {"protocol_id": stream.protocol, "data": len(buf)})
                continue
            name, message, limit = known
            try:
                size = delimited_frame_length(buf, limit)
            except ParseError as e:
                yield self._stream_fail(stream, e.reason, frame, time)
                return
            if size is None or len(buf) < size:
                return
            _, start = decode_uvarint(bytes(buf[:10]))
            try:
                value = message.parse(bytes(buf[start:size]))
            except ParseError as e:
                yield self._stream_fail(stream, f"{name}: {e}", frame, time)
                return
            fields = json_fields(value, drop=("_unknown",), summarised=_SUMMARISED)
            yield self._stream_record(stream, name, size, frame, time, fields, value)

    def _stream_record(self, stream: _StreamDirection, message: str, size: int, frame: int,
                       time: float, fields: dict[str, Any], value: Any = None) -> Record:
        record = self._record(message, stream.offset, size, frame, time,
                              {"stream_id": stream.stream_id, **fields}, value)
        del stream.buffer[:size]
        stream.offset += size
        return record

    def _stream_fail(self, stream: _StreamDirection, reason: str, frame: int,
                     time: float) -> Record:
        record = self._record("undecoded", stream.offset, len(stream.buffer), frame, time,
                              {"stream_id": stream.stream_id, "reason": "malformed",
                               "protocol_id": stream.protocol})
        self._deviation(record, stream.offset, "stream", reason, stream.protocol or "yamux")
        stream.failed = True
        self.skipped += len(stream.buffer)
        stream.buffer.clear()
        return record
