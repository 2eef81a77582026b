"""Peer wire dissection of one reassembled direction (BEP 3, 6, 10, 52 in captured traffic).

Unlike the peer's own framer, a capture may begin mid-connection, lose segments, or wrap the
handshake in an MSE/PE key exchange (aria2's outgoing connections do, then select plaintext).
:class:`PeerWireStream` therefore:

* expects the handshake at stream offset 0, or finds it within the first
  :data:`HANDSHAKE_SEARCH_WINDOW` bytes (after an MSE preamble, reported as ``mse_preamble``);
* after a gap, or on bytes that cannot be a message, resynchronises: the next position where
  :data:`RESYNC_CHAIN` consecutive plausible messages start (or the rest of the buffer is a
  chain of plausible messages) is taken as a boundary, and the bytes skipped are counted;
* decodes every message with :data:`~p2pkit.bittorrent.wire.messages.PeerMessageLenient`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from p2pkit.bencode import decode_lenient
from p2pkit.bittorrent.wire.extensions import decode_extended, message_names
from p2pkit.bittorrent.wire.messages import (
    MESSAGE_IDS,
    MESSAGES,
    PSTR,
    Handshake,
    HandshakeBody,
    PeerMessageLenient,
)
from p2pkit.capture.record import Record, json_fields, json_value
from p2pkit.capture.spans import struct_spans
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import Deviation
from p2pkit.errors import ParseError
from p2pkit.schema import FixedLayout

__all__ = ["HANDSHAKE_SEARCH_WINDOW", "PeerWireStream", "looks_like_peer_messages"]

PROTOCOL = "bittorrent"
HANDSHAKE = bytes([len(PSTR)]) + PSTR
HANDSHAKE_LENGTH = 68
#: How far into a stream the handshake is looked for (MSE: 96-byte key + up to 512 bytes of
#: padding, then the crypto negotiation, BEP 8 / the MSE specification).
HANDSHAKE_SEARCH_WINDOW = 2048
#: Largest message the dissector accepts before calling the bytes garbage (4 MiB).
MAX_DISSECT_LENGTH = 4 << 20
#: Consecutive plausible messages needed to accept a resynchronisation point.
RESYNC_CHAIN = 3


def _plausible_lengths() -> dict[int, tuple[int, int]]:
    """Message id -> (min, max) length prefix, derived from the message schemas."""
    bounds = {}
    for mid, (_, body) in MESSAGES.items():
        try:
            size = FixedLayout(body).size
            bounds[mid] = (1 + size, 1 + size)
        except TypeError:
            head = [s for s in body.subcons if getattr(s, "sizeof", None)]
            fixed = 0
            for sub in head:
                try:
                    fixed += sub.sizeof()
                except Exception:  # noqa: BLE001 - variable-size tail
                    break
            bounds[mid] = (1 + fixed, MAX_DISSECT_LENGTH)
    return bounds


PLAUSIBLE = _plausible_lengths()


def _plausible_at(data: bytearray | bytes, pos: int) -> int | None:
    """Length of the plausible message at ``pos`` (prefix included), or None."""
    if len(data) - pos < 4:
        return None
    length = int.from_bytes(data[pos:pos + 4], "big")
    if length == 0:
        return 4
    if len(data) - pos < 5:
        return None
    bounds = PLAUSIBLE.get(data[pos + 4])
    if bounds is None or not bounds[0] <= length <= bounds[1]:
        return None
    return 4 + length


def looks_like_peer_messages(data: bytes, chain: int = RESYNC_CHAIN) -> bool:
    """Whether ``data`` starts with ``chain`` plausible messages (or is entirely plausible).

    >>> looks_like_peer_messages(bytes.fromhex("0000000101" "000000050400000003" "00000000"))
    True
    >>> looks_like_peer_messages(b"GET / HTTP/1.1\\r\\n")
    False
    """
    return _chain_at(data, 0, chain) is not False


def _chain_at(data: bytearray | bytes, pos: int, chain: int, at_end: bool = False
              ) -> bool | None:
    """True: ``chain`` complete plausible messages start at ``pos``; False: they do not;
    None: plausible so far, but the data ends before ``chain`` messages are complete.
    ``at_end``: no more data will come, so plausible messages that end exactly at the end of
    the data are enough."""
    for count in range(chain):
        if at_end and count and pos == len(data):
            return True
        if len(data) - pos < 5:
            return None
        size = _plausible_at(data, pos)
        if size is None:
            return False
        if size == 4 and count == 0:
            return False  # keep-alives (zero words) match anywhere in zero padding
        pos += size
    return pos <= len(data) or None


class PeerWireStream:
    """Dissect one direction of a BitTorrent peer connection from reassembled bytes.

    ``extended`` messages are decoded by name (BEP 10): ``peer`` is the opposite direction,
    whose extension handshake says which ids name which extensions in this direction.
    """

    def __init__(self, *, transport: str, src: str, dst: str,
                 expect_handshake: bool = True) -> None:
        self.transport = transport
        self.src = src
        self.dst = dst
        self.buffer = StreamBuffer()
        self.state = "handshake" if expect_handshake else "messages"
        self.synced = expect_handshake
        self.skipped = 0
        #: From this direction's extension handshake: the ids its sender receives, by name.
        self.received_names: dict[int, str] = {}
        self.peer: PeerWireStream | None = None
        self._at_end = False

    # -- input ------------------------------------------------------------------------------

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterator[Record]:
        self.buffer.append(offset, data, frame, time)
        yield from self._decode()

    def gap(self, offset: int, length: int) -> None:
        """Bytes were lost: drop the partial message and resynchronise after the gap."""
        self.buffer.reset(offset + length)
        if self.state == "handshake":
            self.state = "messages"
        self.synced = False

    def end(self) -> Iterator[Record]:
        """The direction ended: decode what the handshake search was still holding back."""
        if self.state == "handshake":
            self.state = "messages"
            self.synced = False
        self._at_end = True
        yield from self._decode()
        self.skipped += len(self.buffer)
        self.buffer.skip(len(self.buffer))

    # -- decoding ---------------------------------------------------------------------------

    def _record(self, message: str, value: Any, start: int, length: int) -> Record:
        """A record for the message at the front of the buffer (call before skipping it)."""
        frame, time = self.buffer.frame_of(length - 1)
        fields = json_fields(value)
        record = Record(frame=frame, time=time, transport=self.transport, src=self.src,
                        dst=self.dst, protocol=PROTOCOL, message=message, fields=fields,
                        offset=start, length=length, value=value)
        if message == "handshake":
            record.spans = struct_spans(HandshakeBody, 0, length)
        elif message in MESSAGE_IDS:
            # after the 4-byte length prefix and the id byte
            record.spans = struct_spans(MESSAGES[MESSAGE_IDS[message]][1], 5, length)
        if message == "extended":
            self._extended(record, value)
        return record

    def _extended(self, record: Record, value: Any) -> None:
        """BEP 10: name the extension, decode its payload (leniently), keep the names."""
        ext_id = value.extended_id
        if ext_id == 0:
            name = "handshake"
        else:
            names = self.peer.received_names if self.peer is not None else {}
            name = names.get(ext_id)
        if name is None:
            return  # the handshake naming this id was not captured
        record.fields["extension"] = name
        try:
            decoded = decode_extended(name, value.payload, strict=False)
        except ParseError as e:
            record.deviations.append(Deviation(
                offset=(record.offset or 0) + 6 + (e.offset or 0),
                rule=f"bittorrent/extended/{name}", message=e.reason, spec="BEP 10"))
            return
        if name == "handshake":
            self.received_names = message_names(decoded)
        if value.payload[:1] == b"d":  # a bencoded dictionary: report non-canonical forms
            base = (record.offset or 0) + 6  # length prefix, id, extended id
            record.deviations += [
                Deviation(offset=base + d.offset, rule=d.rule, message=d.message, spec=d.spec,
                          level=d.level)
                for d in decode_lenient(value.payload).deviations
                if d.rule != "bencode/trailing-data"  # ut_metadata's piece follows
            ]
        record.fields["message"] = json_value(decoded)
        del record.fields["payload"]

    def _decode(self) -> Iterator[Record]:
        buf = self.buffer
        if self.state == "handshake":
            at = buf.data.find(HANDSHAKE, 0, HANDSHAKE_SEARCH_WINDOW + len(HANDSHAKE))
            if at < 0:
                if len(buf) < HANDSHAKE_SEARCH_WINDOW + len(HANDSHAKE):
                    if HANDSHAKE.startswith(bytes(buf.data[:len(HANDSHAKE)])):
                        return  # a handshake still arriving
                    if len(buf) < HANDSHAKE_SEARCH_WINDOW:
                        return  # maybe an MSE preamble: wait for more
                self.state = "messages"
                self.synced = False
            else:
                if len(buf) < at + HANDSHAKE_LENGTH:
                    return
                if at:
                    record = self._record("mse_preamble", {"length": at}, buf.start, at)
                    buf.skip(at)
                    yield record
                raw = bytes(buf.data[:HANDSHAKE_LENGTH])
                record = self._record("handshake", Handshake.parse(raw), buf.start,
                                      HANDSHAKE_LENGTH)
                buf.skip(HANDSHAKE_LENGTH)
                yield record
                self.state = "messages"
                self.synced = True
        data = buf.data
        first = 0  # where a resynchronisation may start (1 after a failed parse at 0)
        while True:
            if not self.synced:
                if not self._resync(first):
                    return
                first = 0
            if len(data) < 4:
                return
            length = int.from_bytes(data[:4], "big")
            if length > MAX_DISSECT_LENGTH:
                self.synced, first = False, 1
                continue
            if len(data) < 4 + length:
                return
            start = buf.start
            raw = bytes(data[:4 + length])
            try:
                value = PeerMessageLenient.parse(raw)
            except ParseError:
                self.synced, first = False, 1
                continue
            record = self._record(value.type, value, start, 4 + length)
            buf.skip(4 + length)
            yield record

    def _resync(self, first: int = 0) -> bool:
        """Find the next plausible message boundary at or after ``first``; drop what precedes.

        Returns True when synchronised; False when more data is needed to decide (the bytes
        that cannot start a message are dropped meanwhile).
        """
        data = self.buffer.data
        for pos in range(first, max(first, len(data) - 4)):
            found = _chain_at(data, pos, RESYNC_CHAIN, self._at_end)
            if found is False:
                continue
            self.skipped += pos
            self.buffer.skip(pos)
            self.synced = found is True
            return self.synced
        drop = max(first, len(data) - 4)
        self.skipped += drop
        self.buffer.skip(drop)
        return False
