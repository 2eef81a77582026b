"""Peer wire and uTP dissection (BEP 3, 6, 10, 29, 52 in captured traffic).

Reached through the ``bittorrent`` and ``bt-utp`` descriptors (``p2pkit.bittorrent.protocol``);
the dissector in :mod:`p2pkit.capture` never imports it by name.

Unlike the peer's own framer, a capture may begin mid-connection, lose segments, or wrap the
handshake in an MSE/PE key exchange (aria2's outgoing connections do, then select plaintext).
``PeerWireStream`` therefore:

* expects the handshake at stream offset 0, or finds it within the first
  ``HANDSHAKE_SEARCH_WINDOW`` bytes (after an MSE preamble, reported as ``mse_preamble``);
* after a gap, or on bytes that cannot be a message, resynchronises: the next position where
  ``RESYNC_CHAIN`` consecutive plausible messages start (or the rest of the buffer is a
  chain of plausible messages) is taken as a boundary, and the bytes skipped are counted;
* reports every byte it skips as an ``undecoded`` record (``UndecodedRun``): ``after a
  gap``, ``malformed`` at the offset where a message failed, ``truncated`` at the end, and
  ``encrypted`` for a direction that opens with an MSE/PE key exchange (96 random-looking bytes,
  ``looks_encrypted``) and never shows the plaintext handshake (RC4 throughout);
* with a key log (``secrets``, :mod:`p2pkit.bittorrent.mse.keylog`), a direction of a logged
  MSE connection is decrypted first (``MseDecryptedStream``): an ``mse_preamble`` record
  for the key exchange, then the same records and tree as a plaintext connection, at offsets
  of the decrypted payload stream;
* frames with ``frame_length`` and the framer's own
  ``MAX_MESSAGE_LENGTH`` (a longer prefix is taken for
  garbage), and decodes every message with
  :data:`~p2pkit.bittorrent.wire.messages.PeerMessageLenient`; an id the spec does not define,
  an extension item of the wrong form, non-canonical bencoding are the
  :class:`~p2pkit.deviations.Deviation` records the lenient schemas report, read with
  :func:`~p2pkit.deviations.deviations_of`.

uTP data packets are put back in ``seq_nr`` order per direction (``UtpDirection``) and their
payloads fed to a ``PeerWireStream`` (transport ``utp``). A lost packet is a gap of unknown
length: the peer-wire dissector resynchronises after it. The side that answered the SYN starts
at the ``seq_nr`` of its ST_STATE answer; a SYN with a new ``seq_nr`` on the same addresses and
ids, or an ST_RESET, ends a connection's lifetime.

It stays one module: uTP reassembly feeds the same per-direction peer-wire decoder as TCP, and
both share the extension-name state the two directions of one connection build together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from p2pkit.bittorrent.utp.sequence import ReorderBuffer, seq_after
from p2pkit.bittorrent.wire.extensions import decode_extended, message_names
from p2pkit.bittorrent.wire.framer import HANDSHAKE_LENGTH, MAX_MESSAGE_LENGTH, frame_length
from p2pkit.bittorrent.wire.messages import (
    MESSAGE_IDS,
    MESSAGES,
    PSTR,
    Handshake,
    HandshakeBody,
    PeerMessageLenient,
)
from p2pkit.bittorrent.wire.utp import HEADER_SIZE, UtpPacket, split_segmented
from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import (
    BinarySize,
    Record,
    UndecodedRun,
    json_fields,
    json_value,
    undecoded,
)
from p2pkit.capture.spans import struct_spans
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import Deviation, deviations_of
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.registry import get, load
from p2pkit.schema import FixedLayout

if TYPE_CHECKING:  # MSE (and its RC4) is imported when a key log names a connection
    from p2pkit.bittorrent.mse.keylog import KeyLog
    from p2pkit.bittorrent.mse.observer import MseObserver

__all__ = ["HANDSHAKE_SEARCH_WINDOW", "MAX_UTP_REORDER", "MSE_KEY_LENGTH", "MseDecryptedStream",
           "PeerWireStream",
           "UtpDecoder", "UtpDirection", "detect_peer_wire", "looks_encrypted",
           "looks_like_peer_messages", "peer_wire_stream"]

PROTOCOL = "bittorrent"
HANDSHAKE = bytes([len(PSTR)]) + PSTR
#: How far into a stream the handshake is looked for (MSE: 96-byte key + up to 512 bytes of
#: padding, then the crypto negotiation, BEP 8 / the MSE specification).
HANDSHAKE_SEARCH_WINDOW = 2048
#: Consecutive plausible messages needed to accept a resynchronisation point.
RESYNC_CHAIN = 3
#: uTP packets held per direction while waiting for a missing ``seq_nr``.
MAX_UTP_REORDER = 1024
#: uTP-looking packets held per direction while waiting for evidence that it is uTP.
MAX_UTP_HELD = 64
#: Frames a uTP-looking packet is held for evidence before it is reported as undecoded.
MAX_UTP_HOLD_FRAMES = 256
#: uTP connections remembered per dissection (the oldest held one is forgotten first).
MAX_UTP_STATE = 4096
#: BEP 9: metadata is sent in 16 KiB pieces; a larger info dictionary is not assembled.
METADATA_PIECE = 16 * 1024
MAX_METADATA_SIZE = 16 << 20
#: Binary fields shown as length + SHA-1 whatever their size (piece data, bitfields).
SUMMARISED = frozenset({"piece", "bitfield"})


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
            bounds[mid] = (1 + fixed, MAX_MESSAGE_LENGTH)
    return bounds


PLAUSIBLE = _plausible_lengths()

# Where a plausible message may start, found by the regular-expression engine rather than a
# Python loop over every byte: a length prefix below MAX_MESSAGE_LENGTH (so its first byte is
# 0 and its second at most MAX_MESSAGE_LENGTH >> 16), not a keep-alive (a chain never starts
# with one), then an id some message has.
if MAX_MESSAGE_LENGTH >= 1 << 24:  # pragma: no cover - the pattern below relies on it
    raise ImportError("MAX_MESSAGE_LENGTH must stay below 16 MiB for _CANDIDATE")
_CANDIDATE = re.compile(
    b"(?=\\x00(?!\\x00\\x00\\x00)[\\x00-" + re.escape(bytes([MAX_MESSAGE_LENGTH >> 16]))
    + b"][\\x00-\\xff]{2}[" + b"".join(re.escape(bytes([i])) for i in sorted(PLAUSIBLE))
    + b"])")

#: MSE/PE (the Message Stream Encryption specification): each side opens with its 96-byte
#: Diffie-Hellman public key (Ya, Yb), then random padding and RC4-encrypted bytes.
MSE_KEY_LENGTH = 96


#: A TLS record header (RFC 8446 §5.1: content type 20-23, legacy version 3.x): random-looking
#: too, but not MSE.
_TLS_RECORD = re.compile(b"[\\x14-\\x17]\\x03[\\x00-\\x04]")


def looks_encrypted(data: bytes | bytearray) -> bool:
    """Whether ``data`` (the start of a direction) looks like an MSE/PE key exchange: at least
    :data:`MSE_KEY_LENGTH` bytes, with about as many distinct byte values as random bytes have
    (a 96-byte public key has about 80; text and peer-wire messages far fewer).

    >>> import random
    >>> looks_encrypted(random.Random(1).randbytes(96)), looks_encrypted(bytes(200))
    (True, False)
    >>> looks_encrypted(b"GET /announce?info_hash=abcdefghij HTTP/1.1\\r\\n" * 4)
    False
    >>> looks_encrypted(bytes.fromhex("160301") + random.Random(1).randbytes(300))  # TLS
    False
    """
    sample = bytes(data[:1024])
    n = len(sample)
    if n < MSE_KEY_LENGTH or _TLS_RECORD.match(sample):
        return False
    expected = 256 * (1 - (255 / 256) ** n)
    return len(set(sample)) >= 0.8 * expected


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


def detect_peer_wire(head: bytes, *, other: str | None = None, complete: bool = False,
                     from_start: bool = True) -> bool | None:
    """Whether a TCP direction starting with ``head`` is the peer wire (None: need more).

    The handshake (BEP 3), possibly after an MSE/PE preamble (aria2's outgoing connections),
    the opposite direction being BitTorrent, or a run of plausible messages (a capture that
    starts mid-connection). It is the catch-all heuristic, so it runs after the detectors of
    protocols with a marker.

    >>> detect_peer_wire(b"\\x13BitTorrent protocol" + bytes(48))
    True
    >>> detect_peer_wire(b"\\x13BitTorrent")
    >>> detect_peer_wire(b"SSH-2.0-OpenSSH", complete=True)
    False
    """
    if head.startswith(HANDSHAKE):
        return True
    if head.startswith(HANDSHAKE[: len(head)]) and not complete:
        return None  # a handshake still arriving
    if other == PROTOCOL or (not from_start and looks_like_peer_messages(head)):
        return True
    window = HANDSHAKE_SEARCH_WINDOW + len(HANDSHAKE)
    if HANDSHAKE in head[:window]:
        return True  # after an MSE/PE preamble that selected plaintext
    if len(head) < window and not complete:
        return None
    if from_start and looks_encrypted(head):
        return True  # MSE/PE from the first byte (RC4 throughout): labelled, not decoded
    # a run of plausible messages; one that the head cuts off counts unless nothing follows
    found = _chain_at(head, 0, RESYNC_CHAIN, at_end=complete)
    return found is True or (found is None and not complete)


def peer_wire_stream(*, src: str, dst: str, transport: str = "tcp",
                     peer: PeerWireStream | None = None,
                     secrets: KeyLog | None = None) -> PeerWireStream:
    """The ``bittorrent`` descriptor's stream decoder factory: one direction, linked to the
    opposite one (an ``extended`` id is named by the other side's handshake, BEP 10).

    Even a capture that starts mid-connection may start right at a handshake (no SYN seen),
    so every decoder looks for one first. ``secrets``: an MSE key log; a direction of a
    connection it lists is decrypted (``MseDecryptedStream``).
    """
    found = secrets.find(src, dst) if secrets is not None else None
    if found is not None:
        from p2pkit.bittorrent.mse.observer import MseObserver

        stream: PeerWireStream = MseDecryptedStream(MseObserver(*found), transport=transport,
                                                    src=src, dst=dst)
    else:
        stream = PeerWireStream(transport=transport, src=src, dst=dst)
    if peer is not None:
        stream.peer, peer.peer = peer, stream
    return stream


_SPANS: dict[tuple[str, int], dict[str, tuple[int, int]]] = {}


def _spans(message: str, length: int) -> dict[str, tuple[int, int]]:
    """Field spans of a handshake or a message (after its 4-byte prefix and id byte), from
    the schemas; remembered per (message, length), since most messages repeat both."""
    key = (message, length)
    spans = _SPANS.get(key)
    if spans is None:
        if len(_SPANS) > 4096:
            _SPANS.clear()
        if message == "handshake":
            spans = struct_spans(HandshakeBody, 0, length)
        else:
            spans = struct_spans(MESSAGES[MESSAGE_IDS[message]][1], 5, length)
        _SPANS[key] = spans
    return dict(spans)


class PeerWireStream:
    """Dissect one direction of a BitTorrent peer connection from reassembled bytes.

    ``extended`` messages are decoded by name (BEP 10): ``peer`` is the opposite direction,
    whose extension handshake says which ids name which extensions in this direction.
    """

    #: Bytes not decoded come out as ``undecoded`` records from the stream itself.
    reports_undecoded = True

    def __init__(self, *, transport: str, src: str, dst: str,
                 expect_handshake: bool = True) -> None:
        self.transport = transport
        self.src = src
        self.dst = dst
        self.buffer = StreamBuffer()
        self.state = "handshake" if expect_handshake else "messages"
        self.synced = expect_handshake
        self.skipped = 0
        #: Set by the dissector when the capture missed the direction's first bytes.
        self.mid_stream = False
        #: Skipped bytes, gathered into ``undecoded`` records; why the stream is out of sync.
        self.undecoded = UndecodedRun(protocol=PROTOCOL, transport=transport, src=src, dst=dst)
        self._reason = "after a gap"
        self._at: int | None = None
        #: From this direction's extension handshake: the ids its sender receives, by name.
        self.received_names: dict[int, str] = {}
        self.peer: PeerWireStream | None = None
        self._at_end = False
        #: Size of the message at the front of the buffer, once its length prefix was read.
        self._size: int | None = None
        #: ut_metadata pieces received so far, and the total size they announce (BEP 9).
        self._metadata: dict[int, bytes] = {}
        self._metadata_size = 0

    # -- input ------------------------------------------------------------------------------

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterable[Record]:
        buf = self.buffer
        buf.append(offset, data, frame, time)
        size = self._size
        if (size is not None and len(buf.data) < size and self.synced
                and not self.undecoded._closed):
            return ()  # the rest of the message at the front has not arrived: nothing to do
        return self._decoded()

    def _decoded(self) -> Iterator[Record]:
        yield from self._decode()
        yield from self.undecoded.records()

    def _drop(self, n: int, reason: str, at: int | None = None) -> None:
        """Skip ``n`` bytes at the front of the buffer, counted in an ``undecoded`` run."""
        if n <= 0:
            return
        buf = self.buffer
        first, last, count = buf.frames_of(n)
        _, time = buf.frame_of(n - 1)
        extra = {"encryption": "MSE/PE"} if reason == "encrypted" else {}
        self.undecoded.add(buf.start, n, first, time, reason=reason, at=at, last_frame=last,
                           frames=count, **extra)
        self.skipped += n
        buf.skip(n)

    def gap(self, offset: int, length: int) -> None:
        """Bytes were lost: drop the partial message and resynchronise after the gap."""
        self._drop(len(self.buffer), "truncated" if self.synced else self._reason, self._at)
        self.buffer.reset(offset + length)
        self._size = None
        if self.state == "handshake":
            self.state = "messages"
        self.synced = False
        if self._reason != "encrypted":
            self._reason, self._at = "after a gap", None

    def end(self) -> Iterator[Record]:
        """The direction ended: decode what the handshake search was still holding back."""
        if self.state == "handshake":
            self._no_handshake()
        self._at_end = True
        yield from self._decode()
        self._drop(len(self.buffer), "truncated" if self.synced else self._reason, self._at)
        yield from self.undecoded.close()

    def _no_handshake(self) -> None:
        """No handshake where one was expected: look for messages. Bytes that open with a
        key exchange (MSE/PE) are skipped as ``encrypted`` until plaintext messages are found
        (an MSE handshake that selected plaintext), if ever (RC4 throughout)."""
        buf = self.buffer
        self.state = "messages"
        self.synced = False
        if buf.start == 0 and not self.mid_stream and looks_encrypted(buf.data):
            self._reason, self._at = "encrypted", None
        elif self.mid_stream or buf.start:
            self._reason, self._at = "after a gap", None
        else:
            self._reason, self._at = "malformed", buf.start

    # -- decoding ---------------------------------------------------------------------------

    def _record(self, message: str, value: Any, start: int, length: int) -> Record:
        """A record for the message at the front of the buffer (call before skipping it)."""
        frame, time = self.buffer.frame_of(length - 1)
        if message == "piece" and type(value.get("piece")) is bytes:
            return self._piece_record(value, start, length, frame, time)
        fields = json_fields(value, summarised=SUMMARISED)
        record = Record(frame=frame, time=time, transport=self.transport, src=self.src,
                        dst=self.dst, protocol=PROTOCOL, message=message, fields=fields,
                        offset=start, length=length, value=value)
        if message == "handshake" or message in MESSAGE_IDS:
            record.spans = _spans(message, length)
        # what PeerMessageLenient reported (an id no BEP defines, kept as ``unknown``)
        record.deviations = deviations_of(value, base=start)
        if message == "extended":
            self._extended(record, value)
        return record

    def _piece_record(self, value: Any, start: int, length: int, frame: int,
                      time: float) -> Record:
        """BEP 3 ``piece``: the block is summarised by its length and SHA-1 (``SUMMARISED``);
        the SHA-1, which only the tree and JSON show, is worked out when they read the fields
        (a :class:`LazyRecord`); the summary line reads the index, begin and block length."""

        def decode() -> tuple[dict[str, Any], Any, list[Deviation]]:
            return (json_fields(value, summarised=SUMMARISED), value,
                    deviations_of(value, base=start))

        summary = {k: v for k, v in value.items() if type(v) is int and k[:1] != "_"}
        summary["piece"] = BinarySize(len(value["piece"]))
        return LazyRecord(frame=frame, time=time, transport=self.transport, src=self.src,
                          dst=self.dst, protocol=PROTOCOL, message="piece", offset=start,
                          length=length, spans=_spans("piece", length), decode=decode,
                          summary=summary,
                          payload_keys=frozenset(value) - set(summary) - {"type"})

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
        base = (record.offset or 0) + 6  # length prefix, id, extended id
        try:
            decoded = decode_extended(name, value.payload, strict=False)
        except ParseError as e:
            record.deviations.append(Deviation(
                offset=base + (e.offset or 0), rule=f"bittorrent/extended/{name}",
                message=e.reason, spec="BEP 10"))
            return
        if name == "handshake":
            self.received_names = message_names(decoded)
        # what the lenient schema reported: non-canonical bencoding, items of the wrong form
        record.deviations += deviations_of(decoded, base=base)
        record.fields["message"] = json_value(decoded, "", SUMMARISED)
        del record.fields["payload"]
        if name == "ut_metadata" and str(decoded.get("msg_type")) == "data":
            assembled = self._metadata_piece(decoded)
            if assembled is not None:
                record.fields["message"]["assembled"] = assembled

    def _metadata_piece(self, decoded: Any) -> dict[str, Any] | None:
        """BEP 9: gather this direction's ``data`` pieces; once the info dictionary is whole,
        its length and hashes: SHA-1 (the v1 info-hash) and SHA-256 (the v2 info-hash, BEP 52
        §infohash, which a v2 magnet's ``urn:btmh:1220…`` names)."""
        total, piece, data = decoded.get("total_size"), decoded.get("piece"), decoded.get(
            "metadata")
        if not (isinstance(total, int) and isinstance(piece, int)
                and isinstance(data, (bytes, bytearray)) and 0 < total <= MAX_METADATA_SIZE):
            return None
        if self._metadata_size != total:
            self._metadata_size, self._metadata = total, {}
        self._metadata[piece] = bytes(data)
        count = -(-total // METADATA_PIECE)
        if len(self._metadata) < count or any(p not in self._metadata for p in range(count)):
            return None
        info = b"".join(self._metadata[p] for p in range(count))
        self._metadata = {}
        if len(info) != total:
            return None
        return {"length": total, "info_hash_v1": hashlib.sha1(info).hexdigest(),
                "info_hash_v2": hashlib.sha256(info).hexdigest()}

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
                self._no_handshake()
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
                synced = self._resync(first)
                yield from self.undecoded.records()
                if not synced:
                    return
                first = 0
            size = self._size  # the message at the front, once its prefix was read
            if size is None:
                try:
                    size = frame_length(data)
                except LimitExceeded:
                    self.synced, first = False, 1
                    self._reason, self._at = "malformed", buf.start
                    continue
                if size is None:
                    return
                self._size = size
            if len(data) < size:
                return
            self._size = None
            start = buf.start
            raw = bytes(data[:size])
            try:
                value = PeerMessageLenient.parse(raw)
            except ParseError:
                self.synced, first = False, 1
                self._reason, self._at = "malformed", buf.start
                continue
            record = self._record(value.type, value, start, size)
            buf.skip(size)
            yield record

    def _resync(self, first: int = 0) -> bool:
        """Find the next plausible message boundary at or after ``first``; drop what precedes.

        Returns True when synchronised; False when more data is needed to decide (the bytes
        that cannot start a message are dropped meanwhile).
        """
        self._size = None
        data = self.buffer.data
        at_end = self._at_end
        at: int | None = None
        found: bool | None = False
        for match in _CANDIDATE.finditer(data, first):  # (holds data: skip after the loop)
            found = _chain_at(data, match.start(), RESYNC_CHAIN, at_end)
            if found is True or (found is None and not at_end):
                at = match.start()
                break
        if at is None:
            self._drop(max(first, len(data) - 4), self._reason, self._at)
            return False
        self._drop(at, self._reason, self._at)
        self.synced = found is True
        if self.synced:
            self.undecoded.close_run()
        return self.synced


class MseDecryptedStream(PeerWireStream):
    """A direction of an MSE connection whose keys are known (MSE (Vuze wiki)): the
    :class:`~p2pkit.bittorrent.mse.observer.MseObserver` turns wire bytes into the payload
    stream, which is dissected as a plaintext peer wire. The key exchange comes out as one
    ``mse_preamble`` record (its wire bytes, method, padding lengths); record offsets are those
    of the decrypted payload. Keys that do not decrypt the handshake leave the direction
    ``undecoded`` (``encrypted``), as without a key log."""

    def __init__(self, observer: MseObserver, *, transport: str, src: str, dst: str) -> None:
        super().__init__(transport=transport, src=src, dst=dst)
        self.observer = observer
        self._payload_offset = 0
        self._failed: str | None = None
        self._first_frame: int | None = None
        self._frames = 0

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterator[Record]:
        observer = self.observer
        if self._failed is not None:
            self._drop_encrypted(len(data), frame, time)
            return
        was = observer.established
        if self._first_frame is None:
            self._first_frame = frame
        if not was:
            self._frames += 1
        try:
            payload = observer.feed(data)
        except ParseError as e:
            self._failed = e.reason
            self._drop_encrypted(offset + len(data), frame, time)
            return
        if observer.established and not was:
            yield self._preamble(frame, time)
        if payload:
            start = self._payload_offset
            self._payload_offset += len(payload)
            yield from super().data(start, payload, frame, time)

    def _preamble(self, frame: int, time: float) -> Record:
        observer = self.observer
        pads = observer.pads
        fields = {"length": observer.preamble, "encryption": observer.method,
                  "decrypted": True, "side": observer.side,
                  "pad": pads[0] if pads else 0,
                  ("pad_c" if observer.side == "initiator" else "pad_d"):
                      pads[1] if len(pads) > 1 else 0}
        if observer.side == "initiator":
            fields["initial_payload"] = observer.initial_payload
        return Record(frame=frame, time=time, transport=self.transport, src=self.src,
                      dst=self.dst, protocol=PROTOCOL, message="mse_preamble", fields=fields,
                      offset=0, length=observer.preamble or 0)

    def _drop_encrypted(self, n: int, frame: int, time: float) -> None:
        first = self._first_frame if self._first_frame is not None else frame
        self.undecoded.add(0, n, first, time, reason="encrypted", at=None, last_frame=frame,
                           frames=max(self._frames, 1), encryption="MSE/PE",
                           detail=f"key log: {self._failed}")
        self.skipped += n

    def gap(self, offset: int, length: int) -> None:
        if self._failed is None and self.observer.established:
            self.observer.skip(length)
            super().gap(self._payload_offset, length)
            self._payload_offset += length
        else:
            self._failed = self._failed or "bytes lost before the key exchange was over"

    def end(self) -> Iterator[Record]:
        if self._failed is None and not self.observer.established:
            self._failed = "the key exchange did not complete"
        yield from super().end()


# -- uTP (BEP 29) ---------------------------------------------------------------------------


def _circular_first(numbers: list[int]) -> int:
    """The earliest of 16-bit sequence numbers that lie within half the space of each other."""
    return min(numbers, key=lambda n: sum(seq_after(m, n) for m in numbers if m != n))


class UtpDirection:
    """Reorders one direction's uTP data packets and feeds a peer-wire stream.

    The reordering is the socket core's (:class:`~p2pkit.bittorrent.utp.sequence.ReorderBuffer`),
    with no window (a capture holds whatever was sent) but at most :data:`MAX_UTP_REORDER`
    packets, after which the missing one is given up as a gap.

    The first ``seq_nr`` comes from the SYN (its ``seq_nr`` + 1, BEP 29 §connection setup) or,
    when the capture missed it, from the earliest of the first :data:`START_WINDOW` data and
    ST_STATE packets seen (a state packet carries the next ``seq_nr`` to be sent).
    """

    #: Packets held before deciding where a direction without a SYN starts.
    START_WINDOW = 32

    def __init__(self, stream: PeerWireStream) -> None:
        self.stream = stream
        self.offset = 0
        self.buffer: ReorderBuffer[tuple[bytes, int, float]] = ReorderBuffer(limit=0x8000)
        self._state_seqs: list[int] = []
        #: The ``seq_nr`` of this direction's SYN, when it sent one (it opened the connection).
        self.syn_seq: int | None = None

    @property
    def next_seq(self) -> int | None:
        return self.buffer.next_seq

    @property
    def pending(self) -> dict[int, tuple[bytes, int, float]]:
        return self.buffer.pending

    def syn(self, seq_nr: int) -> Iterator[Record]:
        if self.next_seq is None:
            self.syn_seq = seq_nr
            self.buffer.next_seq = (seq_nr + 1) & 0xFFFF
            yield from self._drain()

    def accepted(self, seq_nr: int) -> Iterator[Record]:
        """The ST_STATE that answers the other side's SYN: BEP 29 §connection setup, the
        acceptor's sequence starts at its ``seq_nr`` (its first ST_DATA carries the same), so
        this direction comes out as soon as it is in order, not after
        :data:`START_WINDOW` packets."""
        if self.next_seq is None:
            self.buffer.next_seq = seq_nr
            yield from self._drain()

    def state(self, seq_nr: int) -> None:
        if self.next_seq is None and len(self._state_seqs) < self.START_WINDOW:
            self._state_seqs.append(seq_nr)

    def data(self, seq_nr: int, payload: bytes, frame: int, time: float) -> Iterator[Record]:
        if self.buffer.is_behind(seq_nr):
            return  # a retransmission of a packet already delivered
        if payload:
            self.buffer.add(seq_nr, (payload, frame, time))
        if self.next_seq is None:
            if len(self.pending) < self.START_WINDOW:
                return
            self._choose_start()
        yield from self._drain()
        if len(self.pending) > MAX_UTP_REORDER:
            yield from self._skip()

    def _choose_start(self) -> None:
        self.buffer.next_seq = _circular_first(list(self.pending) + self._state_seqs)
        self.stream.mid_stream = True  # no SYN seen: the capture may have missed the start

    def _drain(self) -> Iterator[Record]:
        for _, (payload, frame, time) in self.buffer.drain():
            yield from self.stream.data(self.offset, payload, frame, time)
            self.offset += len(payload)

    def _skip(self) -> Iterator[Record]:
        """Give up on the missing packet: jump to the nearest held one (a gap)."""
        assert self.next_seq is not None
        self.stream.gap(self.offset, 0)
        self.buffer.skip_to_nearest()
        yield from self._drain()

    def finish(self) -> Iterator[Record]:
        if self.next_seq is None and self.pending:
            self._choose_start()
            yield from self._drain()
        while self.pending:
            yield from self._skip()
        yield from self.stream.end()


class UtpDecoder:
    """The ``bt-utp`` descriptor's datagram decoder: uTP headers, and the peer wire inside.

    Each direction's payloads go to the stream decoder the registry holds for ``bittorrent``
    (transport ``utp``), so uTP carries whatever that descriptor decodes.
    """

    def __init__(self) -> None:
        self._utp: dict[tuple[str, str, int], UtpDirection] = {}
        self._utp_held: dict[tuple[str, str, int], list[tuple[Packet, Any]]] = {}
        self._stream = get(PROTOCOL).stream_decoder
        #: Per protocol name, what decrypts streams (set by the dissector): the
        #: ``bittorrent`` entry (an MSE key log) reaches the peer-wire streams uTP carries.
        self.secrets: dict[str, Any] = {}

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        """The records of one uTP packet (header, then any peer-wire messages it completes).

        A payload captured before UDP segmentation offload cut it into datagrams (Linux GSO,
        on the sending host or loopback) is the datagrams' packets, each decoded as the one
        datagram it was on the wire (:func:`~p2pkit.bittorrent.wire.utp.split_segmented`)."""
        try:
            value = UtpPacket.parse(pkt.payload)
        except ParseError:
            return None
        if len(pkt.payload) >= 2 * HEADER_SIZE:
            segments = split_segmented(pkt.payload)
            if len(segments) > 1:
                return self._segmented(pkt, segments)
        return list(self._utp_packet(pkt, value))

    def _segmented(self, pkt: Packet, segments: list[bytes]) -> list[Record] | None:
        records: list[Record] = []
        for segment in segments:
            try:
                value = UtpPacket.parse(segment)
            except ParseError:
                return None if not records else records
            records += self._utp_packet(replace(pkt, payload=segment), value)
        return records

    def finish(self) -> Iterator[Record]:
        for direction in self._utp.values():
            yield from direction.finish()
        yield from self.expire(None)

    def expire(self, frame: int | None) -> list[Record]:
        """Packets that looked like uTP but had no SYN nor answer within
        :data:`MAX_UTP_HOLD_FRAMES` frames of ``frame`` (None: all of them): said, not
        dropped (``undecoded``, unknown protocol). Called for every datagram: cheap when
        nothing waits."""
        held = self._utp_held
        if not held:
            return []
        out = []
        while held:
            key = next(iter(held))
            packets = held[key]
            if frame is not None and packets and packets[0][0].frame > frame - MAX_UTP_HOLD_FRAMES:
                break
            del held[key]
            out += [undecoded(protocol="data", transport="udp", src=pkt.src, dst=pkt.dst,
                              reason="unknown protocol", length=len(pkt.payload),
                              frames=(pkt.frame, pkt.frame, 1), time=pkt.time)
                    for pkt, _ in packets]
        return out

    # -- BEP 29 -----------------------------------------------------------------------------

    def _utp_packet(self, pkt: Packet, value: Any) -> Iterator[Record]:
        """A datagram that parses as uTP is taken for uTP only with evidence (BEP 29 has no
        magic number, and other protocols' first bytes can look like a uTP header): a SYN, a
        connection already known, or a packet of the opposite direction of the same
        connection (ids differ by one). Until then it is held, up to :data:`MAX_UTP_HELD`."""
        kind = str(value.type)
        # BEP 29 §connection setup: the initiator's SYN carries the id it receives on; it sends
        # everything else with id + 1, and the other side sends with the SYN's id.
        cid = (value.connection_id + 1 if kind == "st_syn" else value.connection_id) & 0xFFFF
        key = (pkt.src, pkt.dst, cid)
        if key not in self._utp and kind != "st_syn":
            reverse = [k for k in ((pkt.dst, pkt.src, (cid + 1) & 0xFFFF),
                                   (pkt.dst, pkt.src, (cid - 1) & 0xFFFF))
                       if k in self._utp or k in self._utp_held]
            if not reverse:
                held = self._utp_held.setdefault(key, [])
                if len(held) < MAX_UTP_HELD:
                    held.append((pkt, value))
                if len(self._utp_held) > MAX_UTP_STATE:
                    yield from self.expire(pkt.frame + MAX_UTP_HOLD_FRAMES)  # the oldest
                return
            for k in reverse:  # both directions are now evidence for each other
                for held_pkt, held_value in self._utp_held.pop(k, []):
                    yield from self._utp_accept(held_pkt, held_value, k)
            for held_pkt, held_value in self._utp_held.pop(key, []):
                yield from self._utp_accept(held_pkt, held_value, key)
        yield from self._utp_accept(pkt, value, key)

    def _close(self, key: tuple[str, str, int]) -> Iterator[Record]:
        """End a connection's lifetime (both directions): a reset, or a SYN that reuses its
        addresses and ids after it ended."""
        src, dst, cid = key
        for k in (key, (dst, src, (cid - 1) & 0xFFFF), (dst, src, (cid + 1) & 0xFFFF)):
            direction = self._utp.pop(k, None)
            if direction is not None:
                yield from direction.finish()

    def _utp_accept(self, pkt: Packet, value: Any, key: tuple[str, str, int]
                    ) -> Iterator[Record]:
        kind = str(value.type)
        if kind == "st_syn":
            old = self._utp.get(key)
            if old is not None and old.syn_seq != value.seq_nr:  # not a retransmitted SYN
                yield from self._close(key)
        fields = json_fields(value, drop=("type", "type_version", "payload"))
        fields["payload_length"] = len(value.payload)
        yield Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                     dst=pkt.dst, protocol="bt-utp", message=kind, fields=fields,
                     length=len(pkt.payload), value=value,
                     spans=struct_spans(UtpPacket, 0, len(pkt.payload)))
        direction = self._utp.get(key)
        if direction is None:
            keys = self.secrets.get(PROTOCOL)
            extra = {"secrets": keys} if keys is not None else {}
            stream = load(self._stream)(transport="utp", src=pkt.src, dst=pkt.dst, **extra)
            direction = self._utp[key] = UtpDirection(stream)
        if kind == "st_syn":
            yield from direction.syn(value.seq_nr)
        elif kind == "st_state":
            opener = self._utp.get((pkt.dst, pkt.src, (key[2] + 1) & 0xFFFF))
            if opener is not None and opener.syn_seq == value.ack_nr:
                yield from direction.accepted(value.seq_nr)
            else:
                direction.state(value.seq_nr)
        elif kind == "st_data":
            yield from direction.data(value.seq_nr, value.payload, pkt.frame, pkt.time)
        elif kind == "st_reset":  # BEP 29: the connection is over, both ways
            yield from self._close(key)
