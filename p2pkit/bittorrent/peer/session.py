"""One torrent shared with many peers, as a sans-I/O state machine.

Specs: BEP 3 §peer protocol (interest, choking, "pipelining", have), BEP 6 (allowed fast,
have all/none), BEP 9 (metadata for magnet links), BEP 10, BEP 11 (PEX).

:class:`TorrentSession` owns one :class:`~p2pkit.bittorrent.peer.connection.PeerConnection` per
peer and decides, message by message, what to say: interest when a peer has a piece we miss,
which blocks to request (:class:`~p2pkit.bittorrent.peer.picker.PiecePicker`), whom to unchoke
(:class:`~p2pkit.bittorrent.peer.choker.Choker`), ``have`` to everyone when a piece passes its
hash check, blocks to upload. It performs no I/O: the driver (:mod:`p2pkit.bittorrent.peer.client`
for sockets, the tests for in-memory pairs) feeds bytes with :meth:`~TorrentSession.receive_data`,
writes what :meth:`~TorrentSession.data_to_send` returns, and acts on the events from
:meth:`~TorrentSession.next_event` (:data:`~p2pkit.core.NEED_DATA` when there are none): a peer
requested a block (:class:`BlockRequested`: read it from storage, answer with
:meth:`~TorrentSession.block_read`), a piece was downloaded (:class:`PieceDownloaded`:
hash-check and store it, answer with :meth:`~TorrentSession.piece_checked`), a peer is closed
(:class:`PeerClosed`: close its socket), peers were discovered through PEX
(:class:`PeersDiscovered`) or a DHT node seen (:class:`DhtNodeSeen`), and, for a magnet link,
the metadata download completed (:class:`MetadataCompleted`: set up storage, answer with
:meth:`~TorrentSession.start`) and BEP 52 piece layers were verified
(:class:`PieceLayerVerified`: give them to storage); :class:`DownloadStopped` when the download
cannot go on.

Hostile peers: a message that breaks the protocol closes that peer only; a piece that fails its
hash check is discarded and re-downloaded, and every peer that sent blocks of it gets a strike;
:data:`MAX_HASH_FAILURES` strikes ban the peer's address (:class:`PeerClosed` with ``ban``).

It stays one module: its second ideas already have theirs (picking, choking, metadata, PEX,
piece layers, the connection), and what is left, downloading and uploading alike, is one
dispatch of each connection's events over the same per-peer state and event queue.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.choker import Choker
from p2pkit.bittorrent.peer.connection import PeerConnection
from p2pkit.bittorrent.peer.connection_state import (
    AWAIT_FIRST_MESSAGE,
    AWAIT_HANDSHAKE,
    CLOSED,
    ESTABLISHED,
)
from p2pkit.bittorrent.peer.metadata import MetadataDownload, MetadataServer
from p2pkit.bittorrent.peer.pex import PEX_INTERVAL, PeerFlags, PexMessageBuilder, PexPeer
from p2pkit.bittorrent.peer.picker import Block, PiecePicker
from p2pkit.bittorrent.peer.piece_layers import (
    answer_hash_request,
    answer_leaf_request,
    checked_layer,
    layer_request,
    leaf_request_pieces,
    needs_layer,
)
from p2pkit.bittorrent.peer.storage import PieceMap
from p2pkit.bittorrent.wire.bitfield import encode_bitfield
from p2pkit.bittorrent.wire.extensions import decode_extended
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, FileEntry, Metainfo
from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.errors import P2PKitError, ParseError, RemoteProtocolError

__all__ = [
    "MAX_BUFFERED_BYTES",
    "MAX_HASH_FAILURES",
    "REQUEST_QUEUE",
    "BlockRequested",
    "DhtNodeSeen",
    "DownloadStopped",
    "LeafHashesWanted",
    "MetadataCompleted",
    "PeerClosed",
    "PeersDiscovered",
    "PieceDownloaded",
    "PieceLayerVerified",
    "SessionEvent",
    "TorrentSession",
]

#: A peer that contributed to this many pieces that failed their hash check is banned.
MAX_HASH_FAILURES = 3
#: Our BEP 10 extension ids (the ids peers use when sending these to us).
OUR_EXTENSIONS = {"ut_metadata": 3, "ut_pex": 1}
#: Client name in the BEP 10 handshake ``v``.
CLIENT_NAME = "p2pkit 0.1"
#: Requests queued per peer (BEP 10 ``reqq`` we advertise and the pipeline depth we use unless
#: the peer's ``reqq`` is smaller).
REQUEST_QUEUE = 128
#: BEP 6 allowed fast set size ("k should be set to [...] 10").
ALLOWED_FAST = 10
#: Bytes of started pieces (buffered until their hash check) before no new piece is started:
#: what bounds a download's memory whatever the torrent size.
MAX_BUFFERED_BYTES = 64 * 1024 * 1024

Peer = Hashable


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionEvent(Event):
    """Base of what :meth:`TorrentSession.next_event` returns: what the driver must act on."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BlockRequested(SessionEvent):
    """``peer`` requested ``length`` bytes at ``begin`` of piece ``index`` (BEP 3
    ``request``) and may be served: read them and give them to
    :meth:`TorrentSession.block_read`."""

    peer: Peer
    index: int
    begin: int
    length: int


