"""One BitTorrent peer connection as a sans-I/O state machine.

Specs: BEP 3 §peer protocol (handshake, choking and interest, request/piece/cancel,
keep-alives), BEP 5 (``port``), BEP 6 §Fast Extension (have all/none, reject request, allowed
fast, suggest piece, "every request is guaranteed to result in EXACTLY ONE response"), BEP 10
§extension protocol.

The shape is h11's and :class:`p2pkit.core.StreamCore`'s: bytes in with
:meth:`PeerConnection.receive_data` (``b""`` is EOF), events out with
:meth:`~PeerConnection.next_event` (:data:`~p2pkit.core.NEED_DATA` when the buffer holds no
complete message), our events in with :meth:`~PeerConnection.send`, which returns the bytes to
write.
Bytes the connection decides to send by itself (a ``reject_request`` owed under BEP 6, a
keep-alive, cancels after a request timeout) wait in :meth:`~PeerConnection.data_to_send`.
Time comes in as ``now`` (seconds, any monotonic origin); :meth:`~PeerConnection.get_timer` says
when :meth:`~PeerConnection.handle_timer` wants to run. Nothing here touches a socket or a clock.

The connection keeps what BEP 3 says each side must remember: the four flags ``am_choking``,
``am_interested``, ``peer_choking``, ``peer_interested`` ("Connections start out choked and not
interested"), the pieces the peer has, the requests we sent and are still owed (the request
pipeline, at most ``max_outstanding`` deep), and the requests the peer sent us and is owed.
Which blocks to request, whom to unchoke and what to read from disk are the session's business.

A peer's mistake raises :class:`~p2pkit.errors.RemoteProtocolError` from ``next_event()`` (after
the events before it) and closes the connection; ours raises
:class:`~p2pkit.errors.LocalProtocolError` from ``send()``.

Two connections talking to each other, as :class:`PeerConnection` pairs do in the tests:

>>> from p2pkit.bittorrent.peer import events as ev
>>> a = PeerConnection(piece_count=4, piece_length=lambda i: 32768)
>>> b = PeerConnection(piece_count=4, piece_length=lambda i: 32768)
>>> b.receive_data(a.send(ev.Handshake(info_hash=bytes(20), peer_id=b"A" * 20), 0.0), 0.0)
>>> b.next_event()
Handshake(info_hash=b'...', peer_id=b'AAAAAAAAAAAAAAAAAAAA', extension_protocol=True, fast=True, dht=False, v2_upgrade=False, unknown_bits=0)
>>> a.receive_data(b.send(ev.Handshake(info_hash=bytes(20), peer_id=b"B" * 20), 0.0), 0.0)
>>> a.next_event().peer_id, a.fast
(b'BBBBBBBBBBBBBBBBBBBB', True)
>>> b.receive_data(a.send(ev.HaveNone(), 0.1) + a.send(ev.Interested(), 0.1), 0.1)
>>> b.next_event(), b.next_event(), b.peer_interested
(HaveNone(), Interested(), True)
>>> b.receive_data(a.send(ev.Request(index=1, begin=0, length=16384), 0.2), 0.2)
>>> b.next_event()  # b chokes a, and the fast extension obliges b to say no (BEP 6)
Request(index=1, begin=0, length=16384)
>>> a.receive_data(b.data_to_send(), 0.3)
>>> a.next_event(), a.outstanding
(RejectRequest(index=1, begin=0, length=16384), 0)

Sending is one table (``_ENCODINGS``): each event type maps to its wire message, the
fields copied from the event, the precondition checks (each quoting the BEP rule it keeps) and
the bookkeeping done once the bytes are built. The module stays one module because receiving and
sending are the two halves of one state machine over the same flags, pipelines and states.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.connection_state import (
    AWAIT_HANDSHAKE,
    CLOSED,
    ESTABLISHED,
    TRANSITIONS,
    next_state,
)
from p2pkit.bittorrent.wire.bitfield import decode_bitfield
from p2pkit.bittorrent.wire.extensions import decode_extended, encode_extended
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.messages import MESSAGES, Handshake, PeerMessage
from p2pkit.core import NEED_DATA, NeedData
from p2pkit.deviations import deviations_of
from p2pkit.errors import LocalProtocolError, ParseError, RemoteProtocolError

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "IDLE_TIMEOUT",
    "KEEPALIVE_INTERVAL",
    "MAX_PEER_REQUESTS",
    "NEED_DATA",
    "REQUEST_TIMEOUT",
    "PeerConnection",
]

#: BEP 3: "Keepalives are generally sent once every two minutes".
KEEPALIVE_INTERVAL = 120.0
#: Nothing received for this long (a keep-alive is overdue by a minute): the peer is gone.
IDLE_TIMEOUT = 180.0
#: A peer that has not completed the handshake by then is dropped.
HANDSHAKE_TIMEOUT = 30.0
#: Requests outstanding with no block arriving for this long are voided ("snubbed").
REQUEST_TIMEOUT = 60.0
#: BEP 6: "If a peer receives an excessive number of requests [...] MAY close the connection".
#: libtorrent's default ``max_allowed_in_request_queue`` is 2000.
MAX_PEER_REQUESTS = 2000
#: Request pipeline depth when the session does not choose one (libtorrent starts near this).
DEFAULT_MAX_OUTSTANDING = 64


_REQUEST_BUILD = PeerMessage.build

#: Messages that only exist with the fast extension (BEP 6: "When the fast extension is
#: disabled, if a peer receives [one] the peer MUST close the connection").
_FAST_ONLY = frozenset({"have_all", "have_none", "suggest_piece", "reject_request",
                        "allowed_fast"})


@dataclass(slots=True)
class _Sent:
    """A request we sent: when, and whether we since cancelled it (BEP 6 still owes an answer)."""

    at: float
    cancelled: bool = False


class PeerConnection:
    """One connection to one peer (see the module docstring).

    ``piece_count`` and ``piece_length(index)`` bound every index, ``begin`` and ``length`` the
    peer sends; both may be left out until the torrent is known (a magnet download learns them
    from the metadata; call :meth:`set_torrent` then). Our BEP 10 ``m`` (extension name -> the
    id the peer must use when sending it to us) is whatever :class:`~.events.ExtensionHandshake`
    we send. ``max_outstanding`` is the request pipeline's depth.
    """

    def __init__(self, *, piece_count: int | None = None,
                 piece_length: Callable[[int], int] | None = None,
                 max_outstanding: int = DEFAULT_MAX_OUTSTANDING, now: float = 0.0) -> None:
        self.our_state = AWAIT_HANDSHAKE
        self.their_state = AWAIT_HANDSHAKE
        # BEP 3: "Connections start out choked and not interested."
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        self.max_outstanding = max_outstanding
        self.our_handshake: ev.Handshake | None = None
        self.their_handshake: ev.Handshake | None = None
        #: BEP 10 ``m`` each side sent (name -> id); ``their_extensions`` gives the ids to send.
        self.our_extensions: dict[str, int] = {}
        self.their_extensions: dict[str, int] = {}
        self.their_extension_items: dict[str, Any] = {}
        self._our_extension_names: dict[int, str] = {}
        #: The peer's pieces, one byte (0/1) per piece, once the piece count is known.
        self.peer_pieces: bytearray | None = None
        self.peer_has_all = False
        self._pending_bitfield: bytes | None = None
        self._pending_haves: list[int] = []
        #: BEP 6 allowed fast sets: indices the peer lets us request while choked, and ours.
        self.allowed_fast: set[int] = set()
        self.allowed_fast_sent: set[int] = set()
        #: BEP 6 suggest piece hints received, newest last.
        self.suggested: list[int] = []
        self._sent: dict[tuple[int, int, int], _Sent] = {}
        self._cancelled = 0  # entries of _sent we cancelled (BEP 6: still owed an answer)
        #: Requests the peer sent that we still owe a piece (or, BEP 6, a reject) for.
        self.peer_requests: dict[tuple[int, int, int], None] = {}
        #: BEP 52 hash requests: ours awaiting hashes or a reject, and the peer's we owe.
        self._hash_requests: set[tuple[bytes, int, int, int, int]] = set()
        self.peer_hash_requests: set[tuple[bytes, int, int, int, int]] = set()
        self.piece_count = piece_count
        self._piece_length = piece_length
        #: BEP 52: the truncated v2 info-hash a hybrid torrent's peer may answer our v1
        #: handshake with (set by the session when ours has the upgrade bit).
        self.upgrade_info_hash: bytes | None = None
        self._framer = MessageFramer(handshake=True)
        self._events: deque[ev.Event] = deque()
        self._error: RemoteProtocolError | None = None
        self._outgoing: list[bytes] = []
        self.closed_reason: str | None = None
        self.created = now
        self.last_received = now
        self.last_sent = now
        self.last_block = now
        #: When the request pipeline last went from empty to not empty.
        self._pipeline_since = now
        #: Payload bytes (block data) counted for rates and the choker, and wasted bytes.
        self.downloaded = 0
        self.uploaded = 0
        self.unrequested_bytes = 0
        #: bitfield / have_all received after the first message (BEP 3 and BEP 6 say "only"
        #: first; tolerated because aria2 1.36 sends them).
        self.late_bitfields = 0

    # -----------------------------------------------------------------------------------------
    # What was negotiated

    @property
    def fast(self) -> bool:
        """BEP 6: the fast extension is on when both handshakes set its bit."""
        return bool(self.our_handshake and self.their_handshake and self.our_handshake.fast
                    and self.their_handshake.fast)

    @property
    def extension_protocol(self) -> bool:
        """BEP 10: extended messages are allowed when both handshakes set its bit."""
        return bool(self.our_handshake and self.their_handshake
                    and self.our_handshake.extension_protocol
                    and self.their_handshake.extension_protocol)

    @property
    def outstanding(self) -> int:
        """Requests we sent that are still owed an answer (the pipeline's fill)."""
        return len(self._sent)

    @property
    def can_request(self) -> int:
        """How many more requests the pipeline takes (while ``peer_choking``, only
        :attr:`allowed_fast` pieces are worth asking for, BEP 6)."""
        return max(self.max_outstanding - len(self._sent), 0)

    def requested(self) -> list[tuple[int, int, int]]:
        """Blocks we asked for and have not received, cancelled ones excluded."""
        return [block for block, sent in self._sent.items() if not sent.cancelled]

    def peer_has(self, index: int) -> bool:
        if self.peer_has_all:
            return True
        return bool(self.peer_pieces is not None and self.peer_pieces[index])

    @property
    def closed(self) -> bool:
        return self.our_state == CLOSED

    # -----------------------------------------------------------------------------------------
    # Torrent geometry

    def set_torrent(self, piece_count: int, piece_length: Callable[[int], int]) -> None:
        """Learn the torrent's geometry (after a magnet's metadata arrived); the peer's
        bitfield and haves received so far are checked now and a bad one raises
        :class:`RemoteProtocolError`."""
        self.piece_count = piece_count
        self._piece_length = piece_length
        if self._pending_bitfield is not None:
            self.peer_pieces = self._decode_bitfield(self._pending_bitfield)
        elif self.peer_pieces is None:
            self.peer_pieces = bytearray(piece_count)
        for index in self._pending_haves:
            self._check_index(index, "have")
            self.peer_pieces[index] = 1
        self._pending_bitfield = None
        self._pending_haves.clear()

    def _decode_bitfield(self, data: bytes) -> bytearray:
        assert self.piece_count is not None
        try:
            return decode_bitfield(data, self.piece_count)
        except ParseError as e:
            raise self._fail(f"bad bitfield: {e}") from None

    def _check_index(self, index: int, what: str) -> None:
        if self.piece_count is not None and index >= self.piece_count:
            raise self._fail(f"{what} for piece {index} of a {self.piece_count}-piece torrent")

    def _check_block(self, index: int, begin: int, length: int, what: str) -> None:
        self._check_index(index, what)
        if self._piece_length is not None and begin + length > self._piece_length(index):
            raise self._fail(f"{what} for bytes {begin}..{begin + length} of piece {index}, "
                             f"which has {self._piece_length(index)}")

    # -----------------------------------------------------------------------------------------
    # Receiving

    def receive_data(self, data: bytes, now: float) -> None:
        """Add bytes received from the peer (``b""``: the peer closed the connection)."""
        if self.their_state == CLOSED or self._error is not None:
            return
        self.last_received = now
        if not data:
            self._close("closed by peer", by_peer=True)
            return
        try:
            frames = self._framer.feed(data)
        except ParseError as e:
            self._error = self._fail(str(e))
            return
        try:
            for frame in frames:
                self._on_message(frame.message, now)
        except RemoteProtocolError as e:
            self._error = e
        except LocalProtocolError as e:  # an event refused the peer's values (a zero length…)
            self._error = self._fail(f"bad message from the peer: {e}")

    def next_event(self) -> ev.Event | NeedData:
        """The next event, or :data:`NEED_DATA`; raises :class:`RemoteProtocolError` once the
        events before the peer's mistake are consumed."""
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            if self.our_state != CLOSED:
                self._close(self._error.args[0], by_peer=False, announce=False)
            raise self._error
        return NEED_DATA

    def _fail(self, reason: str) -> RemoteProtocolError:
        return RemoteProtocolError(reason)

    def _move_theirs(self, name: str) -> None:
        target = next_state(self.their_state, name)
        if target is None:
            raise self._fail(f"{name} not allowed in state {self.their_state}")
        self.their_state = target

    def _on_message(self, msg: Any, now: float) -> None:
        kind = msg.get("type", "handshake")
        handler = _RECEIVERS.get(kind)
        if handler is None:
            raise self._fail(f"{kind} messages are not supported here")
        if kind in _FAST_ONLY and not self.fast:
            raise self._fail(f"{kind} without the fast extension (BEP 6: MUST close)")
        handler(self, msg, now)

    def _push(self, event: ev.Event) -> None:
        self._move_theirs(type(event).__name__)
        self._events.append(event)

    def _on_handshake(self, msg: Any, now: float) -> None:
        r = msg.reserved
        event = ev.Handshake(info_hash=msg.info_hash, peer_id=msg.peer_id,
                             extension_protocol=r.extension_protocol, fast=r.fast, dht=r.dht,
                             v2_upgrade=r.v2_upgrade, unknown_bits=r.unknown)
        # BEP 3: "If a peer receives a handshake with an info_hash it is not currently serving,
        # then it must drop the connection." BEP 52 §Upgrade Path: to our v1 hash with the
        # upgrade bit "The remote peer may then respond with the new infohash".
        upgraded = (self.our_handshake is not None and self.our_handshake.v2_upgrade
                    and self.upgrade_info_hash is not None
                    and msg.info_hash == self.upgrade_info_hash)
        if self.our_handshake is not None and msg.info_hash != self.our_handshake.info_hash \
                and not upgraded:
            raise self._fail(f"handshake for info-hash {msg.info_hash.hex()}, not "
                             f"{self.our_handshake.info_hash.hex()}")
        self.their_handshake = event
        self._push(event)

    def _on_keep_alive(self, msg: Any, now: float) -> None:
        self._push(ev.KeepAlive())

    def _on_choke(self, msg: Any, now: float) -> None:
        self.peer_choking = True
        self._push(ev.Choke())
        # BEP 6: "Choke no longer implicitly rejects all pending requests"; without it, it does.
        if not self.fast and self._sent:
            voided = tuple(self._sent)
            self._sent.clear()
            self._cancelled = 0
            self._events.append(ev.RequestsVoided(blocks=voided, reason="choked"))

    def _on_unchoke(self, msg: Any, now: float) -> None:
        self.peer_choking = False
        self._push(ev.Unchoke())

    def _on_interested(self, msg: Any, now: float) -> None:
        self.peer_interested = True
        self._push(ev.Interested())

    def _on_not_interested(self, msg: Any, now: float) -> None:
        self.peer_interested = False
        self._push(ev.NotInterested())

    def _on_have(self, msg: Any, now: float) -> None:
        index = msg.index
        self._check_index(index, "have")
        if self.peer_pieces is not None:
            self.peer_pieces[index] = 1
        elif self.piece_count is None:
            self._pending_haves.append(index)
        else:
            self.peer_pieces = bytearray(self.piece_count)
            self.peer_pieces[index] = 1
        self._push(ev.Have(index=index))

    def _on_bitfield(self, msg: Any, now: float) -> None:
        event = ev.Bitfield(bitfield=msg.bitfield)
        if self.their_state == ESTABLISHED:
            # BEP 3: "'bitfield' is only ever sent as the first message", but aria2 1.36 sends
            # more mid-stream (after have_none and requests, in place of haves) and a have_all
            # when it completes; libtorrent takes them as the peer's new piece set, and so do
            # we, counting them in ``late_bitfields``.
            self.late_bitfields += 1
        else:
            self._move_theirs("Bitfield")
        if self.piece_count is None:
            self._pending_bitfield = msg.bitfield
        else:
            self.peer_pieces = self._decode_bitfield(msg.bitfield)
        self._events.append(event)

    def _on_have_all(self, msg: Any, now: float) -> None:
        if self.their_state == ESTABLISHED:
            # aria2 1.36 again: it announces its completion with a have_all (see _on_bitfield).
            self.late_bitfields += 1
        else:
            self._move_theirs("HaveAll")
        self.peer_has_all = True
        if self.piece_count is not None:
            self.peer_pieces = bytearray(b"\x01") * self.piece_count
        self._events.append(ev.HaveAll())

    def _on_have_none(self, msg: Any, now: float) -> None:
        self._move_theirs("HaveNone")
        if self.piece_count is not None:
            self.peer_pieces = bytearray(self.piece_count)
        self._events.append(ev.HaveNone())

    def _on_request(self, msg: Any, now: float) -> None:
        index, begin, length = msg.index, msg.begin, msg.length
        if length <= 0:
            raise self._fail(f"request for {length} bytes (BEP 3: a request asks for a block "
                             "of at least one byte)")
        if length > ev.MAX_REQUEST_LENGTH:
            raise self._fail(f"request for {length} bytes (BEP 3: implementations close "
                             "connections which request more than 16 KiB; p2pkit allows "
                             f"{ev.MAX_REQUEST_LENGTH})")
        self._check_block(index, begin, length, "request")
        event = ev.Request(index=index, begin=begin, length=length)
        self._move_theirs("Request")
        block = (index, begin, length)
        if self.am_choking and index not in self.allowed_fast_sent:
            # BEP 3: requests from a choked peer are discarded; BEP 6: "the peer receiving the
            # request SHOULD send a reject unless the piece is in the allowed fast set."
            if self.fast:
                self._queue(PeerMessage.build(dict(type="reject_request", index=index,
                                                   begin=begin, length=length)))
            self._events.append(event)
            return
        if block not in self.peer_requests:
            if len(self.peer_requests) >= MAX_PEER_REQUESTS:
                raise self._fail(f"more than {MAX_PEER_REQUESTS} requests outstanding")
            self.peer_requests[block] = None
        self._events.append(event)

    def _on_cancel(self, msg: Any, now: float) -> None:
        block = (msg.index, msg.begin, msg.length)
        event = ev.Cancel(index=msg.index, begin=msg.begin, length=msg.length)
        self._move_theirs("Cancel")
        if block in self.peer_requests:
            del self.peer_requests[block]
            # BEP 6: "the peer receiving the cancel should respond with either the
            # corresponding reject or the corresponding piece".
            if self.fast:
                self._queue(PeerMessage.build(dict(type="reject_request", index=msg.index,
                                                   begin=msg.begin, length=msg.length)))
        self._events.append(event)

    def _on_piece(self, msg: Any, now: float) -> None:
        data = msg["piece"]
        block = (msg["index"], msg["begin"], len(data))
        sent = self._sent.pop(block, None)
        if sent is None:
            # BEP 6: "if a peer receives a piece that was never requested, the peer MUST close
            # the connection." Without it, a piece racing our cancel is normal: drop the bytes.
            if self.fast:
                raise self._fail(f"piece {block} that was never requested")
            self.unrequested_bytes += len(data)
            self._move_theirs("Piece")
            return
        if sent.cancelled:
            self._cancelled -= 1
        self.downloaded += len(data)
        self.last_block = now
        event = ev.Piece(index=block[0], begin=block[1], data=data)
        if self.their_state != ESTABLISHED:  # ESTABLISHED --piece--> ESTABLISHED
            self._move_theirs("Piece")
        self._events.append(event)

    def _on_port(self, msg: Any, now: float) -> None:
        self._push(ev.Port(port=msg.port))

    def _on_suggest_piece(self, msg: Any, now: float) -> None:
        self._check_index(msg.index, "suggest_piece")
        self.suggested.append(msg.index)
        del self.suggested[:-64]
        self._push(ev.SuggestPiece(index=msg.index))

    def _on_reject_request(self, msg: Any, now: float) -> None:
        block = (msg.index, msg.begin, msg.length)
        # BEP 6: "If a peer receives a reject for a request that was never sent then the peer
        # SHOULD close the connection."
        sent = self._sent.pop(block, None)
        if sent is None:
            raise self._fail(f"reject_request for {block}, which was never requested")
        if sent.cancelled:
            self._cancelled -= 1
        self._push(ev.RejectRequest(index=msg.index, begin=msg.begin, length=msg.length))

    def _on_allowed_fast(self, msg: Any, now: float) -> None:
        # BEP 6: "The receiver MUST NOT interpret an Allowed Fast message as meaning that the
        # sender has the piece."; an index beyond the torrent is the sender's bug, ignored.
        if self.piece_count is None or msg.index < self.piece_count:
            self.allowed_fast.add(msg.index)
        self._push(ev.AllowedFast(index=msg.index))

    def _on_extended(self, msg: Any, now: float) -> None:
        if not self.extension_protocol:
            raise self._fail("extended message without the BEP 10 reserved bit on both sides")
        if msg.extended_id == 0:
            try:
                items = dict(decode_extended("handshake", msg.payload))
            except ParseError as e:
                raise self._fail(f"bad extension handshake: {e}") from None
            names = items.pop("m", {}) or {}
            # BEP 10: "the peer may update the set of messages it supports" by sending another
            # handshake; ids absent from the update are unchanged, 0 disables.
            for name, mid in names.items():
                if isinstance(name, str) and isinstance(mid, int):
                    self.their_extensions[name] = mid
            self.their_extensions = {k: v for k, v in self.their_extensions.items() if v}
            self.their_extension_items.update(items)
            self._push(ev.ExtensionHandshake(m=dict(self.their_extensions), items=items))
            return
        name = self._our_extension_names.get(msg.extended_id)
        if name is None:
            # An id we never offered: not ours to judge (BEP 10 leaves it undefined); ignored.
            return
        try:
            message = decode_extended(name, msg.payload)
        except ParseError as e:
            if name == "ut_metadata" and _unknown_msg_type(msg.payload):
                # BEP 9 §extension message: "In order to support future extensability, an
                # unrecognized message ID MUST be ignored."
                return
            raise self._fail(f"bad {name} message: {e}") from None
        self._push(ev.ExtensionMessage(name=name, message=message))

    def _on_hash_request(self, msg: Any, now: float) -> None:
        # BEP 52: "Hash requests MUST be answered with either a 'hashes' or 'hash reject'
        # message": the session answers (it knows the piece layers).
        event = ev.HashRequest(**_hash_fields(msg))
        if len(self.peer_hash_requests) >= MAX_PEER_REQUESTS:
            raise self._fail(f"more than {MAX_PEER_REQUESTS} hash requests outstanding")
        self.peer_hash_requests.add(event.key)
        self._push(event)

    def _on_hashes(self, msg: Any, now: float) -> None:
        event = ev.Hashes(**_hash_fields(msg), hashes=tuple(msg.hashes))
        # BEP 52: "This message MUST correlate with a 'hash request' message."
        if event.key not in self._hash_requests:
            raise self._fail("hashes that were never requested")
        self._hash_requests.discard(event.key)
        self._push(event)

    def _on_hash_reject(self, msg: Any, now: float) -> None:
        event = ev.HashReject(**_hash_fields(msg))
        if event.key not in self._hash_requests:
            raise self._fail("hash reject for a hash request never sent")
        self._hash_requests.discard(event.key)
        self._push(event)

    # -----------------------------------------------------------------------------------------
    # Sending

    def send(self, event: ev.Event, now: float) -> bytes:
        """Apply our ``event`` and return the bytes to write (queued bytes first).

        How each event goes on the wire, and what must hold before it may, is one row of
        ``_ENCODINGS``; a refused event raises :class:`LocalProtocolError` and changes
        nothing."""
        if self.our_state == CLOSED:
            raise LocalProtocolError("the connection is closed")
        encoding = _ENCODINGS.get(type(event))
        if encoding is None:
            raise LocalProtocolError(f"{type(event).__name__} is not a message one sends")
        target = _NEXT_STATE[self.our_state, encoding.name]
        if target is None:
            raise LocalProtocolError(f"cannot send {encoding.name} in state {self.our_state}")
        for check in encoding.checks:
            check(self, event)
        data = encoding.build(self, event)
        if encoding.effect is not None:
            after = encoding.effect(self, event, now)
            if after:
                data += after
        self.our_state = target
        self.last_sent = now
        if self._outgoing:
            self._outgoing.append(data)
            data = b"".join(self._outgoing)
            self._outgoing.clear()
        return data

    def send_requests(self, blocks: Iterable[tuple[int, int, int]], now: float) -> bytes:
        """``send(Request(...))`` for each ``(index, begin, length)``, in one call: the same
        checks and bookkeeping, the bytes of all the requests (the download's hot path)."""
        if self.our_state != ESTABLISHED:
            raise LocalProtocolError(f"cannot send requests in state {self.our_state}")
        build = _REQUEST_BUILD
        out = []
        for index, begin, length in blocks:
            if not 0 < length <= ev.MAX_REQUEST_LENGTH:
                raise LocalProtocolError(f"request length must be 1..{ev.MAX_REQUEST_LENGTH}"
                                         f", not {length}")
            _check_own_block(self, index, begin, length)
            _record_request(self, (index, begin, length), now)
            out.append(build({"type": "request", "index": index, "begin": begin,
                              "length": length}))
        if out:
            self.last_sent = now
        if self._outgoing:
            out[:0] = self._outgoing
            self._outgoing.clear()
        return b"".join(out)

    def data_to_send(self) -> bytes:
        """Bytes the connection queued by itself (rejects, keep-alives, cancels)."""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def _queue(self, data: bytes) -> None:
        self._outgoing.append(data)

    # -----------------------------------------------------------------------------------------
    # Closing and timers

    def close(self, reason: str = "closed") -> None:
        """We close the connection; outstanding requests are voided (as events)."""
        if self.our_state != CLOSED:
            self._close(reason, by_peer=False)

    def _close(self, reason: str, *, by_peer: bool, announce: bool = True) -> None:
        self.our_state = self.their_state = CLOSED
        self.closed_reason = reason
        live = tuple(block for block, sent in self._sent.items() if not sent.cancelled)
        if announce and live:
            self._events.append(ev.RequestsVoided(blocks=live, reason="closed"))
        if announce:
            self._events.append(ev.ConnectionClosed(reason=reason, by_peer=by_peer))
        self._sent.clear()
        self._cancelled = 0
        self.peer_requests.clear()

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work: a keep-alive, a timeout."""
        if self.our_state == CLOSED:
            return None
        if self.their_state == AWAIT_HANDSHAKE:
            return self.created + HANDSHAKE_TIMEOUT
        deadline = min(self.last_sent + KEEPALIVE_INTERVAL, self.last_received + IDLE_TIMEOUT)
        if len(self._sent) > self._cancelled:
            # The pipeline has been waiting since its last block or since it was last empty.
            deadline = min(deadline, max(self.last_block, self._pipeline_since) +
                           REQUEST_TIMEOUT)
        return deadline

    def handle_timer(self, now: float) -> None:
        """Do what is due at ``now``: time out a silent peer, void requests it sits on (with
        cancels), send a keep-alive. New events and bytes wait in ``next_event()`` and
        :meth:`data_to_send`."""
        if self.our_state == CLOSED:
            return
        if self.their_state == AWAIT_HANDSHAKE and now >= self.created + HANDSHAKE_TIMEOUT:
            self._close("no handshake in time", by_peer=False)
            return
        if now >= self.last_received + IDLE_TIMEOUT:
            self._close(f"nothing received for {IDLE_TIMEOUT:.0f} s", by_peer=False)
            return
        if len(self._sent) > self._cancelled and \
                now >= max(self.last_block, self._pipeline_since) + REQUEST_TIMEOUT:
            live = [block for block, s in self._sent.items() if not s.cancelled]
            for block in live:
                self._queue(self.send(ev.Cancel(index=block[0], begin=block[1],
                                                length=block[2]), now))
            self._events.append(ev.RequestsVoided(blocks=tuple(live), reason="timeout"))
        if self.our_state != AWAIT_HANDSHAKE and now >= self.last_sent + KEEPALIVE_INTERVAL:
            self._queue(self.send(ev.KeepAlive(), now))


#: Message type -> PeerConnection receive handler (``_on_<type>``), for every message of
#: :data:`~p2pkit.bittorrent.wire.messages.MESSAGES` the connection handles, and the handshake.
_RECEIVERS = {kind: getattr(PeerConnection, "_on_" + kind)
              for kind in ("handshake", "keep_alive", *(name for name, _ in MESSAGES.values()))
              if hasattr(PeerConnection, "_on_" + kind)}


def _hash_fields(msg: Any) -> dict[str, Any]:
    """The five fields BEP 52's hash request, hashes and hash reject share."""
    return {name: getattr(msg, name) if not isinstance(msg, dict) else msg[name]
            for name in ("pieces_root", "base_layer", "index", "length", "proof_layers")}


# ---------------------------------------------------------------------------------------------
# The send table: event type -> (wire message, field mapping, precondition checks, effect).
# A check raises LocalProtocolError and runs before anything changes; an effect updates the
# connection's bookkeeping once the message is built and may return bytes that follow it.

_Check = Callable[[PeerConnection, Any], None]
_Effect = Callable[[PeerConnection, Any, float], "bytes | None"]
#: (wire field, event attribute) pairs, or a function of the connection and the event giving
#: the wire fields.
_Fields = tuple[tuple[str, str], ...] | Callable[[PeerConnection, Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Encoding:
    """How one event class is sent: its message, fields, preconditions and bookkeeping."""

    event: type[ev.Event]
    name: str  # the event class name, the key of the transitions table
    message: str  # the wire message (a name of MESSAGES, or "handshake" / "keep_alive")
    build: Callable[[PeerConnection, Any], bytes]
    checks: tuple[_Check, ...]
    effect: _Effect | None


def _encoding(event: type[ev.Event], message: str, fields: _Fields = (),
              checks: tuple[_Check, ...] = (), effect: _Effect | None = None) -> _Encoding:
    """One row of the send table, its builder made once: the handshake has its own schema,
    every other message is a :data:`PeerMessage` whose fields are copied from the event (or
    computed), a message without fields is built once."""
    if message == "handshake":
        assert callable(fields)
        field_function = fields

        def build(conn: PeerConnection, e: Any) -> bytes:
            return Handshake.build(field_function(conn, e))
    elif callable(fields):
        computed = fields

        def build(conn: PeerConnection, e: Any) -> bytes:
            return PeerMessage.build({"type": message, **computed(conn, e)})
    elif fields:
        pairs = fields

        def build(conn: PeerConnection, e: Any) -> bytes:
            wire = {"type": message}
            for name, attribute in pairs:
                wire[name] = getattr(e, attribute)
            return PeerMessage.build(wire)
    else:
        constant = PeerMessage.build({"type": message})

        def build(conn: PeerConnection, e: Any) -> bytes:
            return constant
    return _Encoding(event=event, name=event.__name__, message=message, build=build, checks=checks,
                     effect=effect)


# -- precondition checks -------------------------------------------------------------------


def _check_own_index(conn: PeerConnection, index: int) -> None:
    if conn.piece_count is not None and index >= conn.piece_count:
        raise LocalProtocolError(f"piece {index} of a {conn.piece_count}-piece torrent")


def _check_own_block(conn: PeerConnection, index: int, begin: int, length: int) -> None:
    _check_own_index(conn, index)
    if conn._piece_length is not None and begin + length > conn._piece_length(index):
        raise LocalProtocolError(f"bytes {begin}..{begin + length} are beyond piece {index}")


def _own_index(conn: PeerConnection, event: Any) -> None:
    # BEP 3: have "the index which that downloader just completed"; BEP 6 suggest and allowed
    # fast name pieces of the torrent too.
    _check_own_index(conn, event.index)


def _own_block(conn: PeerConnection, event: ev.Request) -> None:
    # BEP 3: a request names "an index, begin, and length" inside one piece.
    _check_own_block(conn, event.index, event.begin, event.length)


def _own_bitfield(conn: PeerConnection, event: ev.Bitfield) -> None:
    # BEP 3: "Spare bits at the end are set to zero"; one bit per piece, no more bytes.
    if conn.piece_count is not None:
        try:
            decode_bitfield(event.bitfield, conn.piece_count)
        except ParseError as e:
            raise LocalProtocolError(f"our bitfield is wrong: {e.reason}") from None


def _fast(conn: PeerConnection, event: Any) -> None:
    # BEP 6: the fast messages are only valid "if the peer and the local client both support
    # the Fast Extension" (both handshakes carry its bit).
    if not conn.fast:
        raise LocalProtocolError(f"{type(event).__name__} needs the fast extension on both "
                                 "sides (BEP 6)")


def _extensions(conn: PeerConnection, event: Any) -> None:
    # BEP 10: extended messages are sent only when both peers set "reserved_byte[5] & 0x10".
    if not conn.extension_protocol:
        raise LocalProtocolError("extended messages need the BEP 10 bit on both sides")


def _peer_supports(conn: PeerConnection, event: ev.ExtensionMessage) -> None:
    # BEP 10: a message is sent with the id the peer's "m" gave it; "If the value is 0, the
    # message is disabled" (and a name missing from "m" is not supported).
    if not conn.their_extensions.get(event.name):
        raise LocalProtocolError(f"the peer does not support {event.name}")


def _same_info_hash(conn: PeerConnection, event: ev.Handshake) -> None:
    # BEP 3: the receiving side answers with the info-hash it was asked for, else it "must
    # drop the connection".
    if conn.their_handshake is not None and event.info_hash != conn.their_handshake.info_hash:
        raise LocalProtocolError("our handshake must carry the info-hash the peer asked for")


def _not_requested(conn: PeerConnection, event: ev.Request) -> None:
    # BEP 6: "every request is guaranteed to result in EXACTLY ONE response"; a second request
    # for the same block could not be told apart from the first.
    if event.block in conn._sent:
        raise LocalProtocolError(f"block {event.block} is already requested from this peer")


def _outstanding(conn: PeerConnection, event: ev.Cancel) -> None:
    # BEP 3: "'cancel' [...] used to cancel block requests" that were sent.
    if event.block not in conn._sent:
        raise LocalProtocolError(f"cancel for {event.block}, which is not outstanding")


def _requested_by_peer(conn: PeerConnection, event: ev.Piece) -> None:
    # BEP 6: "if a peer receives a piece that was never requested, the peer MUST close the
    # connection": never send one the peer did not ask for (or cancelled).
    if event.block not in conn.peer_requests:
        raise LocalProtocolError(f"piece {event.block} was not requested (or was cancelled)")


def _unknown_msg_type(payload: bytes) -> bool:
    """Whether a ``ut_metadata`` payload the strict schema refused is otherwise whole and
    only names a ``msg_type`` BEP 9 does not define (an integer outside 0-2): read with the
    lenient schema, whose deviations say what was wrong."""
    try:
        message = decode_extended("ut_metadata", payload, strict=False)
    except ParseError:
        return False
    return isinstance(message.get("msg_type"), int) and all(
        d.rule == "bittorrent/ut_metadata/wrong-type" and d.message.startswith("msg_type ")
        for d in deviations_of(message))


def _hash_request_length(conn: PeerConnection, event: ev.HashRequest) -> None:
    # BEP 52: "Length SHOULD NOT be greater than 512."
    if event.length > ev.MAX_HASH_REQUEST_LENGTH:
        raise LocalProtocolError(f"BEP 52: length SHOULD NOT be greater than "
                                 f"{ev.MAX_HASH_REQUEST_LENGTH}")


def _owed_hash_request(conn: PeerConnection, event: ev.HashRequest) -> None:
    # BEP 52: hashes and hash reject answer a hash request: "This message MUST correlate with
    # a 'hash request' message".
    if event.key not in conn.peer_hash_requests:
        raise LocalProtocolError("no such hash request from the peer")


# -- effects (bookkeeping once the message is built) ---------------------------------------


def _record_request(conn: PeerConnection, block: tuple[int, int, int], now: float) -> None:
    if block in conn._sent:
        raise LocalProtocolError(f"block {block} is already requested from this peer")
    if len(conn._sent) == conn._cancelled:
        conn._pipeline_since = now  # the pipeline was empty until now
    conn._sent[block] = _Sent(at=now)


def _requested(conn: PeerConnection, event: ev.Request, now: float) -> None:
    _record_request(conn, event.block, now)


def _cancelled(conn: PeerConnection, event: ev.Cancel, now: float) -> None:
    # BEP 6: after a cancel the peer still answers with the piece or a reject; without the
    # fast extension nothing more is owed.
    if conn.fast:
        conn._sent[event.block].cancelled = True
        conn._cancelled += 1
    else:
        del conn._sent[event.block]


def _choked(conn: PeerConnection, event: ev.Choke, now: float) -> bytes:
    conn.am_choking = True
    owed = [block for block in conn.peer_requests if block[0] not in conn.allowed_fast_sent]
    for block in owed:
        del conn.peer_requests[block]
    # BEP 6: "If a peer sends a choke, it MUST reject all requests from the peer to whom the
    # choke was sent except [...] the allowed fast set. A peer SHOULD choke first and then
    # reject requests". Without the extension the choke itself discards them (BEP 3).
    if not conn.fast:
        return b""
    return b"".join(PeerMessage.build({"type": "reject_request", "index": i, "begin": b,
                                       "length": n}) for i, b, n in owed)


def _flag(attribute: str, value: bool) -> _Effect:
    def effect(conn: PeerConnection, event: Any, now: float) -> None:
        setattr(conn, attribute, value)
    return effect


def _rejected(conn: PeerConnection, event: ev.RejectRequest, now: float) -> None:
    conn.peer_requests.pop(event.block, None)


def _served(conn: PeerConnection, event: ev.Piece, now: float) -> None:
    del conn.peer_requests[event.block]
    conn.uploaded += len(event.data)


def _hash_requested(conn: PeerConnection, event: ev.HashRequest, now: float) -> None:
    conn._hash_requests.add(event.key)


def _hash_answered(conn: PeerConnection, event: ev.HashRequest, now: float) -> None:
    conn.peer_hash_requests.discard(event.key)


def _allowed_fast_sent(conn: PeerConnection, event: ev.AllowedFast, now: float) -> None:
    conn.allowed_fast_sent.add(event.index)


def _handshake_sent(conn: PeerConnection, event: ev.Handshake, now: float) -> None:
    conn.our_handshake = event


def _extensions_offered(conn: PeerConnection, event: ev.ExtensionHandshake,
                        now: float) -> None:
    # BEP 10: a later handshake updates "m"; ids absent from it are unchanged, 0 disables.
    conn.our_extensions.update(event.m)
    conn.our_extensions = {k: v for k, v in conn.our_extensions.items() if v}
    conn._our_extension_names = {mid: name for name, mid in conn.our_extensions.items()}


# -- computed fields -------------------------------------------------------------------------


def _handshake_fields(conn: PeerConnection, event: ev.Handshake) -> dict[str, Any]:
    reserved = {"extension_protocol": event.extension_protocol, "fast": event.fast,
                "dht": event.dht, "v2_upgrade": event.v2_upgrade, "unknown": event.unknown_bits}
    return {"reserved": reserved, "info_hash": event.info_hash, "peer_id": event.peer_id}


def _extension_handshake_fields(conn: PeerConnection,
                                event: ev.ExtensionHandshake) -> dict[str, Any]:
    # BEP 10: "extended message ID. 0 = handshake".
    return {"extended_id": 0,
            "payload": encode_extended("handshake", {"m": dict(event.m), **event.items})}


def _extension_message_fields(conn: PeerConnection,
                              event: ev.ExtensionMessage) -> dict[str, Any]:
    return {"extended_id": conn.their_extensions[event.name],
            "payload": encode_extended(event.name, event.message)}


_INDEX = (("index", "index"),)
_BLOCK = (("index", "index"), ("begin", "begin"), ("length", "length"))
_PIECE = (("index", "index"), ("begin", "begin"), ("piece", "data"))
_HASH = tuple((name, name) for name in ("pieces_root", "base_layer", "index", "length",
                                        "proof_layers"))

#: Event type -> how :meth:`PeerConnection.send` puts it on the wire: (event, wire message,
#: fields, precondition checks, effect).
_ENCODINGS: dict[type[ev.Event], _Encoding] = {e.event: e for e in (
    _encoding(ev.Handshake, "handshake", _handshake_fields, (_same_info_hash,),
              _handshake_sent),
    _encoding(ev.KeepAlive, "keep_alive"),
    _encoding(ev.Choke, "choke", (), (), _choked),
    _encoding(ev.Unchoke, "unchoke", (), (), _flag("am_choking", False)),
    _encoding(ev.Interested, "interested", (), (), _flag("am_interested", True)),
    _encoding(ev.NotInterested, "not_interested", (), (), _flag("am_interested", False)),
    _encoding(ev.Have, "have", _INDEX, (_own_index,)),
    _encoding(ev.Bitfield, "bitfield", (("bitfield", "bitfield"),), (_own_bitfield,)),
    _encoding(ev.HaveAll, "have_all", (), (_fast,)),
    _encoding(ev.HaveNone, "have_none", (), (_fast,)),
    _encoding(ev.Request, "request", _BLOCK, (_own_block, _not_requested), _requested),
    _encoding(ev.Cancel, "cancel", _BLOCK, (_outstanding,), _cancelled),
    _encoding(ev.RejectRequest, "reject_request", _BLOCK, (_fast,), _rejected),
    _encoding(ev.Piece, "piece", _PIECE, (_requested_by_peer,), _served),
    _encoding(ev.Port, "port", (("port", "port"),)),
    _encoding(ev.SuggestPiece, "suggest_piece", _INDEX, (_fast, _own_index)),
    _encoding(ev.AllowedFast, "allowed_fast", _INDEX, (_fast, _own_index),
              _allowed_fast_sent),
    _encoding(ev.HashRequest, "hash_request", _HASH, (_hash_request_length,),
              _hash_requested),
    _encoding(ev.Hashes, "hashes", (*_HASH, ("hashes", "hashes")), (_owed_hash_request,),
              _hash_answered),
    _encoding(ev.HashReject, "hash_reject", _HASH, (_owed_hash_request,), _hash_answered),
    _encoding(ev.ExtensionHandshake, "extended", _extension_handshake_fields, (_extensions,),
              _extensions_offered),
    _encoding(ev.ExtensionMessage, "extended", _extension_message_fields,
              (_extensions, _peer_supports)),
)}

#: (our state, event name) -> the state after sending it, read once from the transitions table.
_NEXT_STATE: dict[tuple[str, str], str | None] = {
    (state, encoding.name): next_state(state, encoding.name)
    for state in TRANSITIONS for encoding in _ENCODINGS.values()}
