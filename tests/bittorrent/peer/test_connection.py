"""The sans-I/O peer connection: pairs of connections talking, and libtorrent's real traffic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.connection import (
    IDLE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    MAX_PEER_REQUESTS,
    NEED_DATA,
    REQUEST_TIMEOUT,
    PeerConnection,
)
from p2pkit.bittorrent.peer.connection_state import CLOSED, ESTABLISHED, TRANSITIONS
from p2pkit.bittorrent.wire.bitfield import decode_bitfield, encode_bitfield
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.core import Event, NeedData, StreamCore, StreamPair
from p2pkit.errors import LocalProtocolError, ParseError, RemoteProtocolError
from tests.pcap_payloads import tcp_segments

INFO_HASH = bytes(range(20))
PIECES = 10
PIECE_LENGTH = 65536


def piece_length(index: int) -> int:
    return PIECE_LENGTH if index < PIECES - 1 else 1000


def events(conn: PeerConnection) -> list:
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
    return out


class ConnectionPair(StreamPair):
    """Two connections joined by :class:`p2pkit.core.StreamPair` (h11's ConnectionPair), after
    their handshakes. ``a_to_b`` returns what ``b`` saw; what ``a`` saw meanwhile (answers ``b``
    wrote by itself, such as BEP 6 rejects) waits for :meth:`flush`."""

    def __init__(self, *, fast: bool = True, extensions: bool = True) -> None:
        super().__init__(PeerConnection(piece_count=PIECES, piece_length=piece_length),
                         PeerConnection(piece_count=PIECES, piece_length=piece_length))
        self.a, self.b = self.ends
        self._held: tuple[list, list] = ([], [])
        self.a_to_b(ev.Handshake(info_hash=INFO_HASH, peer_id=b"A" * 20, fast=fast,
                                 extension_protocol=extensions))
        self.b_to_a(ev.Handshake(info_hash=INFO_HASH, peer_id=b"B" * 20, fast=fast,
                                 extension_protocol=extensions))

    def _exchange(self, side: int, sent: tuple[ev.Event, ...], now: float | None) -> list:
        if now is not None:
            self.net.run(until=now)
        for event in sent:
            self.send(side, event)
        got = self.run()
        self._held[side].extend(got[side])
        return got[1 - side]

    def a_to_b(self, *sent: ev.Event, now: float | None = None) -> list:
        return self._exchange(0, sent, now)

    def b_to_a(self, *sent: ev.Event, now: float | None = None) -> list:
        return self._exchange(1, sent, now)

    def flush(self) -> tuple[list, list]:
        """Events either end saw that an exchange did not return: (at a, at b)."""
        self.run()
        held = (list(self._held[0]), list(self._held[1]))
        self._held[0].clear()
        self._held[1].clear()
        return held


def test_a_connection_is_a_stream_core_with_the_shared_sentinel():
    conn = PeerConnection()
    assert isinstance(conn, StreamCore)
    assert isinstance(conn.next_event(), NeedData)
    assert all(issubclass(cls, Event) for cls in (ev.Handshake, ev.Piece, ev.RequestsVoided))


def test_handshake_negotiates_fast_and_extensions():
    p = ConnectionPair()
    assert p.a.fast and p.b.fast and p.a.extension_protocol
    assert p.a.their_handshake.peer_id == b"B" * 20
    assert ConnectionPair(fast=False).a.fast is False
    half = ConnectionPair(extensions=False)
    with pytest.raises(LocalProtocolError):
        half.a.send(ev.ExtensionHandshake(m={"ut_metadata": 1}), 0.0)


def test_wrong_info_hash_closes():
    a, b = PeerConnection(), PeerConnection()
    b.send(ev.Handshake(info_hash=INFO_HASH, peer_id=b"B" * 20), 0.0)
    b.receive_data(a.send(ev.Handshake(info_hash=bytes(20), peer_id=b"A" * 20), 0.0), 0.0)
    with pytest.raises(RemoteProtocolError, match="info-hash"):
        b.next_event()
    assert b.closed


def test_bitfield_only_first_and_checked():
    p = ConnectionPair()
    have = bytearray(PIECES)
    have[3] = have[9] = 1
    got = p.a_to_b(ev.Bitfield(bitfield=encode_bitfield(have)))
    assert got == [ev.Bitfield(bitfield=encode_bitfield(have))]
    assert p.b.peer_pieces == have and p.b.their_state == ESTABLISHED
    assert p.b.peer_has(9) and not p.b.peer_has(8)
    with pytest.raises(LocalProtocolError):
        p.a.send(ev.Bitfield(bitfield=encode_bitfield(have)), 0.0)
    # A second bitfield breaks BEP 3 ("only ever sent as the first message"), but aria2 1.36
    # sends one: it replaces the peer's piece set and is counted.
    have[5] = 1
    p.b.receive_data(PeerMessage.build(dict(type="bitfield", bitfield=encode_bitfield(have))), 0.0)
    assert p.b.next_event() == ev.Bitfield(bitfield=encode_bitfield(have))
    assert p.b.peer_has(5) and p.b.late_bitfields == 1
    # have_all too (aria2 announces completion so); have_none makes no sense late: refused.
    p.b.receive_data(PeerMessage.build(dict(type="have_all")), 0.0)
    assert p.b.next_event() == ev.HaveAll() and p.b.peer_has(8) and p.b.late_bitfields == 2
    p.b.receive_data(PeerMessage.build(dict(type="have_none")), 0.0)
    with pytest.raises(RemoteProtocolError, match="HaveNone not allowed"):
        p.b.next_event()


@pytest.mark.parametrize("payload", [b"\xff", b"\xff\xc1", b"\xff\xc0\x00"])
def test_bad_bitfields_close(payload):
    p = ConnectionPair()
    p.b.receive_data(PeerMessage.build(dict(type="bitfield", bitfield=payload)), 0.0)
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        p.b.next_event()


def test_extension_handshake_may_precede_bitfield():
    """µTorrent and Transmission send the BEP 10 handshake before the bitfield."""
    p = ConnectionPair()
    p.a_to_b(ev.ExtensionHandshake(m={"ut_metadata": 3}, items={"metadata_size": 100}))
    assert p.b.their_extensions == {"ut_metadata": 3}
    assert p.b.their_extension_items["metadata_size"] == 100
    assert p.a_to_b(ev.HaveAll()) == [ev.HaveAll()]
    assert p.b.peer_has(PIECES - 1)


def test_fast_only_messages_need_the_fast_bit():
    p = ConnectionPair(fast=False)
    with pytest.raises(LocalProtocolError):
        p.a.send(ev.HaveAll(), 0.0)
    p.b.receive_data(PeerMessage.build(dict(type="have_all")), 0.0)
    with pytest.raises(RemoteProtocolError, match="BEP 6"):
        p.b.next_event()


def test_request_piece_pipeline():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke())
    p.a_to_b(ev.HaveNone(), ev.Interested())
    requests = [ev.Request(index=2, begin=b, length=16384) for b in (0, 16384, 32768)]
    assert p.a_to_b(*requests) == requests
    assert p.a.outstanding == 3 and list(p.b.peer_requests) == [r.block for r in requests]
    got = p.b_to_a(ev.Piece(index=2, begin=16384, data=b"x" * 16384))
    assert got == [ev.Piece(index=2, begin=16384, data=b"x" * 16384)]
    assert p.a.outstanding == 2 and p.a.downloaded == 16384 and p.b.uploaded == 16384
    with pytest.raises(LocalProtocolError, match="not requested"):
        p.b.send(ev.Piece(index=2, begin=16384, data=b"x" * 16384), 0.0)
    with pytest.raises(LocalProtocolError, match="already requested"):
        p.a.send(requests[0], 0.0)
    with pytest.raises(LocalProtocolError, match="beyond piece"):
        p.a.send(ev.Request(index=PIECES - 1, begin=0, length=16384), 0.0)


def test_out_of_range_request_closes():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke())
    p.b.receive_data(PeerMessage.build(dict(type="request", index=PIECES, begin=0,
                                            length=16384)), 0.0)
    p.a.receive_data(PeerMessage.build(dict(type="request", index=PIECES, begin=0,
                                            length=16384)), 0.0)
    with pytest.raises(RemoteProtocolError, match="piece 10 of a 10-piece"):
        p.a.next_event()


def test_unrequested_piece_closes_with_fast_and_is_dropped_without():
    p = ConnectionPair()
    p.a.receive_data(PeerMessage.build(dict(type="piece", index=1, begin=0, piece=b"z" * 10)), 0.0)
    with pytest.raises(RemoteProtocolError, match="never requested"):
        p.a.next_event()
    q = ConnectionPair(fast=False)
    q.a.receive_data(PeerMessage.build(dict(type="piece", index=1, begin=0, piece=b"z" * 10)), 0.0)
    assert events(q.a) == [] and q.a.unrequested_bytes == 10 and not q.a.closed


def test_choke_voids_requests_only_without_fast():
    for fast in (False, True):
        p = ConnectionPair(fast=fast)
        p.b_to_a(ev.Bitfield(bitfield=encode_bitfield([1] * PIECES)), ev.Unchoke())
        p.a_to_b(ev.Request(index=0, begin=0, length=16384))
        got = p.b_to_a(ev.Choke())
        if fast:
            # BEP 6: the choker "MUST reject all requests" it will not serve.
            assert got == [ev.Choke(), ev.RejectRequest(index=0, begin=0, length=16384)]
        else:
            assert got == [ev.Choke(), ev.RequestsVoided(blocks=((0, 0, 16384),),
                                                         reason="choked")]
        assert p.a.outstanding == 0 and not p.b.peer_requests


def test_requests_while_choked_get_rejects_except_allowed_fast():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.AllowedFast(index=4))
    assert p.a.allowed_fast == {4}
    got = p.a_to_b(ev.HaveNone(), ev.Request(index=4, begin=0, length=16384),
                   ev.Request(index=5, begin=0, length=16384))
    assert [type(e) for e in got] == [ev.HaveNone, ev.Request, ev.Request]
    assert list(p.b.peer_requests) == [(4, 0, 16384)]
    assert p.flush()[0] == [ev.RejectRequest(index=5, begin=0, length=16384)]


def test_cancel_with_fast_is_answered_by_a_reject():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke())
    p.a_to_b(ev.HaveNone(), ev.Request(index=1, begin=0, length=16384))
    p.send(0, ev.Cancel(index=1, begin=0, length=16384))
    assert p.a.outstanding == 1  # BEP 6: still owed exactly one answer
    at_a, at_b = p.run()
    assert at_b == [ev.Cancel(index=1, begin=0, length=16384)]
    assert at_a == [ev.RejectRequest(index=1, begin=0, length=16384)]
    assert p.a.outstanding == 0


def test_reject_for_a_request_never_sent_closes():
    p = ConnectionPair()
    p.a.receive_data(PeerMessage.build(dict(type="reject_request", index=1, begin=0,
                                            length=16384)), 0.0)
    with pytest.raises(RemoteProtocolError, match="never requested"):
        p.a.next_event()


def test_request_flood_closes():
    p = ConnectionPair()
    p.a_to_b(ev.HaveAll(), ev.Unchoke())
    flood = b"".join(PeerMessage.build(dict(type="request", index=i, begin=b * 16, length=16))
                     for i in range(PIECES - 1)
                     for b in range(MAX_PEER_REQUESTS // (PIECES - 1) + 1))
    p.a.receive_data(flood, 0.0)
    with pytest.raises(RemoteProtocolError, match="requests outstanding"):
        events(p.a)


def test_extension_messages_by_name():
    p = ConnectionPair()
    p.a_to_b(ev.ExtensionHandshake(m={"ut_metadata": 3}))
    p.b_to_a(ev.ExtensionHandshake(m={"ut_metadata": 7, "ut_pex": 1}))
    assert p.a.their_extensions == {"ut_metadata": 7, "ut_pex": 1}
    got = p.a_to_b(ev.ExtensionMessage(name="ut_metadata",
                                       message=dict(msg_type="request", piece=0)))
    assert got[0].name == "ut_metadata" and got[0].message.msg_type == "request"
    data = p.a.send(ev.ExtensionMessage(name="ut_metadata", message=dict(msg_type="request",
                                                                         piece=1)), 0.0)
    assert data[5] == 7  # the id the receiver chose
    with pytest.raises(LocalProtocolError, match="does not support"):
        p.b.send(ev.ExtensionMessage(name="ut_pex", message={}), 0.0)


def test_timers_keepalive_idle_and_request_timeout():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke(), now=0.0)
    p.a_to_b(ev.HaveNone(), ev.Interested(), ev.Request(index=0, begin=0, length=16384), now=0.0)
    assert p.a.get_timer() == REQUEST_TIMEOUT
    p.a.handle_timer(REQUEST_TIMEOUT)
    assert events(p.a) == [ev.RequestsVoided(blocks=((0, 0, 16384),), reason="timeout")]
    cancel = p.a.data_to_send()
    assert PeerMessage.parse(cancel).type == "cancel"
    assert p.a.get_timer() == IDLE_TIMEOUT  # the cancel counts as sending: no keep-alive due
    assert p.b.get_timer() == KEEPALIVE_INTERVAL
    p.b.handle_timer(KEEPALIVE_INTERVAL)
    assert p.b.data_to_send() == b"\x00\x00\x00\x00"
    p.a.handle_timer(IDLE_TIMEOUT)
    assert events(p.a) == [ev.ConnectionClosed(reason="nothing received for 180 s",
                                               by_peer=False)]
    assert p.a.get_timer() is None


def test_eof_closes_and_voids():
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke())
    p.a_to_b(ev.HaveNone(), ev.Request(index=3, begin=0, length=16384))
    p.a.receive_data(b"", 0.0)
    assert events(p.a) == [ev.RequestsVoided(blocks=((3, 0, 16384),), reason="closed"),
                           ev.ConnectionClosed(reason="closed by peer", by_peer=True)]
    assert p.a.our_state == CLOSED
    with pytest.raises(LocalProtocolError):
        p.a.send(ev.Interested(), 0.0)


def test_magnet_geometry_learnt_later():
    a = PeerConnection()
    b = PeerConnection()
    b.receive_data(a.send(ev.Handshake(info_hash=INFO_HASH, peer_id=b"A" * 20), 0.0), 0.0)
    a.receive_data(b.send(ev.Handshake(info_hash=INFO_HASH, peer_id=b"B" * 20), 0.0), 0.0)
    bits = bytearray(PIECES)
    bits[2] = 1
    b.receive_data(a.send(ev.Bitfield(bitfield=encode_bitfield(bits)), 0.0) +
                   a.send(ev.Have(index=7), 0.0), 0.0)
    events(b)
    b.set_torrent(PIECES, piece_length)
    assert [i for i in range(PIECES) if b.peer_has(i)] == [2, 7]
    c = PeerConnection()
    hello = PeerConnection().send(ev.Handshake(info_hash=INFO_HASH, peer_id=b"C" * 20), 0.0)
    c.receive_data(hello, 0.0)
    c.receive_data(PeerMessage.build(dict(type="bitfield", bitfield=b"\xff\xff")), 0.0)
    events(c)
    with pytest.raises(RemoteProtocolError, match="bitfield"):
        c.set_torrent(PIECES, piece_length)


def test_transitions_table_covers_every_event():
    names = {name for name in dir(ev) if isinstance(getattr(ev, name), type)
             and issubclass(getattr(ev, name), ev.Event) and name != "Event"}
    named = {name for row in TRANSITIONS.values() for name in row}
    assert {"Handshake", "Bitfield", "HaveAll", "HaveNone", "ConnectionClosed"} <= named
    assert named - {"*"} <= names


def test_bitfield_round_trip_and_errors():
    for n in (0, 1, 7, 8, 9, 100):
        bits = bytearray((i * 7) % 3 == 0 for i in range(n))
        assert decode_bitfield(encode_bitfield(bits), n) == bits
    with pytest.raises(ParseError):
        decode_bitfield(b"\x00", 9)


# ---- real traffic: replay libtorrent 2.0.8's connections ----------------------------------


def message_event(msg, their_names: dict[int, str]) -> ev.Event:
    """What the recorded side did, as the event it would give ``send()``."""
    kind = msg.get("type", "handshake")
    if kind == "handshake":
        r = msg.reserved
        return ev.Handshake(info_hash=msg.info_hash, peer_id=msg.peer_id,
                            extension_protocol=r.extension_protocol, fast=r.fast, dht=r.dht,
                            v2_upgrade=r.v2_upgrade, unknown_bits=r.unknown)
    if kind == "extended":
        from p2pkit.bittorrent.wire.extensions import decode_extended
        if msg.extended_id == 0:
            items = dict(decode_extended("handshake", msg.payload))
            return ev.ExtensionHandshake(m=items.pop("m", {}), items=items)
        name = their_names[msg.extended_id]
        return ev.ExtensionMessage(name=name, message=decode_extended(name, msg.payload))
    simple = {"keep_alive": ev.KeepAlive, "choke": ev.Choke, "unchoke": ev.Unchoke,
              "interested": ev.Interested, "not_interested": ev.NotInterested,
              "have_all": ev.HaveAll, "have_none": ev.HaveNone}
    if kind in simple:
        return simple[kind]()
    if kind == "bitfield":
        return ev.Bitfield(bitfield=msg.bitfield)
    if kind == "piece":
        return ev.Piece(index=msg.index, begin=msg.begin, data=msg.piece)
    if kind == "port":
        return ev.Port(port=msg.port)
    if kind in ("hash_request", "hashes", "hash_reject"):
        fields = {k: msg[k] for k in ("pieces_root", "base_layer", "index", "length",
                                      "proof_layers")}
        if kind == "hashes":
            return ev.Hashes(**fields, hashes=tuple(msg.hashes))
        return (ev.HashRequest if kind == "hash_request" else ev.HashReject)(**fields)
    cls = {"have": ev.Have, "suggest_piece": ev.SuggestPiece, "allowed_fast": ev.AllowedFast,
           "request": ev.Request, "cancel": ev.Cancel, "reject_request": ev.RejectRequest}[kind]
    return cls(**{k: msg[k] for k in ("index", "begin", "length") if k in msg})


BT02 = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
#: (capture, the side replayed through send(), the other side, fed to receive_data()).
REPLAYS = {
    # libtorrent 2.0.8 to libtorrent 2.0.8: either side.
    "libtorrent-downloader": (BT02, "127.0.0.3", ("127.0.0.2", 6881)),
    "libtorrent-seeder": (BT02, ("127.0.0.2", 6881), "127.0.0.3"),
    # libtorrent 2.0.8 downloading a v2 torrent from a magnet: hash_request, then hashes.
    "libtorrent-v2-downloader": ("bt-05-libtorrent-v2-magnet.pcap", "127.0.0.3",
                                 ("127.0.0.2", 6881)),
    "libtorrent-v2-seeder": ("bt-05-libtorrent-v2-magnet.pcap", ("127.0.0.2", 6881),
                             "127.0.0.3"),
    # p2pkit downloading from a libtorrent seeder, and seeding to aria2 1.36 (whose stream has
    # a second bitfield mid-stream).
    "from-libtorrent": ("bt-06-p2pkit-leech-libtorrent.pcap", "127.0.0.3", ("127.0.0.2", 6881)),
    "to-aria2": ("bt-07-p2pkit-seed-aria2.pcap", "127.0.0.3", ("127.0.0.2", 6881)),
}


def endpoint(segments, spec):
    """The first (ip, port) in the capture matching ``spec`` (an IP, or an exact endpoint)."""
    for src, dst, _ in segments:
        for end in (src, dst):
            if end == spec or end[0] == spec:
                return end
    raise AssertionError(spec)


@pytest.mark.parametrize("replay", sorted(REPLAYS))
def test_replaying_real_connections_reproduces_their_bytes(replay):
    """Play one side of a recorded connection through ``send()`` and feed the other side's
    bytes to ``receive_data()``, in capture order: every message that side sent is rebuilt byte
    for byte, and every message it received is accepted (each piece matches a request)."""
    capture, us_spec, them_spec = REPLAYS[replay]
    segments = tcp_segments(capture)
    them = endpoint(segments, them_spec)
    us = next(src for src, dst, _ in segments if dst == them and (
        src == us_spec or src[0] == us_spec))
    conn = PeerConnection()
    ours = MessageFramer(handshake=True)
    received = []
    sent = []
    for src, dst, payload in segments:
        if (src, dst) == (us, them):
            for frame in ours.feed(payload):
                names = {v: k for k, v in conn.their_extensions.items()}
                event = message_event(frame.message, names)
                if isinstance(event, ev.Piece):  # answering a request we received
                    assert event.block in conn.peer_requests
                data = conn.send(event, 0.0)
                assert data == frame.data
                sent.append(type(event).__name__)
        elif (src, dst) == (them, us):
            conn.receive_data(payload, 0.0)
            received += events(conn)
    kinds = {type(e).__name__ for e in received}
    assert len(sent) > 3 and "Handshake" in kinds and "ExtensionHandshake" in kinds
    if conn.downloaded:
        assert conn.downloaded > 200_000 and "Piece" in kinds and "Request" in sent
    else:
        assert conn.uploaded > 200_000 and "Request" in kinds and "Piece" in sent
    if replay.startswith("libtorrent-v2"):
        assert {"HashRequest", "Hashes"} <= kinds | set(sent)
    if replay == "to-aria2":
        assert conn.late_bitfields == 3  # two bitfields and a have_all after the first message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_handshake_raise_only_remote_protocol_error(data):
    p = ConnectionPair()
    p.b.receive_data(data, 0.0)
    try:
        events(p.b)
    except RemoteProtocolError:
        assert p.b.closed


@pytest.mark.parametrize("kind", ["cancel", "reject_request", "request"])
def test_zero_length_block_messages_are_the_peers_mistake(kind):
    p = ConnectionPair()
    p.b.receive_data(PeerMessage.build(dict(type=kind, index=0, begin=0, length=0)), 0.0)
    with pytest.raises(RemoteProtocolError):
        events(p.b)
    assert p.b.closed


def test_send_requests_is_send_request_in_bulk():
    p, q = ConnectionPair(), ConnectionPair()
    for pair in (p, q):
        pair.b_to_a(ev.HaveAll(), ev.Unchoke())
        pair.a_to_b(ev.HaveNone())
    blocks = [(1, 0, 16384), (1, 16384, 16384), (PIECES - 1, 0, 1000)]
    bulk = p.a.send_requests(blocks, now=5.0)
    one_by_one = b"".join(q.a.send(ev.Request(index=i, begin=b, length=n), 5.0)
                          for i, b, n in blocks)
    assert bulk == one_by_one and p.a.outstanding == q.a.outstanding == 3
    assert p.a.get_timer() == q.a.get_timer()
    with pytest.raises(LocalProtocolError, match="already requested"):
        p.a.send_requests([(1, 0, 16384)], 0.0)
    with pytest.raises(LocalProtocolError, match="beyond piece"):
        p.a.send_requests([(PIECES - 1, 0, 16384)], 0.0)
    with pytest.raises(LocalProtocolError, match="cannot send requests"):
        PeerConnection().send_requests([(0, 0, 16384)], 0.0)


# ---- the send table --------------------------------------------------------------------------


def test_send_table_covers_every_wire_message_and_only_events_one_sends():
    from p2pkit.bittorrent.peer.connection import _ENCODINGS
    from p2pkit.bittorrent.wire.messages import MESSAGES

    sent_messages = {encoding.message for encoding in _ENCODINGS.values()}
    assert sent_messages == {name for name, _ in MESSAGES.values()} | {"handshake",
                                                                       "keep_alive"}
    p = ConnectionPair()
    for not_a_message in (ev.RequestsVoided(blocks=(), reason="closed"),
                          ev.ConnectionClosed(reason="x", by_peer=False)):
        with pytest.raises(LocalProtocolError, match="not a message"):
            p.a.send(not_a_message, 0.0)


def _snapshot(conn: PeerConnection) -> tuple:
    return (conn.our_state, conn.am_choking, conn.am_interested, dict(conn._sent),
            dict(conn.peer_requests), set(conn.allowed_fast_sent), conn.uploaded,
            set(conn._hash_requests), set(conn.peer_hash_requests), dict(conn.our_extensions),
            conn.last_sent, conn.our_handshake)


@pytest.mark.parametrize(("fast", "event", "match"), [
    (False, ev.HaveAll(), "fast extension"),  # BEP 6: only with the bit on both sides
    (False, ev.RejectRequest(index=0, begin=0, length=16384), "fast extension"),
    (False, ev.SuggestPiece(index=0), "fast extension"),
    (False, ev.AllowedFast(index=0), "fast extension"),
    (True, ev.AllowedFast(index=PIECES), "10-piece torrent"),
    (True, ev.Have(index=PIECES), "10-piece torrent"),
    (True, ev.Bitfield(bitfield=b"\xff\xff"), "bitfield is wrong"),  # spare bits set
    (True, ev.Piece(index=0, begin=0, data=b"x"), "not requested"),
    (True, ev.Cancel(index=0, begin=0, length=16384), "not outstanding"),
    (True, ev.Hashes(pieces_root=bytes(32), base_layer=0, index=0, length=2, proof_layers=0),
     "no such hash request"),  # BEP 52: MUST correlate with a hash request
    (True, ev.HashRequest(pieces_root=bytes(32), base_layer=0, index=0, length=1024,
                          proof_layers=0), "SHOULD NOT be greater than 512"),
    (True, ev.ExtensionMessage(name="ut_pex", message={}), "does not support"),
])
def test_a_refused_send_changes_nothing(fast, event, match):
    p = ConnectionPair(fast=fast)
    before = _snapshot(p.a)
    with pytest.raises(LocalProtocolError, match=match):
        p.a.send(event, 50.0)
    assert _snapshot(p.a) == before and p.a.data_to_send() == b""


def test_choke_is_sent_before_the_rejects_it_owes():
    p = ConnectionPair()
    p.b_to_a(ev.HaveNone(), ev.Interested())
    p.a_to_b(ev.HaveAll(), ev.Unchoke(), ev.AllowedFast(index=3))
    p.b_to_a(ev.Request(index=1, begin=0, length=16384), ev.Request(index=3, begin=0,
                                                                     length=16384))
    data = p.a.send(ev.Choke(), 1.0)
    framer = MessageFramer(handshake=False)
    # BEP 6: "A peer SHOULD choke first and then reject requests"; the allowed fast one stays
    assert [(f.message.type, f.message.get("index")) for f in framer.feed(data)] == [
        ("choke", None), ("reject_request", 1)]
    assert list(p.a.peer_requests) == [(3, 0, 16384)]


@pytest.mark.parametrize("length, reason", [
    (0, "request for 0 bytes (BEP 3: a request asks for a block of at least one byte)"),
    (1 << 20, "more than 16 KiB"),
])
def test_bad_request_length_gets_its_own_reason(length, reason):
    """Issue 13: a 0-byte request was refused as "more than 16 KiB"."""
    p = ConnectionPair()
    p.b_to_a(ev.HaveAll(), ev.Unchoke())
    p.a.receive_data(PeerMessage.build(dict(type="request", index=0, begin=0,
                                            length=length)), 0.0)
    with pytest.raises(RemoteProtocolError) as raised:
        p.a.next_event()
    assert reason in str(raised.value)
    assert length != 0 or "16 KiB" not in str(raised.value)


def test_unknown_ut_metadata_msg_type_is_ignored():
    """BEP 9: "In order to support future extensability, an unrecognized message ID MUST be
    ignored." A malformed ut_metadata message (piece not an integer) still closes."""
    p = ConnectionPair()
    p.a_to_b(ev.ExtensionHandshake(m={"ut_metadata": 3}))
    p.b_to_a(ev.ExtensionHandshake(m={"ut_metadata": 7}))
    unknown = PeerMessage.build(dict(type="extended", extended_id=7,
                                     payload=b"d8:msg_typei7e5:piecei0ee"))
    p.b.receive_data(unknown, 0.0)
    assert events(p.b) == []
    got = p.a_to_b(ev.ExtensionMessage(name="ut_metadata",
                                       message=dict(msg_type="request", piece=0)))
    assert got[0].message.msg_type == "request"  # the connection goes on
    broken = PeerMessage.build(dict(type="extended", extended_id=7,
                                    payload=b"d8:msg_typei0e5:piece1:xe"))
    p.b.receive_data(broken, 0.0)
    with pytest.raises(RemoteProtocolError, match="bad ut_metadata"):
        events(p.b)
