"""Fetching and serving the info dictionary over ``ut_metadata``, sans-I/O (BEP 9).

BEP 9 §metadata: "This extension only transfers the info-dictionary part of the .torrent file.
This part can be validated by the info-hash. [...] The metadata is handled in blocks of 16KiB
(16384 Bytes). The metadata blocks are indexed starting at 0. All blocks are 16KiB except the
last block which may be smaller."

:class:`MetadataDownload` decides which piece to ask which peer for, checks every ``data``
message (size, ``total_size``, that it was asked for) and, once all pieces are in, checks the
hash of the whole (SHA-1 for v1; SHA-256 as well when a BEP 52 v2 info-hash is known). A hash
mismatch starts over and remembers who sent what, so the retry asks other peers for those pieces.
:class:`MetadataServer` answers requests from a complete info dictionary. Peers are any hashable
key the caller chooses (a connection object, an address). Messages are built and parsed with
:data:`p2pkit.bittorrent.wire.extensions.UtMetadata`:

>>> info = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
>>> import hashlib
>>> download = MetadataDownload(hashlib.sha1(info).digest(), len(info))
>>> download.next_request("peer A")
0
>>> request_message(0)
b'd8:msg_typei0e5:piecei0ee'
>>> reply = MetadataServer(info).answer(parse(request_message(0)))
>>> data = build(reply)
>>> data[:42]
b'd8:msg_typei1e5:piecei0e10:total_sizei75ee'
>>> message = parse(data)
>>> download.receive("peer A", message.piece, message.metadata, message.total_size) == info
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping
from typing import Any

from construct import Container

from p2pkit.bittorrent.wire.extensions import UtMetadata
from p2pkit.bittorrent.wire.messages import PROTOCOL
from p2pkit.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError

__all__ = [
    "FLOOD_FACTOR",
    "MAX_HASH_FAILURES",
    "MAX_METADATA_SIZE",
    "METADATA_PIECE_SIZE",
    "MetadataDownload",
    "MetadataServer",
    "build",
    "parse",
    "piece_count",
    "request_message",
]

#: BEP 9: "The metadata is handled in blocks of 16KiB (16384 Bytes)."
METADATA_PIECE_SIZE = 16384
#: Largest info dictionary fetched (libtorrent's default ``max_metadata_size`` is 30 MiB; a
#: 16 MiB v1 info dictionary already describes 800 000 pieces).
MAX_METADATA_SIZE = 16 * 1024 * 1024
#: Whole-metadata hash failures tolerated before :class:`MetadataDownload` gives up.
MAX_HASH_FAILURES = 8
#: BEP 9: "Clients MAY implement flood protection by rejecting request messages after a certain
#: number of them have been served. Typically the number of pieces of metadata times a factor."
FLOOD_FACTOR = 4

Peer = Hashable


def piece_count(metadata_size: int) -> int:
    """How many 16 KiB metadata pieces ``metadata_size`` bytes make.

    >>> piece_count(16384), piece_count(16385)
    (1, 2)
    """
    return -(-metadata_size // METADATA_PIECE_SIZE)


def _piece_size(metadata_size: int, piece: int) -> int:
    # BEP 9: "If it is not the last piece of the metadata, it MUST be 16kiB."
    return min(METADATA_PIECE_SIZE, metadata_size - piece * METADATA_PIECE_SIZE)


def request_message(piece: int) -> bytes:
    """The payload of a BEP 9 ``request`` for ``piece``.

    >>> request_message(2)
    b'd8:msg_typei0e5:piecei2ee'
    """
    return UtMetadata.build(dict(msg_type="request", piece=piece))


def parse(payload: bytes) -> Container:
    """Decode a ``ut_metadata`` payload (``msg_type``, ``piece``, ``total_size``, ``metadata``).

    >>> dict(parse(b"d8:msg_typei2e5:piecei0ee"))
    {'msg_type': 'reject', 'piece': 0}
    """
    return UtMetadata.parse(payload)


def build(message: Mapping[str, Any]) -> bytes:
    """Encode a ``ut_metadata`` message dictionary (as :meth:`MetadataServer.answer` returns).

    >>> build(dict(msg_type="reject", piece=1))
    b'd8:msg_typei2e5:piecei1ee'
    """
    return UtMetadata.build(message)


class MetadataDownload:
    """One magnet download's metadata: which piece to request next, and the assembled result.

    ``metadata_size`` is a peer's BEP 9 handshake ``metadata_size``; it is checked against
    :data:`MAX_METADATA_SIZE` before anything is allocated. ``info_hash`` is the 20-byte hash
    used on the wire (for a v2-only torrent, the truncated SHA-256); ``info_hash_v2`` is the full
    BEP 52 SHA-256 when the magnet gave one (``btmh``).

    Peers may advertise different sizes (one of them lies): keep one download per advertised
    size and ask each peer only in the download of its own size; the one that verifies wins.
    After a whole fails the hash check, every peer that sent part of it counts one strike in
    ``suspects``; a peer that sent all of it is ``banned`` (never asked again). After
    :data:`MAX_HASH_FAILURES` failures the download gives up (``failed``).
    """

    def __init__(self, info_hash: bytes, metadata_size: int, *,
                 info_hash_v2: bytes | None = None) -> None:
        if len(info_hash) != 20 or (info_hash_v2 is not None and len(info_hash_v2) != 32):
            raise LocalProtocolError("info_hash must be 20 bytes, info_hash_v2 32 bytes")
        if type(metadata_size) is not int or metadata_size <= 0:
            # BEP 9: metadata_size is "the number of bytes of the metadata".
            raise RemoteProtocolError(f"metadata_size {metadata_size!r} is not a positive size")
        if metadata_size > MAX_METADATA_SIZE:
            raise LimitExceeded(f"metadata_size {metadata_size} is over {MAX_METADATA_SIZE}",
                                protocol=PROTOCOL, path="metadata_size")
        self.info_hash = bytes(info_hash)
        self.info_hash_v2 = None if info_hash_v2 is None else bytes(info_hash_v2)
        self.metadata_size = metadata_size
        self.piece_count = piece_count(metadata_size)
        #: Whole-metadata hash failures so far.
        self.hash_failures = 0
        #: The assembled info dictionary once verified.
        self.result: bytes | None = None
        #: Peer -> number of failed wholes it sent pieces of.
        self.suspects: dict[Peer, int] = {}
        #: Peers that alone sent a whole that failed the hash check.
        self.banned: set[Peer] = set()
        self._pieces: dict[int, bytes] = {}
        self._sources: dict[int, Peer] = {}
        self._in_flight: dict[int, set[Peer]] = {}
        self._asked: dict[Peer, set[int]] = {}
        self._rejected: set[tuple[Peer, int]] = set()
        # (peer, piece) pairs that went into a failed whole: avoided on the retry.
        self._failed: set[tuple[Peer, int]] = set()

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def failed(self) -> bool:
        """Gave up after :data:`MAX_HASH_FAILURES` hash failures."""
        return self.hash_failures >= MAX_HASH_FAILURES

    @property
    def missing(self) -> int:
        """Pieces not yet received."""
        return self.piece_count - len(self._pieces)

    def next_request(self, peer: Peer) -> int | None:
        """The piece to request from ``peer`` now, or ``None`` (nothing left for it).

        Pieces nobody is fetching come first, then (end-game) pieces another peer is slow
        with; a piece ``peer`` rejected is never asked of it again, and a piece ``peer`` sent
        into a whole that failed the hash check is asked of it only when no one else can.
        """
        if self.done or self.failed or peer in self.banned:
            return None
        asked = self._asked.setdefault(peer, set())
        best: tuple[int, int, int] | None = None
        for piece in range(self.piece_count):
            if piece in self._pieces or piece in asked or (peer, piece) in self._rejected:
                continue
            rank = (len(self._in_flight.get(piece, ())), (peer, piece) in self._failed, piece)
            if best is None or rank < best:
                best = rank
        if best is None:
            return None
        piece = best[2]
        asked.add(piece)
        self._in_flight.setdefault(piece, set()).add(peer)
        return piece

    def receive(self, peer: Peer, piece: int, data: bytes, total_size: int | None) -> bytes | None:
        """Take a ``data`` message; return the info dictionary when it is complete and verified.

        Raises :class:`RemoteProtocolError` when ``peer`` sent a piece it was not asked for, a
        ``total_size`` other than the handshake's, or a piece of the wrong length. A whole whose
        hash does not match is discarded (``hash_failures`` counts them) and ``None`` returned.
        """
        if self.done:
            return None
        asked = self._asked.get(peer, set())
        if piece not in asked:
            # BEP 9: "The response MUST have the same piece as the request did."
            raise RemoteProtocolError(f"ut_metadata piece {piece!r} was not requested")
        asked.discard(piece)
        self._in_flight.get(piece, set()).discard(peer)
        if total_size != self.metadata_size:
            # BEP 9: total_size "has the same semantics as the metadata_size in the extension
            # header".
            raise RemoteProtocolError(
                f"total_size {total_size!r} differs from metadata_size {self.metadata_size}")
        if len(data) != _piece_size(self.metadata_size, piece):
            # BEP 9: "If it is not the last piece of the metadata, it MUST be 16kiB."
            raise RemoteProtocolError(
                f"ut_metadata piece {piece} is {len(data)} bytes, expected "
                f"{_piece_size(self.metadata_size, piece)}")
        if piece in self._pieces:
            return None  # end-game duplicate
        self._pieces[piece] = bytes(data)
        self._sources[piece] = peer
        if len(self._pieces) < self.piece_count:
            return None
        whole = b"".join(self._pieces[i] for i in range(self.piece_count))
        if self._verified(whole):
            self.result = whole
            self._pieces.clear()
            return whole
        self.hash_failures += 1
        self._failed.update((p, i) for i, p in self._sources.items())
        contributors = set(self._sources.values())
        for p in contributors:
            self.suspects[p] = self.suspects.get(p, 0) + 1
        if len(contributors) == 1:
            self.banned.update(contributors)
        self._pieces.clear()
        self._sources.clear()
        return None

    def receive_message(self, peer: Peer, message: Mapping[str, Any]) -> bytes | None:
        """Dispatch a parsed ``data`` or ``reject`` message (see :func:`parse`); the info
        dictionary when it completes. Requests are for :class:`MetadataServer`, so ignored."""
        if message.get("msg_type") == "data":
            return self.receive(peer, message["piece"], message.get("metadata", b""),
                                message.get("total_size"))
        if message.get("msg_type") == "reject":
            self.reject(peer, message["piece"])
        return None

    def _verified(self, whole: bytes) -> bool:
        # BEP 9: "This part can be validated by the info-hash." BEP 52: the v2 info-hash is
        # the SHA-256 of the same dictionary; a v2-only swarm uses it truncated to 20 bytes.
        if self.info_hash_v2 is not None:
            if hashlib.sha256(whole).digest() != self.info_hash_v2:
                return False
            if self.info_hash == self.info_hash_v2[:20]:
                return True
        return hashlib.sha1(whole).digest() == self.info_hash

    def reject(self, peer: Peer, piece: int) -> None:
        """``peer`` rejected ``piece``: BEP 9 "the peer does not have the piece of metadata"."""
        self._asked.get(peer, set()).discard(piece)
        self._in_flight.get(piece, set()).discard(peer)
        self._rejected.add((peer, piece))

    def peer_lost(self, peer: Peer) -> None:
        """Forget ``peer``: its outstanding requests go back to the pool."""
        for piece in self._asked.pop(peer, set()):
            self._in_flight.get(piece, set()).discard(peer)
        self._rejected = {(p, i) for p, i in self._rejected if p != peer}


class MetadataServer:
    """Answers BEP 9 requests from a complete info dictionary.

    >>> server = MetadataServer(b"d4:name1:ae")
    >>> server.metadata_size, dict(server.answer(dict(msg_type="request", piece=1)))
    (11, {'msg_type': 'reject', 'piece': 1})
    """

    def __init__(self, info_bytes: bytes) -> None:
        if len(info_bytes) > MAX_METADATA_SIZE:
            raise LimitExceeded(f"info dictionary over {MAX_METADATA_SIZE} bytes",
                                protocol=PROTOCOL, path="metadata_size")
        self.info_bytes = bytes(info_bytes)
        #: The BEP 9 handshake ``metadata_size`` to advertise.
        self.metadata_size = len(self.info_bytes)
        self.piece_count = piece_count(self.metadata_size)
        self._served: dict[Peer, int] = {}

    def answer(self, request: Mapping[str, Any], *, peer: Peer | None = None) -> dict[str, Any]:
        """The ``data`` answering a ``request``, or a ``reject`` for a piece out of range or,
        when ``peer`` is given, once that peer was served ``FLOOD_FACTOR`` times the pieces.

        BEP 9: "The response to this message [...] is either a reject or a data message. The
        response MUST have the same piece as the request did."
        """
        if request.get("msg_type") != "request":
            raise LocalProtocolError(f"not a request: {request.get('msg_type')!r}")
        piece = request.get("piece")
        if type(piece) is not int or not 0 <= piece < self.piece_count:
            return dict(msg_type="reject", piece=piece if type(piece) is int else 0)
        if peer is not None:
            served = self._served.get(peer, 0)
            if served >= FLOOD_FACTOR * self.piece_count:
                return dict(msg_type="reject", piece=piece)
            self._served[peer] = served + 1
        start = piece * METADATA_PIECE_SIZE
        return dict(msg_type="data", piece=piece, total_size=self.metadata_size,
                    metadata=self.info_bytes[start : start + METADATA_PIECE_SIZE])
