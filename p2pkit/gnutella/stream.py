"""Framing one direction of a Gnutella connection: handshake blocks, then descriptors.

Specs: handshaking_0.6 §3 (the three-leg exchange: the connecting side sends its
``GNUTELLA CONNECT/0.6`` block and, after the answer, its final status block; the accepting side
sends one answer block), gnet-TLS-upgrade ("Upgrade: TLS/1.0" and "Connection: Upgrade": TLS
follows the handshake), compression §3 ("Content-Encoding: deflate" in a side's own block means
the bytes it sends after its handshake are one zlib stream), and the descriptor header (payload
length little-endian, see :mod:`p2pkit.gnutella.descriptors`).

:class:`StreamReader` takes the bytes of one direction in any split (from a socket or a
capture) and returns each complete frame: :class:`HandshakeFrame` or :class:`DescriptorFrame`.
A link that switched to TLS or to Gnutella2
(``Content-Type: application/x-gnutella2``, as Shareaza negotiates) goes to state ``"tls"`` or
``"gnutella2"``: its bytes are counted in ``opaque_bytes``, not decoded. A deflated link is
inflated transparently; descriptor offsets then count inflated bytes
(``compressed=True`` says so). The payload length is checked as soon as the 23-byte header is
in, before anything of the payload is buffered; inflation proceeds in bounded steps, so a peer
cannot make the reader hold more than one maximal descriptor.

>>> reader = StreamReader()
>>> [hs] = reader.feed(b"GNUTELLA/0.6 200 OK\\r\\nX-Ultrapeer: True\\r\\n\\r\\n")
>>> hs.handshake.status_code, reader.state
(200, 'descriptors')
>>> [d] = reader.feed(bytes(16) + bytes.fromhex("00 01 00 00000000"))
>>> d.offset, d.descriptor.type, d.descriptor.ttl
(42, 'ping', 1)
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.deflate import InflateGuard
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    Descriptor,
    DescriptorLenient,
)
from p2pkit.gnutella.handshake import (
    Handshake,
    HandshakeLenient,
    detect_greeting,
    handshake_end,
)

__all__ = [
    "DESCRIPTORS",
    "FAILED",
    "GNUTELLA2",
    "HANDSHAKE",
    "REJECTED",
    "TLS",
    "DescriptorFrame",
    "HandshakeFrame",
    "StreamReader",
]

PROTOCOL = "gnutella"
#: Inflate at most this many bytes per step (then frame them) to keep the buffer bounded.
_INFLATE_STEP = 64 * 1024
_LENGTH = struct.Struct("<I")
#: The field path of an :class:`InflateGuard` limit.
_INFLATED = "inflated"

# The states of a :class:`StreamReader` (one direction of a connection).
#: Handshake blocks (handshaking_0.6 §3).
HANDSHAKE = "handshake"
#: Descriptors, after the handshake (or from the start with ``handshake=False``).
DESCRIPTORS = "descriptors"
#: This side refused or was refused: nothing may follow.
REJECTED = "rejected"
#: The link switched to TLS (gnet-TLS-upgrade): bytes are counted, not decoded.
TLS = "tls"
#: The link switched to Gnutella2 (Shareaza): bytes are counted, not decoded.
GNUTELLA2 = "gnutella2"
#: A frame was bad: a stream has no resynchronisation point.
FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class HandshakeFrame:
    """One handshake block: its offset in the stream, its bytes and the parsed block."""

    offset: int
    data: bytes
    handshake: Any


@dataclass(frozen=True, kw_only=True)
class DescriptorFrame:
    """One descriptor: offset (in inflated bytes if ``compressed``), bytes, parsed value."""

    offset: int
    data: bytes
    descriptor: Any
    compressed: bool = False


class StreamReader:
    """Split one direction of a Gnutella connection into frames.

    ``handshake=False`` starts with descriptors (a stream whose handshake was not seen, or a
    test). ``strict=False`` parses payloads with
    :data:`~p2pkit.gnutella.descriptors.DescriptorLenient`. ``state`` is one of
    :data:`HANDSHAKE`, :data:`DESCRIPTORS`, :data:`REJECTED`, :data:`TLS`, :data:`GNUTELLA2`
    and :data:`FAILED`; after an error the reader stays failed: a stream has no
    resynchronisation point.
    """

    def __init__(self, *, handshake: bool = True, strict: bool = True,
                 max_payload_length: int = MAX_PAYLOAD_LENGTH,
                 inflate_guard: InflateGuard | None = None,
                 keep_upgraded: bool = False,
                 split: Callable[[bytes, int, int, list[Any]], int] | None = None) -> None:
        self.max_payload_length = max_payload_length
        #: Dissection: ``split(data, pos, offset, frames)`` sees the complete descriptors
        #: first (``data``: the buffered bytes, ``offset``: the stream offset of ``data[0]``);
        #: it appends what stands in for each (a record that parses the payload when read,
        #: :meth:`p2pkit.gnutella.descriptor_records.DescriptorRecords.split`) up to one it
        #: leaves to this reader, and returns where that one starts. None: every descriptor
        #: is parsed here.
        self.split = split
        #: A servent that speaks TLS keeps the bytes after a switch to TLS for
        #: :meth:`take_upgrade` (the dissector only counts them).
        self.keep_upgraded = keep_upgraded
        self._upgrade_deflated = False
        #: Limits on a deflated direction (a servent's; the dissector reads without them).
        self.inflate_guard = inflate_guard
        self._schema = Descriptor if strict else DescriptorLenient
        self._handshake_schema = Handshake if strict else HandshakeLenient
        self.state = HANDSHAKE if handshake else DESCRIPTORS
        #: The handshake blocks this side sent, in order.
        self.handshakes: list[Any] = []
        #: True once "Content-Encoding: deflate" was negotiated for this direction.
        self.compressed = False
        self._raw = bytearray()  # bytes not yet consumed (before inflation)
        self._raw_offset = 0
        self._buffer = bytearray()  # descriptor bytes (after inflation)
        self._offset = 0
        self._inflater: Any = None
        self._failed: ParseError | None = None
        #: Bytes after a switch to TLS or Gnutella2, which this reader does not decode.
        self.opaque_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._raw) + len(self._buffer)

    def feed(self, data: bytes) -> list[HandshakeFrame | DescriptorFrame]:
        """Add received bytes; return every frame they complete, in order.

        A bad frame raises :class:`ParseError`; frames completed before it in the same call are
        returned first, and the error is raised by the next call. A limit of the
        ``inflate_guard`` (a deflate bomb) is raised at once, and the frames of that call are
        dropped with it.
        """
        if self._failed is not None:
            raise self._failed
        frames: list[HandshakeFrame | DescriptorFrame] = []
        try:
            if (self.split is not None and self.state == DESCRIPTORS and self._inflater is None
                    and not self._raw and not self._buffer and type(data) is bytes):
                # nothing held: the descriptors read from ``data`` itself, not from copies
                # of it in the raw and descriptor buffers (what _run does otherwise)
                self._raw_offset += len(data)
                self._descriptors(frames, data)
            else:
                self._raw += data
                self._run(frames)
        except ParseError as e:
            self.state = FAILED
            self._failed = e
            if not frames or e.path == _INFLATED:  # a bomb's frames are not acted upon
                raise
        return frames

    def close(self) -> None:
        """The stream ended: raise :class:`ParseError` if it stopped inside a frame."""
        if self._failed is not None:
            raise self._failed
        leftover = len(self._buffer) + len(self._raw)
        if leftover:
            what = {HANDSHAKE: "a handshake block", REJECTED: "a refused connection"}.get(
                self.state, "a descriptor")
            raise ParseError(f"stream ended inside {what} ({leftover} bytes left)",
                             protocol=PROTOCOL, offset=self._offset if self._buffer
                             else self._raw_offset)

    def _run(self, frames: list[HandshakeFrame | DescriptorFrame]) -> None:
        while self.state == HANDSHAKE and self._raw:
            if not self._handshake(frames):
                return
        if self.state == TLS and self.keep_upgraded:
            return  # the TLS records wait for take_upgrade()
        if self.state in (TLS, GNUTELLA2):
            self.opaque_bytes += len(self._raw)
            self._offset_base_shift()
            return
        if self.state == REJECTED and self._raw:
            raise ParseError(f"{len(self._raw)} bytes after a refused handshake",
                             protocol=PROTOCOL, offset=self._raw_offset)
        if self.state != DESCRIPTORS:
            return
        if self._inflater is None:
            self._buffer += self._raw
            self._offset_base_shift()
            self._descriptors(frames)
            return
        while self._raw or self._inflater.unconsumed_tail:
            chunk = bytes(self._raw) if self._raw else b""
            self._raw_offset += len(self._raw)
            self._raw.clear()
            try:
                source = self._inflater.unconsumed_tail + chunk
                inflated = self._inflater.decompress(source, _INFLATE_STEP)
            except zlib.error as e:
                raise ParseError(f"deflated stream: {e}", protocol=PROTOCOL,
                                 offset=self._raw_offset) from None
            self._buffer += inflated
            if self.inflate_guard is not None:
                try:
                    self.inflate_guard.check(
                        consumed=len(source) - len(self._inflater.unconsumed_tail),
                        produced=len(inflated), buffered=len(self._buffer))
                except LimitExceeded as e:  # where the compressed stream got to
                    raise LimitExceeded(e.reason, protocol=PROTOCOL, path=e.path,
                                        offset=self._raw_offset) from None
            self._descriptors(frames)
            if not self._inflater.unconsumed_tail:
                break

    def take_upgrade(self) -> bytes:
        """After a switch to TLS (``keep_upgraded``): return the bytes received after the
        switching block (the first TLS records) and read descriptors from now on: the
        decrypted bytes, inflated if that block also said ``Content-Encoding: deflate``
        (offsets then count decrypted bytes)."""
        if self.state != TLS or not self.keep_upgraded:
            raise ParseError("no switch to TLS to take", protocol=PROTOCOL)
        data = bytes(self._raw)
        self._raw.clear()
        self.state = DESCRIPTORS
        self._raw_offset = self._offset = 0
        if self._upgrade_deflated:
            self.compressed = True
            self._inflater = zlib.decompressobj()
        return data

    def _offset_base_shift(self) -> None:
        self._raw_offset += len(self._raw)
        self._raw.clear()

    def _handshake(self, frames: list[HandshakeFrame | DescriptorFrame]) -> bool:
        if not self.handshakes and detect_greeting(bytes(self._raw[:20])) is None:
            if len(self._raw) >= 20 or not b"GNUTELLA".startswith(bytes(self._raw[:8])):
                raise ParseError("not a Gnutella handshake", protocol=PROTOCOL,
                                 offset=self._raw_offset)
            return False
        end = handshake_end(self._raw)
        if end is None:
            return False
        data = bytes(self._raw[:end])
        try:
            block = self._handshake_schema.parse(data)
        except ParseError as e:
            raise e.relocated(base=self._raw_offset) from None
        frames.append(HandshakeFrame(offset=self._raw_offset, data=data, handshake=block))
        del self._raw[:end]
        self._raw_offset += end
        self.handshakes.append(block)
        first = self.handshakes[0]
        if block.kind in ("connect_0_4", "ok_0_4"):
            self.state = DESCRIPTORS
            self._offset = self._raw_offset
        elif block.kind == "response":
            if block.status_code != 200:
                self.state = REJECTED
            elif first.kind == "response" or len(self.handshakes) >= 2:
                self.state = DESCRIPTORS
                self._offset = self._raw_offset
                if "upgrade" in [t.lower() for t in block.headers.tokens("Connection")]:
                    self.state = TLS
                    self._upgrade_deflated = "deflate" in block.headers.tokens(
                        "Content-Encoding")
                    return True
                if any("gnutella2" in t for t in block.headers.tokens("Content-Type")):
                    self.state = GNUTELLA2
                    return True
                if "deflate" in block.headers.tokens("Content-Encoding"):
                    self.compressed = True
                    self._inflater = zlib.decompressobj()
                    self._offset = 0
        return True

    def _descriptors(self, frames: list[HandshakeFrame | DescriptorFrame],
                     data: bytes | None = None) -> None:
        """The descriptors of the buffer, or of ``data`` when given (the buffer is empty: what
        is left of ``data`` is kept in it)."""
        buffer: bytes | bytearray = self._buffer if data is None else data
        split = self.split
        if split is not None:
            if len(buffer) < HEADER_LENGTH:
                if data is not None:
                    self._buffer += data
                return
            (length,) = _LENGTH.unpack_from(buffer, 19)
            if len(buffer) < HEADER_LENGTH + length <= HEADER_LENGTH + self.max_payload_length:
                if data is not None:
                    self._buffer += data
                return  # the first descriptor is not complete yet (nor above the bound)
            if data is None:
                buffer = bytes(buffer)  # one copy a call, the descriptors sliced from it
        pos = 0
        try:
            while len(buffer) - pos >= HEADER_LENGTH:
                if split is not None:
                    pos = split(buffer, pos, self._offset, frames)
                    if len(buffer) - pos < HEADER_LENGTH:
                        break
                (length,) = _LENGTH.unpack_from(buffer, pos + 19)
                if length > self.max_payload_length:
                    raise LimitExceeded(
                        f"payload length {length} above the bound ({self.max_payload_length})",
                        protocol=PROTOCOL, path="payload_length", offset=self._offset + pos + 19)
                end = pos + HEADER_LENGTH + length
                if len(buffer) < end:
                    break
                one = bytes(buffer[pos:end])
                try:
                    descriptor = self._schema.parse(one)
                except ParseError as e:
                    raise e.relocated(base=self._offset + pos) from None
                frames.append(DescriptorFrame(offset=self._offset + pos, data=one,
                                              descriptor=descriptor, compressed=self.compressed))
                pos = end
        finally:
            if data is not None:
                if pos < len(data):
                    self._buffer += data[pos:] if pos else data
            elif pos:
                del self._buffer[:pos]
            self._offset += pos
