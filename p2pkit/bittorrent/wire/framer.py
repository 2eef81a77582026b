"""Incremental framing of a peer wire byte stream (BEP 3 §peer protocol).

BEP 3: "The peer wire protocol consists of a handshake followed by a never-ending stream of
length-prefixed messages." :class:`MessageFramer` takes the bytes of one direction of a
connection in any split (as they come off a socket or out of a capture) and returns each
complete frame with its stream offset, raw bytes and parsed message.

The length prefix is checked against ``max_length`` as soon as its four bytes are in, before
anything of the message is buffered, so a peer cannot make us hold more than ``max_length + 4``
bytes (:class:`~p2pkit.errors.LimitExceeded`).

>>> framer = MessageFramer(handshake=False)
>>> framer.feed(bytes.fromhex("0000000d06000000220000"))
[]
>>> [frame] = framer.feed(bytes.fromhex("000000004000" "00000001"))
>>> frame.offset, frame.message.type, frame.message.index
(0, 'request', 34)
>>> framer.buffered
4
>>> framer.feed(bytes.fromhex("01"))[0].message.type
'unchoke'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2pkit.bittorrent.wire.messages import (
    PROTOCOL,
    PSTR,
    Handshake,
    PeerMessage,
    PeerMessageLenient,
)
from p2pkit.errors import LimitExceeded, ParseError

__all__ = ["HANDSHAKE_LENGTH", "MAX_MESSAGE_LENGTH", "Frame", "MessageFramer", "frame_length"]

#: BEP 3 handshake: 1 + 19 + 8 + 20 + 20 bytes.
HANDSHAKE_LENGTH = 68
#: Default bound on a message's length prefix: 1 MiB + 13. It holds a ``piece`` of a 16 KiB
#: block (16397, what every client requests) with room for 1 MiB blocks, a ``bitfield`` of
#: 8,388,608 pieces (a 128 GiB torrent at the smallest 16 KiB pieces, 8 TiB at 1 MiB), a BEP 9
#: metadata piece (16 KiB plus its dictionary) and a BEP 52 ``hashes`` message of 512 hashes
#: with proofs. libtorrent drops peers above a similar bound; raise it per framer if needed.
MAX_MESSAGE_LENGTH = (1 << 20) + 13

_HANDSHAKE_HEAD = bytes([len(PSTR)]) + PSTR


def frame_length(buffer: bytes | bytearray, pos: int = 0,
                 max_length: int = MAX_MESSAGE_LENGTH) -> int | None:
    """Bytes of the message frame at ``pos`` (the 4-byte prefix included), or None while its
    prefix is incomplete. BEP 3: "a four-byte big-endian length prefix"; a prefix above
    ``max_length`` raises :class:`~p2pkit.errors.LimitExceeded` (offset relative to ``buffer``).
    The framer and the dissector (``p2pkit.bittorrent.dissect``) share it.

    >>> frame_length(bytes.fromhex("0000000d06"))
    17
    >>> frame_length(bytes(2)) is None
    True
    """
    if len(buffer) - pos < 4:
        return None
    length = int.from_bytes(buffer[pos:pos + 4], "big")
    if length > max_length:
        raise LimitExceeded(f"message length {length} is above the limit of {max_length}",
                            protocol=PROTOCOL, offset=pos)
    return 4 + length


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One complete frame: where it starts in the stream, its bytes, and the parsed message."""

    offset: int
    data: bytes
    #: A :data:`~p2pkit.bittorrent.wire.messages.Handshake` or :data:`~p2pkit.bittorrent.wire.messages.PeerMessage`
    #: Container.
    message: Any


class MessageFramer:
    """Split one direction of a peer connection into frames.

    ``handshake=True`` expects the 68-byte handshake first (the stream of either side of a
    connection starts with one). ``strict=False`` parses with
    :data:`~p2pkit.bittorrent.wire.messages.PeerMessageLenient` (unknown ids become ``unknown``). After an
    error the framer stays failed: the stream has no resynchronisation point.
    """

    def __init__(self, *, handshake: bool = True, max_length: int = MAX_MESSAGE_LENGTH,
                 strict: bool = True) -> None:
        self.max_length = max_length
        self._schema = PeerMessage if strict else PeerMessageLenient
        self._awaiting_handshake = handshake
        self._buffer = bytearray()
        self._offset = 0  # stream offset of self._buffer[0]
        self._failed: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order.

        A bad frame raises :class:`ParseError`; frames completed before it in the same call are
        returned first, and the error is raised by the next call.
        """
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        frames: list[Frame] = []
        try:
            self._frames(frames)
        except ParseError as e:
            self._failed = e
            if not frames:
                raise
        return frames

    def close(self) -> None:
        """The stream ended: raise :class:`ParseError` if it stopped inside a frame."""
        if self._failed is not None:
            raise self._failed
        if self._buffer:
            what = "the handshake" if self._awaiting_handshake else "a message"
            raise ParseError(f"stream ended inside {what} ({len(self._buffer)} bytes buffered)",
                             protocol=PROTOCOL, offset=self._offset)

    def _frames(self, frames: list[Frame]) -> None:
        buffer = self._buffer
        pos = 0
        try:
            pos = self._split(buffer, frames)
        finally:
            if pos:
                del buffer[:pos]
                self._offset += pos

    def _split(self, buffer: bytearray, frames: list[Frame]) -> int:
        """Append the complete frames at the start of ``buffer``; return the bytes they use."""
        pos = 0
        if self._awaiting_handshake:
            head = bytes(buffer[: len(_HANDSHAKE_HEAD)])
            if not _HANDSHAKE_HEAD.startswith(head):
                at = next(i for i, (a, b) in enumerate(zip(head, _HANDSHAKE_HEAD)) if a != b)
                raise ParseError(f"not a BitTorrent handshake: byte {head[at]:#04x} where "
                                 f"{_HANDSHAKE_HEAD[at]:#04x} belongs", protocol=PROTOCOL,
                                 path="handshake", offset=self._offset + at)
            if len(buffer) < HANDSHAKE_LENGTH:
                return 0
            raw = bytes(buffer[:HANDSHAKE_LENGTH])
            frames.append(Frame(offset=self._offset, data=raw, message=Handshake.parse(raw)))
            self._awaiting_handshake = False
            pos = HANDSHAKE_LENGTH
        parse = self._schema.parse
        while True:
            try:
                size = frame_length(buffer, pos, self.max_length)
            except LimitExceeded as e:
                raise e.relocated(base=self._offset) from None
            if size is None:
                break
            end = pos + size
            if len(buffer) < end:
                break
            raw = bytes(buffer[pos:end])
            try:
                message = parse(raw)
            except ParseError as e:
                raise e.relocated(base=self._offset + pos) from None
            frames.append(Frame(offset=self._offset + pos, data=raw, message=message))
            pos = end
        return pos