@dataclass(frozen=True, kw_only=True, slots=True)
class PieceDownloaded(SessionEvent):
    """Every block of piece ``index`` arrived (its bytes in ``data``): hash-check it, store it
    if good, then call :meth:`TorrentSession.piece_checked`."""

    index: int
    data: bytearray = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerClosed(SessionEvent):
    """The session is done with ``peer`` (``reason`` says why): close its connection;
    ``ban``: never connect to its address again."""

    peer: Peer
    reason: str
    ban: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class PeersDiscovered(SessionEvent):
    """Addresses learnt from a peer (BEP 11 PEX) worth dialling.

    ``utp``: per address, BEP 11's ``added.f`` 0x04 "supports uTP" (None: the message gave
    no flags for it), for the choice of transport.
    """

    addresses: tuple[tuple[str, int], ...]
    utp: tuple[bool | None, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class DhtNodeSeen(SessionEvent):
    """A peer runs a DHT node at ``address`` (BEP 5 ``port`` message): worth a ping."""

    address: tuple[str, int]


@dataclass(frozen=True, kw_only=True, slots=True)
class DownloadStopped(SessionEvent):
    """The download cannot go on; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PieceLayerVerified(SessionEvent):
    """A file's BEP 52 piece layer arrived from a peer and leads to its pieces root: give it
    to storage (``Storage.add_piece_layer``) so its pieces can be checked."""

    pieces_root: bytes
    hashes: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class LeafHashesWanted(SessionEvent):
    """``peer`` asked for leaf hashes (a BEP 52 ``hash request`` with base layer 0) of
    pieces we have: read ``pieces`` (torrent piece indexes) whole and give them to
    :meth:`TorrentSession.leaf_pieces_read`, which answers with ``hashes`` (BEP 52
    §hash request: "Clients MUST NOT reject a hash request with a base layer of zero if it
    immediately follows a request for one of the chunks in the requested range and the client
    services the chunk request with a piece message.")."""

    peer: Peer
    request: ev.HashRequest
    pieces: tuple[int, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class MetadataCompleted(SessionEvent):
    """The BEP 9 metadata download ended: the info dictionary of a magnet link arrived and
    matches its info-hash. Set up storage and call :meth:`TorrentSession.start`."""

    metainfo: Metainfo


@dataclass(slots=True)
class _PeerState:
    conn: PeerConnection
    address: tuple[str, int] | None
    outgoing: bool
    hash_failures: int = 0
    metadata_pieces: int = 0
    out: list[bytes] = field(default_factory=list)
    #: BEP 11: what this peer was told about our other connections (None: it has no ut_pex).
    pex: PexMessageBuilder | None = None
    #: Where the peer accepts connections: the dialled address, or the source IP with the
    #: BEP 10 handshake's ``p`` (listen port) for a peer that dialled us.
    listen_address: tuple[str, int] | None = None
    #: The peer speaks uTP (BEP 11 ``added.f`` 0x04 in our PEX messages).
    utp: bool = False
    #: BEP 52: pieces roots whose layer this peer refused (it is not asked again).
    layer_refusals: set = field(default_factory=set)


class TorrentSession:
    """Everything one torrent says to its peers (see the module docstring).

    Give ``metainfo`` (and ``have``: one byte per piece, from the storage re-check) for a
    .torrent, or only ``info_hash`` for a magnet link (then :class:`MetadataCompleted` comes
    first). ``rng`` makes piece choice and optimistic unchokes reproducible.
    """

    def __init__(self, *, peer_id: bytes, metainfo: Metainfo | None = None,
                 info_hash: bytes | None = None, have: bytes | bytearray | None = None,
                 rng: random.Random | None = None, upload_slots: int | None = 4,
                 request_queue: int = REQUEST_QUEUE, listen_port: int | None = None,
                 dht_port: int | None = None, info_hash_v2: bytes | None = None,
                 now: float = 0.0) -> None:
        if metainfo is None and info_hash is None:
            raise P2PKitError("a session needs a metainfo or an info-hash")
        self.peer_id = peer_id
        self.info_hash = metainfo.info_hash if metainfo is not None else info_hash
        #: A magnet's full BEP 52 hash (``btmh``): the metadata is checked against it.
        self.info_hash_v2 = info_hash_v2
        self.rng = rng or random.Random()
        self.request_queue = request_queue
        self.listen_port = listen_port
        #: BEP 5: our DHT node's UDP port, announced with the reserved bit and ``port``.
        self.dht_port = dht_port
        self.peers: dict[Peer, _PeerState] = {}
        self.choker = Choker(slots=upload_slots, rng=self.rng)
        self.metainfo: Metainfo | None = None
        self.picker: PiecePicker | None = None
        self.metadata_download: MetadataDownload | None = None
        self.metadata_server: MetadataServer | None = None
        self._events: deque[SessionEvent] = deque()
        self._pieces: dict[int, bytearray] = {}
        #: Pieces with blocks requested or received and not yet handed to the hash check.
        self._started: dict[int, None] = {}
        #: Peers whose request pipeline wants topping up (see :meth:`_fill_requests`).
        self._refill: dict[Peer, float] = {}
        self._longest_piece = 0
        self._missing_layers: dict[bytes, FileEntry] = {}
        self._layer_requests: dict[bytes, Peer] = {}
        self._requestable: frozenset[int] | None = None
        self.verified_bytes = 0
        self.failed_pieces = 0
        #: Block bytes sent to and received from all peers since the start (BEP 3 tracker
        #: ``uploaded``: "The total amount uploaded so far"), closed connections included.
        self.uploaded_bytes = 0
        self.received_bytes = 0
        self.started_at = now
        self.completed_at: float | None = None
        self._next_pex = now + PEX_INTERVAL
        if metainfo is not None:
            self.start(metainfo, have or bytearray(metainfo.piece_count), now=now)

    # -----------------------------------------------------------------------------------------
    # Torrent state

    def start(self, metainfo: Metainfo, have: bytes | bytearray, *, now: float) -> None:
        """Know the torrent (at construction, or once a magnet's metadata arrived)."""
        self.metainfo = metainfo
        count = metainfo.piece_count
        piece_map = PieceMap(metainfo)
        self._piece_lengths = [piece_map.piece_length(i) for i in range(count)]
        self._longest_piece = max(self._piece_lengths, default=0)
        # BEP 52 pads each file of a v2 torrent to a piece boundary; libtorrent 2.0 requests
        # the last piece of a file as a whole piece, so peers may ask up to piece length (the
        # bytes past the file's end are the zeros of that padding).
        self._request_limit = metainfo.piece_length if not metainfo.has_v1 else None
        self.picker = PiecePicker(self._piece_lengths, have=have, rng=self.rng,
                                  block_size=BLOCK_SIZE)
        # BEP 52: a v2 torrent from a magnet link has no piece layers; the pieces of a file
        # whose layer is missing cannot be checked, so they wait until a peer sent the layer.
        self._missing_layers = {} if metainfo.has_v1 else {
            f.pieces_root: f for f in metainfo.files
            if needs_layer(f, metainfo.piece_length) and f.pieces_root not in
            metainfo.piece_layers}
        self._layer_requests: dict[bytes, Peer] = {}
        self._update_blocked(piece_map)
        self.metadata_server = MetadataServer(metainfo.info_bytes) if metainfo.info_bytes \
            else None
        self.metadata_download = None
        if self.picker.is_complete:
            self.completed_at = now
        for peer, state in list(self.peers.items()):
            self.picker.add_peer(peer)
            conn = state.conn
            if conn.piece_count is None:
                try:
                    conn.set_torrent(count, self.request_limit)
                except RemoteProtocolError as e:
                    self._drop(peer, str(e), now)
                    continue
            if conn.our_state != AWAIT_HANDSHAKE and conn.their_handshake is not None:
                self._after_geometry(peer, now)

    def _update_blocked(self, piece_map: PieceMap | None = None) -> None:
        """Pieces not to request yet: those of files whose piece layer is still missing."""
        if not self._missing_layers:
            self._requestable = None
            return
        assert self.metainfo is not None and self.picker is not None
        piece_map = piece_map or PieceMap(self.metainfo)
        self._requestable = frozenset(
            i for i in range(self.picker.piece_count)
            if not any(span.file.pieces_root in self._missing_layers
                       for span in piece_map.spans(i)))

    def _request_layers(self, now: float) -> None:
        """Ask a ready peer for each missing piece layer not already asked for."""
        assert self.metainfo is not None
        for root, file in self._missing_layers.items():
            if root in self._layer_requests:
                continue
            for peer, state in self.peers.items():
                if _ready(state.conn) and root not in state.layer_refusals:
                    try:
                        request = layer_request(file, self.metainfo.piece_length)
                    except P2PKitError as e:
                        self._events.append(DownloadStopped(
                            reason=f"cannot fetch a piece layer: {e}"))
                        return
                    self._send(peer, request, now)
                    self._layer_requests[root] = peer
                    break

    def piece_length(self, index: int) -> int:
        return self._piece_lengths[index]

    def request_limit(self, index: int) -> int:
        """How far into piece ``index`` a peer may request (see :meth:`start`)."""
        return self._request_limit or self._piece_lengths[index]

    def have(self) -> bytearray:
        """One byte (0/1) per piece: the verified pieces."""
        assert self.picker is not None
        return bytearray(map(self.picker.has_piece, range(self.picker.piece_count)))

    @property
    def complete(self) -> bool:
        return self.picker is not None and self.picker.is_complete

    # -----------------------------------------------------------------------------------------
    # Peers

    def add_peer(self, peer: Peer, *, outgoing: bool, address: tuple[str, int] | None = None,
                 now: float, utp: bool = False) -> None:
        """A connection to ``peer`` is open; outgoing ones send our handshake at once.
        ``utp``: the peer is known to speak uTP (BEP 29): the connection runs over it, or a
        PEX flag said so; told on in our PEX messages (BEP 11 ``added.f`` 0x04)."""
        count = self.metainfo.piece_count if self.metainfo else None
        conn = PeerConnection(piece_count=count, piece_length=self.request_limit if count
                              is not None else None, max_outstanding=self.request_queue,
                              now=now)
        if self.metainfo is not None and self.metainfo.has_v1 and self.metainfo.has_v2:
            conn.upgrade_info_hash = self.metainfo.info_hash_v2_truncated
        self.peers[peer] = _PeerState(conn=conn, address=address, outgoing=outgoing,
                                      listen_address=address if outgoing else None, utp=utp)
        self.choker.add_peer(peer, now)
        if self.picker is not None:
            self.picker.add_peer(peer)
        if outgoing:
            self._send(peer, self._handshake(), now)

    def _handshake(self, info_hash: bytes | None = None) -> ev.Handshake:
        v2 = bool(self.metainfo and self.metainfo.has_v2)
        return ev.Handshake(info_hash=info_hash or self.info_hash, peer_id=self.peer_id,
                            fast=True, extension_protocol=True, v2_upgrade=v2,
                            dht=self.dht_port is not None)

    def _serves(self, info_hash: bytes) -> bool:
        """Our info-hash, or for a hybrid torrent its truncated v2 hash (BEP 52)."""
        meta = self.metainfo
        return info_hash == self.info_hash or bool(
            meta and meta.has_v2 and info_hash == meta.info_hash_v2_truncated)

    def remove_peer(self, peer: Peer, now: float) -> None:
        """The connection to ``peer`` is gone (closed by either side)."""
        state = self.peers.pop(peer, None)
        if state is None:
            return
        self.choker.remove_peer(peer)
        if self.picker is not None:
            self.picker.remove_peer(peer)
        if self.metadata_download is not None:
            self.metadata_download.peer_lost(peer)
        asked = [root for root, asked in self._layer_requests.items() if asked == peer]
        for root in asked:
            del self._layer_requests[root]
        if asked:
            self._request_layers(now)

    def data_to_send(self, peer: Peer) -> bytes:
        """Bytes to write to ``peer`` now."""
        state = self.peers.get(peer)
        if state is None:
            return b""
        if peer in self._refill:
            self._request_more(peer, self._refill.pop(peer))
        queued = state.conn.data_to_send()
        if queued:
            state.out.append(queued)
        data = b"".join(state.out)
        state.out.clear()
        return data

    def next_event(self) -> SessionEvent | NeedData:
        """The next :class:`SessionEvent` for the driver to act on, or
        :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    def _send(self, peer: Peer, event: ev.Event, now: float) -> None:
        state = self.peers[peer]
        state.out.append(state.conn.send(event, now))

    def _drop(self, peer: Peer, reason: str, now: float, *, ban: bool = False) -> None:
        state = self.peers.get(peer)
        if state is not None:
            state.conn.close(reason)
            self._events.append(PeerClosed(peer=peer, reason=reason, ban=ban))
            self.remove_peer(peer, now)

    # -----------------------------------------------------------------------------------------
    # Receiving

    def receive_data(self, peer: Peer, data: bytes, now: float) -> None:
        """Bytes from ``peer`` (``b""``: it closed the connection)."""
        state = self.peers.get(peer)
        if state is None:
            return
        state.conn.receive_data(data, now)
        self._drain(peer, now)

    def _on_event(self, peer: Peer, state: _PeerState, event: ev.Event, now: float) -> None:
        kind = type(event)
        handler = _HANDLERS.get(kind)
        if handler is None:
            handler = _HANDLERS[kind] = getattr(TorrentSession, "_on_" + kind.__name__, _ignore)
        handler(self, peer, state, event, now)

    def _on_Handshake(self, peer: Peer, state: _PeerState, event: ev.Handshake,
                      now: float) -> None:
        if not self._serves(event.info_hash):
            self._drop(peer, "handshake for another torrent", now)
            return
        if event.peer_id == self.peer_id:
            self._drop(peer, "connected to ourselves", now)
            return
        conn = state.conn
        if conn.our_handshake is None:
            self._send(peer, self._handshake(event.info_hash), now)
        if conn.extension_protocol:
            items: dict[str, Any] = {"v": CLIENT_NAME, "reqq": self.request_queue}
            if self.listen_port:
                items["p"] = self.listen_port
            if self.metadata_server is not None:
                items["metadata_size"] = self.metadata_server.metadata_size
            self._send(peer, ev.ExtensionHandshake(m=self._extensions(), items=items), now)
        if self.picker is not None:
            self._after_geometry(peer, now)
        elif conn.fast:
            self._send(peer, ev.HaveNone(), now)
        # BEP 5: "Upon receiving a handshake indicating the remote peer supports the DHT, the
        # local peer SHOULD send a PORT message."
        if self.dht_port is not None and event.dht and peer in self.peers:
            self._send(peer, ev.Port(port=self.dht_port), now)

    def _after_geometry(self, peer: Peer, now: float) -> None:
        """Tell ``peer`` what we have (first message) and act on what it told us so far."""
        state = self.peers[peer]
        conn = state.conn
        assert self.picker is not None
        if conn.our_state == AWAIT_FIRST_MESSAGE:
            if conn.fast and self.picker.is_complete:
                self._send(peer, ev.HaveAll(), now)
            elif conn.fast and not self.picker.have_count:
                self._send(peer, ev.HaveNone(), now)
            else:
                self._send(peer, ev.Bitfield(bitfield=self.picker.bitfield()), now)
            if conn.fast:
                for index in self._allowed_fast(state):
                    self._send(peer, ev.AllowedFast(index=index), now)
        elif conn.our_state != CLOSED:
            for index in range(self.picker.piece_count):
                if self.picker.has_piece(index):
                    self._send(peer, ev.Have(index=index), now)
        if peer in self.choker.unchoked and conn.am_choking and _ready(conn):
            self._send(peer, ev.Unchoke(), now)  # the choker chose it before it was ready
        if self._missing_layers:
            self._request_layers(now)
        if conn.peer_has_all:
            self.picker.peer_has_all(peer)
        elif conn.peer_pieces is not None:
            self.picker.peer_bitfield(peer, encode_bitfield(conn.peer_pieces))
        self._update_interest(peer, now)

    def _allowed_fast(self, state: _PeerState) -> list[int]:
        """BEP 6 §Allowed Fast: a few pieces we have, offered to a starting peer. (The BEP's
        address-derived set lets a peer predict it; any set we have is valid to offer.)"""
        assert self.picker is not None
        have = [i for i in range(self.picker.piece_count) if self.picker.has_piece(i)]
        if not have or self.picker.is_complete:
            return []
        return self.rng.sample(have, min(ALLOWED_FAST, len(have)))

    def _extensions(self) -> dict[str, int]:
        """Our BEP 10 ``m``: no PEX for a private torrent (BEP 27: "MUST NOT" share peers)."""
        names = dict(OUR_EXTENSIONS)
        if self.metainfo is not None and self.metainfo.private:
            del names["ut_pex"]
        return names

    def _on_ExtensionHandshake(self, peer: Peer, state: _PeerState,
                               event: ev.ExtensionHandshake, now: float) -> None:
        port = event.items.get("p")
        if not state.outgoing and state.address and isinstance(port, int) and 0 < port < 65536:
            state.listen_address = (state.address[0], port)
        if "ut_pex" in event.m and "ut_pex" in self._extensions() and state.pex is None:
            state.pex = PexMessageBuilder()
        reqq = event.items.get("reqq")
        if isinstance(reqq, int) and reqq > 0:
            state.conn.max_outstanding = min(self.request_queue, reqq)
        size = event.items.get("metadata_size")
        if self.metainfo is None and "ut_metadata" in event.m and isinstance(size, int):
            if self.metadata_download is None:
                try:
                    self.metadata_download = MetadataDownload(self.info_hash, size,
                                                              info_hash_v2=self.info_hash_v2)
                except P2PKitError as e:
                    self._drop(peer, f"metadata_size: {e}", now)
                    return
            self._request_metadata(peer, now)

    def _request_metadata(self, peer: Peer, now: float) -> None:
        download = self.metadata_download
        if download is None or download.done:
            return
        while (piece := download.next_request(peer)) is not None:
            self._send(peer, ev.ExtensionMessage(name="ut_metadata",
                                                 message=dict(msg_type="request", piece=piece)),
                       now)

    def _on_ExtensionMessage(self, peer: Peer, state: _PeerState, event: ev.ExtensionMessage,
                             now: float) -> None:
        message = event.message
        if event.name == "ut_metadata":
            kind = message.get("msg_type")
            if kind == "request":
                if self.metadata_server is None or "ut_metadata" not in \
                        state.conn.their_extensions:
                    return
                answer = self.metadata_server.answer(message, peer=peer)
                self._send(peer, ev.ExtensionMessage(name="ut_metadata", message=answer), now)
            elif kind == "data" and self.metadata_download is not None:
                try:
                    info = self.metadata_download.receive(peer, message.get("piece"),
                                                          message.get("metadata", b""),
                                                          message.get("total_size"))
                except P2PKitError as e:
                    self._drop(peer, f"bad metadata: {e}", now)
                    return
                if info is not None:
                    self._metadata_complete(info, now)
                else:
                    self._request_metadata(peer, now)
            elif kind == "reject" and self.metadata_download is not None:
                self.metadata_download.reject(peer, message.get("piece"))
        elif event.name == "ut_pex" and "ut_pex" in self._extensions():
            addresses: list[tuple[str, int]] = []
            utp: list[bool | None] = []
            for key in ("added", "added6"):
                flags = list(message.get(f"{key}.f") or ())
                for i, p in enumerate(message.get(key) or ()):
                    addresses.append((str(p.ip), p.port))
                    utp.append(bool(flags[i].utp) if i < len(flags) else None)
            if addresses:
                self._events.append(PeersDiscovered(addresses=tuple(addresses[:50]),
                                                    utp=tuple(utp[:50])))

    def _metadata_complete(self, info: bytes, now: float) -> None:
        try:
            metainfo = Metainfo.parse_info(info)
        except ParseError as e:
            self.metadata_download = None
            raise RemoteProtocolError(f"the metadata does not parse: {e}") from None
        self._events.append(MetadataCompleted(metainfo=metainfo))
        self.metadata_download = None

    def _on_HashRequest(self, peer: Peer, state: _PeerState, event: ev.HashRequest,
                        now: float) -> None:
        meta = self.metainfo
        if meta is None:
            answer: ev.Event = ev.HashReject(**_hash_fields(event))
        elif event.base_layer == 0:
            wanted = self._leaf_pieces(event)
            if wanted is not None:
                self._events.append(LeafHashesWanted(peer=peer, request=event, pieces=wanted))
                return
            answer = ev.HashReject(**_hash_fields(event))
        else:
            answer = answer_hash_request(event, meta.piece_layers, meta.piece_length)
        self._send(peer, answer, now)

    def _leaf_file(self, pieces_root: bytes) -> FileEntry | None:
        meta = self.metainfo
        if meta is None:
            return None
        return next((f for f in meta.files if f.pieces_root == pieces_root), None)

    def _leaf_pieces(self, event: ev.HashRequest) -> tuple[int, ...] | None:
        """The torrent pieces a leaf-hash request needs read, when we have them all."""
        meta, file = self.metainfo, self._leaf_file(event.pieces_root)
        if meta is None or file is None or self.picker is None:
            return None
        covered = leaf_request_pieces(event, file, meta.piece_length)
        if covered is None:
            return None
        first = file.offset // meta.piece_length
        pieces = tuple(first + p for p in covered)
        if not all(self.picker.has_piece(p) for p in pieces):
            return None
        return pieces

    def leaf_pieces_read(self, peer: Peer, request: ev.HashRequest,
                         pieces: Mapping[int, bytes], now: float) -> None:
        """The driver read the pieces a :class:`LeafHashesWanted` named (by torrent piece
        index; a piece it could not read left out): answer the peer's request."""
        state = self.peers.get(peer)
        meta, file = self.metainfo, self._leaf_file(request.pieces_root)
        if state is None or state.conn.closed or meta is None:
            return
        if file is None:
            answer: ev.Event = ev.HashReject(**_hash_fields(request))
        else:
            first = file.offset // meta.piece_length
            answer = answer_leaf_request(
                request, file, meta.piece_length, meta.piece_layers.get(request.pieces_root),
                {index - first: data for index, data in pieces.items()})
        self._send(peer, answer, now)

    def _on_Hashes(self, peer: Peer, state: _PeerState, event: ev.Hashes, now: float) -> None:
        file = self._missing_layers.get(event.pieces_root)
        if file is None or self.metainfo is None:
            return  # a layer we already have (asked twice)
        layer = checked_layer(event, file, self.metainfo.piece_length)
        if layer is None:
            self._drop(peer, f"hashes for {file.path_text} do not lead to its pieces root",
                       now, ban=True)
            self._layer_requests.pop(event.pieces_root, None)
            self._request_layers(now)
            return
        del self._missing_layers[event.pieces_root]
        self._layer_requests.pop(event.pieces_root, None)
        self._events.append(PieceLayerVerified(pieces_root=event.pieces_root, hashes=layer))
        self._update_blocked()
        for other in list(self.peers):
            self._fill_requests(other, now)

    def _on_HashReject(self, peer: Peer, state: _PeerState, event: ev.HashReject,
                       now: float) -> None:
        if self._layer_requests.get(event.pieces_root) == peer:
            del self._layer_requests[event.pieces_root]
            state.layer_refusals.add(event.pieces_root)
            self._request_layers(now)

    def _on_Port(self, peer: Peer, state: _PeerState, event: ev.Port, now: float) -> None:
        # BEP 5: "the node should attempt to ping the node on the received port and IP address"
        if self.dht_port is not None and state.address is not None and event.port:
            self._events.append(DhtNodeSeen(address=(state.address[0], event.port)))

    def _on_Bitfield(self, peer: Peer, state: _PeerState, event: ev.Bitfield,
                     now: float) -> None:
        if self.picker is not None and state.conn.peer_pieces is not None:
            self.picker.peer_bitfield(peer, event.bitfield)
            self._update_interest(peer, now)

    def _on_HaveAll(self, peer: Peer, state: _PeerState, event: ev.Event, now: float) -> None:
        if self.picker is not None:
            self.picker.peer_has_all(peer)
            self._update_interest(peer, now)

    def _on_Have(self, peer: Peer, state: _PeerState, event: ev.Have, now: float) -> None:
        if self.picker is not None:
            self.picker.peer_has(peer, event.index)
            if not state.conn.am_interested:
                self._update_interest(peer, now)
            else:
                self._fill_requests(peer, now)

    def _on_Unchoke(self, peer: Peer, state: _PeerState, event: ev.Event, now: float) -> None:
        self._fill_requests(peer, now)

    def _on_AllowedFast(self, peer: Peer, state: _PeerState, event: ev.Event,
                        now: float) -> None:
        self._fill_requests(peer, now)

    def _on_Interested(self, peer: Peer, state: _PeerState, event: ev.Event, now: float) -> None:
        # BEP 3: a peer becoming interested may take an idle upload slot at once, or push the
        # worst uploader out (the choker decides; everything else waits for the round).
        self._apply_choke(self.choker.set_interested(peer, True), now)

    def _on_NotInterested(self, peer: Peer, state: _PeerState, event: ev.Event,
                          now: float) -> None:
        self._apply_choke(self.choker.set_interested(peer, False), now)

    def _on_Request(self, peer: Peer, state: _PeerState, event: ev.Request, now: float) -> None:
        if event.block in state.conn.peer_requests and self.picker is not None \
                and self.picker.has_piece(event.index):
            self._events.append(BlockRequested(peer=peer, index=event.index, begin=event.begin,
                                              length=event.length))
        elif event.block in state.conn.peer_requests and state.conn.fast:
            self._send(peer, ev.RejectRequest(index=event.index, begin=event.begin,
                                              length=event.length), now)

    def _on_RejectRequest(self, peer: Peer, state: _PeerState, event: ev.RejectRequest,
                          now: float) -> None:
        if self.picker is not None:
            self.picker.request_failed(peer, Block(*event.block))
            self._fill_requests(peer, now)

    def _on_RequestsVoided(self, peer: Peer, state: _PeerState, event: ev.RequestsVoided,
                           now: float) -> None:
        if self.picker is not None:
            for block in event.blocks:
                self.picker.request_failed(peer, Block(*block))
            if event.reason != "closed":
                self._fill_requests(peer, now)
                for other in list(self.peers):
                    if other != peer:
                        self._fill_requests(other, now)

    def _on_ConnectionClosed(self, peer: Peer, state: _PeerState,
                             event: ev.ConnectionClosed, now: float) -> None:
        self._events.append(PeerClosed(peer=peer, reason=event.reason))
        self.remove_peer(peer, now)

    def _on_Piece(self, peer: Peer, state: _PeerState, event: ev.Piece, now: float) -> None:
        picker = self.picker
        if picker is None:
            return
        index, begin, data = event.index, event.begin, event.data
        size = len(data)
        self.received_bytes += size
        result = picker.block_received(peer, Block(index, begin, size))
        # BEP 3 end game: "it sends cancels [...] to all the peers it sent the request to".
        for other in result.cancel:
            other_state = self.peers.get(other)
            if other_state is not None and event.block in other_state.conn.requested():
                self._send(other, ev.Cancel(index=index, begin=event.begin,
                                            length=len(event.data)), now)
        if result.new:
            buffer = self._pieces.get(index)
            if buffer is None:
                buffer = self._pieces[index] = bytearray(self._piece_lengths[index])
            buffer[begin:begin + size] = data
            if result.piece_complete:
                self._started.pop(index, None)
                self._events.append(PieceDownloaded(index=index, data=self._pieces.pop(index)))
        self._fill_requests(peer, now)

    # -----------------------------------------------------------------------------------------
    # Driver answers

    def block_read(self, peer: Peer, index: int, begin: int, data: bytes,
                   now: float) -> None:
        """The driver read a block for ``peer``'s request: send it, unless cancelled since."""
        state = self.peers.get(peer)
        if state is None or state.conn.closed:
            return
        if (index, begin, len(data)) in state.conn.peer_requests:
            self._send(peer, ev.Piece(index=index, begin=begin, data=data), now)
            self.uploaded_bytes += len(data)
            self.choker.record(peer, uploaded=len(data), now=now)

    def piece_checked(self, index: int, ok: bool, now: float) -> None:
        """The driver hash-checked (and, if good, stored) piece ``index``."""
        picker = self.picker
        assert picker is not None
        if ok:
            for other, blocks in picker.piece_verified(index).items():
                other_state = self.peers.get(other)
                for block in blocks:
                    if other_state is not None and (block.index, block.begin, block.length) \
                            in other_state.conn.requested():
                        self._send(other, ev.Cancel(index=block.index, begin=block.begin,
                                                    length=block.length), now)
            self.verified_bytes += self._piece_lengths[index]
            # BEP 3: "'have' messages [...] the index which that downloader just completed and
            # checked the hash of" (a peer we have not sent our first message yet gets it in
            # its bitfield).
            for peer, state in self.peers.items():
                if state.conn.our_state == ESTABLISHED:
                    self._send(peer, ev.Have(index=index), now)
            if picker.is_complete and self.completed_at is None:
                self.completed_at = now
            for peer in list(self.peers):
                self._update_interest(peer, now)
            return
        self.failed_pieces += 1
        for peer in picker.piece_failed(index):
            state = self.peers.get(peer)
            if state is None:
                continue
            state.hash_failures += 1
            if state.hash_failures >= MAX_HASH_FAILURES:
                self._drop(peer, f"sent data for {state.hash_failures} pieces that failed "
                                 "their hash check", now, ban=True)
        for peer in list(self.peers):
            self._fill_requests(peer, now)

    # -----------------------------------------------------------------------------------------
    # Deciding

    def _update_interest(self, peer: Peer, now: float) -> None:
        state = self.peers.get(peer)
        if state is None or self.picker is None or not _ready(state.conn):
            return
        conn = state.conn
        wanted = self.picker.interested_in(peer)
        if wanted and not conn.am_interested:
            self._send(peer, ev.Interested(), now)
        elif not wanted and conn.am_interested:
            self._send(peer, ev.NotInterested(), now)
        if wanted:
            self._fill_requests(peer, now)

    def _fill_requests(self, peer: Peer, now: float) -> None:
        """Top up ``peer``'s request pipeline, once, just before its bytes are written
        (:meth:`data_to_send`): one refill for all the blocks a read brought in."""
        self._refill[peer] = now

    def _request_more(self, peer: Peer, now: float) -> None:
        state = self.peers.get(peer)
        picker = self.picker
        if state is None or picker is None or picker.is_complete:
            return
        conn = state.conn
        if not _ready(conn):
            return
        room = conn.can_request
        if room <= 0:
            return
        allowed: set[int] | None = None
        if conn.peer_choking:
            if not conn.allowed_fast:
                return
            allowed = set(conn.allowed_fast)
        # Memory bound: every started piece is buffered until its hash check, so at most
        # MAX_BUFFERED_BYTES of pieces are started at once; beyond that, finish started ones.
        room_for = max(MAX_BUFFERED_BYTES // max(self._longest_piece, 1), 1) - len(self._started)
        if room_for <= 0:
            allowed = set(self._started) if allowed is None else allowed & self._started.keys()
        if self._requestable is not None:
            allowed = set(self._requestable) if allowed is None else allowed & \
                self._requestable
        wanted = []
        for block in picker.pick(peer, room, allowed=allowed):
            if block.index not in self._started:
                if room_for <= 0:
                    picker.request_failed(peer, block)  # back to the pool, not sent
                    continue
                room_for -= 1
                self._started[block.index] = None
            wanted.append((block.index, block.begin, block.length))
        if wanted:
            state.out.append(conn.send_requests(wanted, now))

    def _apply_choke(self, decision: Any, now: float) -> None:
        for peer in decision.choke:
            state = self.peers.get(peer)
            if state is not None and not state.conn.am_choking and _ready(state.conn):
                self._send(peer, ev.Choke(), now)
        for peer in decision.unchoke:
            state = self.peers.get(peer)
            if state is not None and state.conn.am_choking and _ready(state.conn):
                self._send(peer, ev.Unchoke(), now)

    # -----------------------------------------------------------------------------------------
    # Time

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work."""
        times = [t for t in (s.conn.get_timer() for s in self.peers.values()) if t is not None]
        times.append(self.choker.next_round())
        if any(s.pex is not None for s in self.peers.values()):
            times.append(self._next_pex)
        return min(times)

    def handle_timer(self, now: float) -> None:
        """Run what is due: connection timers, the choker's round."""
        for peer, state in list(self.peers.items()):
            timer = state.conn.get_timer()
            if timer is not None and timer <= now:
                state.conn.handle_timer(now)
                self._drain(peer, now)
        if self.choker.next_round() <= now:
            self._apply_choke(self.choker.run(now, seeding=self.complete), now)
        if self._next_pex <= now:
            self._next_pex = now + PEX_INTERVAL
            self._exchange_peers(now)

    def _exchange_peers(self, now: float) -> None:
        """BEP 11: tell each ut_pex peer about our other established connections."""
        known = {}
        for peer, state in self.peers.items():
            if state.listen_address is not None and _ready(state.conn):
                seed = bool(state.conn.peer_has_all or (
                    state.conn.peer_pieces is not None and all(state.conn.peer_pieces)))
                try:
                    known[peer] = PexPeer(ip=state.listen_address[0],
                                          port=state.listen_address[1],
                                          flags=PeerFlags(seed=seed, outgoing=state.outgoing,
                                                          utp=state.utp))
                except P2PKitError:
                    continue  # a host name, not an address: not shareable in compact form
        for peer, state in list(self.peers.items()):
            if state.pex is None or not _ready(state.conn):
                continue
            payload = state.pex.next_message(known.values(), now=now, exclude=known.get(peer))
            if payload is not None:
                message = decode_extended("ut_pex", payload)
                self._send(peer, ev.ExtensionMessage(name="ut_pex", message=message), now)

    def _drain(self, peer: Peer, now: float) -> None:
        state = self.peers.get(peer)
        if state is None:
            return
        conn = state.conn
        received = conn.downloaded
        try:
            while (event := conn.next_event()) is not NEED_DATA:
                self._on_event(peer, state, event, now)
                if peer not in self.peers:
                    return
        except (RemoteProtocolError, ParseError) as e:
            self._drop(peer, f"protocol error: {e}", now)
            return
        if conn.downloaded != received:  # block bytes this read brought, for the choker
            self.choker.record(peer, downloaded=conn.downloaded - received, now=now)

    # -----------------------------------------------------------------------------------------
    # Reporting

    def left(self) -> int:
        """Bytes still to download (for tracker announces), padding included as an estimate."""
        if self.picker is None:
            return 0
        return sum(n for i, n in enumerate(self._piece_lengths) if not self.picker.has_piece(i))

    def connected(self) -> Iterable[Peer]:
        return list(self.peers)

    @property
    def downloaded(self) -> int:
        return self.verified_bytes

    def peer_address(self, peer: Peer) -> tuple[str, int] | None:
        state = self.peers.get(peer)
        return state.address if state else None


def _ready(conn: PeerConnection) -> bool:
    """Both handshakes done and our first message (bitfield / have all / have none) sent:
    only then may choke, interest and requests flow (BEP 3, BEP 6 "only immediately after the
    handshake")."""
    return conn.our_state == ESTABLISHED and conn.their_handshake is not None


def _hash_fields(event: ev.HashRequest) -> dict[str, Any]:
    return dict(pieces_root=event.pieces_root, base_layer=event.base_layer, index=event.index,
                length=event.length, proof_layers=event.proof_layers)


def _ignore(session: TorrentSession, peer: Peer, state: _PeerState, event: ev.Event,
            now: float) -> None:
    """Events the session has nothing to do about (keep-alives, suggestions …)."""


#: Event class -> TorrentSession handler, filled on first use.
_HANDLERS: dict[type, Any] = {}
