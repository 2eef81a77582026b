"""The tracker core driven directly (no sockets): captured client requests, announce lifecycles,
expiry on an injected clock, the three peer models, scrape, BEP 15 connection ids, limits and
hostile input. Every answer is decoded back with the tracker_http / tracker_udp schemas."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.core import (
    CONNECTION_ID_LIFETIME,
    MAX_SCRAPE_HASHES,
    AnnounceParameters,
    PeerAnnounced,
    RequestRefused,
    TrackerConfig,
    TrackerCore,
)
from p2pkit.bittorrent.tracker.http import (
    TrackerHttpRequest,
    build_http_request,
    parse_http_request,
    parse_http_response,
)
from p2pkit.bittorrent.tracker.query import AnnounceRequest, ScrapeRequest
from p2pkit.bittorrent.tracker.udp import (
    PROTOCOL_ID,
    UdpAnnounceRequest,
    UdpConnectRequest,
    UdpScrapeRequest,
    UdpTrackerRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
)
from p2pkit.errors import RemoteProtocolError
from tests.pcap_payloads import tcp_streams, udp_datagrams

CAPTURE = "tracker-01-opentracker-libtorrent-aria2.pcap"
TRACKER = ("127.0.0.1", 6969)
HASH_A = bytes.fromhex("91956f897917588bd1a6dd0486559477eaca9473")
HASH_B = b"\xbb" * 20


def peer_id(n: int) -> bytes:
    return b"-PK0001-%012d" % n


def make_core(**config) -> TrackerCore:
    return TrackerCore(TrackerConfig(**config), rng=random.Random(7))


def http(core: TrackerCore, message, addr=("127.0.0.2", 40000), now=0.0, kind="announce"):
    path = "/announce" if kind == "announce" else "/scrape"
    head = build_http_request(TrackerHttpRequest(method="GET", path=path, query=None,
                                                 version="HTTP/1.0", message=message))
    return parse_http_response(core.handle_http_request(head, addr, now=now), kind=kind)


def announce(core, n, *, info_hash=HASH_A, left=100, event=None, ip="127.0.0.2", now=0.0,
             **extra):
    msg = AnnounceRequest(info_hash=info_hash, peer_id=peer_id(n), port=6000 + n, left=left,
                          event=event, **extra)
    return http(core, msg, addr=(ip, 50000 + n), now=now)


def scrape(core, *hashes, now=0.0):
    resp = http(core, ScrapeRequest(info_hashes=hashes), now=now, kind="scrape")
    return {h: (f.complete, f.downloaded, f.incomplete) for h, f in resp.message.files.items()}


def udp(core, request: dict, schema, addr=("127.0.0.2", 40000), now=0.0):
    core.receive_datagram(schema.build(request), addr, now=now)
    (out,) = core.datagrams_to_send(now)
    assert out.addr == addr
    parser = UdpTrackerResponse6 if ":" in addr[0] else UdpTrackerResponse
    return parser.parse(out.data)


def connect(core, addr=("127.0.0.2", 40000), now=0.0) -> int:
    resp = udp(core, dict(transaction_id=5), UdpConnectRequest, addr, now)
    assert (resp.action, resp.transaction_id) == ("connect", 5)
    return resp.connection_id


def udp_announce(core, cid, n, addr=("127.0.0.2", 40000), now=0.0, **fields):
    request = dict(connection_id=cid, transaction_id=9, info_hash=HASH_A, peer_id=peer_id(n),
                   downloaded=0, left=100, uploaded=0, event="started", key=1, port=6000 + n)
    request.update(fields)
    return udp(core, request, UdpAnnounceRequest, addr, now)


# --------------------------------------------------------------------------- captured clients


def test_captured_http_requests_are_answered():
    """aria2 and libtorrent announce/scrape heads recorded against opentracker, replayed."""
    core = make_core()
    kinds = []
    for (src, dst), data in tcp_streams(CAPTURE).items():
        if dst != TRACKER:
            continue
        request = parse_http_request(data)
        answer = core.handle_http_request(data[:request.size], src, now=0.0)
        resp = parse_http_response(answer, kind=request.kind)
        assert resp.status == 200 and resp.message.failure_reason is None
        kinds.append(request.kind)
        if request.kind == "announce":
            assert resp.message.interval == 1800 and resp.message.peers_compact is True
    assert set(kinds) == {"announce", "scrape"}
    announced = []
    while (e := core.next_event()) is not None:
        if isinstance(e, PeerAnnounced) and e.info_hash == HASH_A:
            announced.append((e.ip, e.event, e.peers_returned))
    # libtorrent seeds from .2, libtorrent (.3) then aria2 (.4) download it, and all stop;
    # aria2 never sends "completed" but stops with left=0.
    assert announced[:2] == [("127.0.0.2", "started", 0), ("127.0.0.3", "started", 1)]
    assert ("127.0.0.4", "started", 2) in announced and announced[-1][1] == "stopped"
    counts = core.scrape((HASH_A,), now=0.0)[HASH_A]
    assert (counts.complete, counts.downloaded, counts.incomplete) == (0, 2, 0)


def test_captured_udp_requests():
    """Captured connects get fresh ids; captured announces carry opentracker's ids and are
    refused until the id is one this tracker issued."""
    core = make_core()
    refused = answered = 0
    for src, dst, data in udp_datagrams(CAPTURE):
        if dst != TRACKER:
            continue
        request = UdpTrackerRequest.parse(data)
        core.receive_datagram(data, src, now=0.0)
        (out,) = core.datagrams_to_send(0.0)
        resp = UdpTrackerResponse.parse(out.data)
        assert resp.transaction_id == request.transaction_id
        if request.action == "connect":
            assert resp.action == "connect"
            continue
        assert (resp.action, resp.message) == ("error", b"Connection ID mismatch.")
        refused += 1
        request.connection_id = connect(core, src)
        core.receive_datagram(UdpTrackerRequest.build(request), src, now=0.0)
        (out,) = core.datagrams_to_send(0.0)
        assert UdpTrackerResponse.parse(out.data).action == request.action
        answered += 1
    assert refused == answered > 0


# --------------------------------------------------------------------------- lifecycles


def test_announce_lifecycle_and_scrape():
    core = make_core()
    first = announce(core, 1, left=0, event="started", ip="127.0.0.2").message
    assert (first.complete, first.incomplete, first.peers) == (1, 0, [])
    second = announce(core, 2, event="started", ip="127.0.0.3").message
    assert (second.complete, second.incomplete) == (1, 1)
    assert [(str(p.ip), p.port) for p in second.peers] == [("127.0.0.2", 6001)]
    assert scrape(core, HASH_A) == {HASH_A: (1, 0, 1)}
    announce(core, 2, left=0, event="completed", ip="127.0.0.3")
    announce(core, 2, left=0, event="completed", ip="127.0.0.3")  # counted once
    assert scrape(core, HASH_A) == {HASH_A: (2, 1, 0)}
    gone = announce(core, 1, left=0, event="stopped").message
    assert (gone.complete, gone.incomplete, gone.peers) == (1, 0, [])
    assert scrape(core, HASH_A, HASH_B) == {HASH_A: (1, 1, 0), HASH_B: (0, 0, 0)}
    assert scrape(core) == {HASH_A: (1, 1, 0)}  # full scrape
    events = []
    while (e := core.next_event()) is not None:
        events.append(e)
    assert [e.event for e in events if isinstance(e, PeerAnnounced)] == [
        "started", "started", "completed", "completed", "stopped"]


def test_reaching_left_zero_without_completed_counts_as_download():
    core = make_core()
    announce(core, 1, event="started")
    announce(core, 1, left=0)
    assert scrape(core, HASH_A) == {HASH_A: (1, 1, 0)}


def test_stopping_with_nothing_left_counts_as_download():
    """aria2 1.36 announces started, then stopped with left=0 (no completed)."""
    core = make_core()
    announce(core, 1, event="started")
    announce(core, 1, left=0, event="stopped")
    announce(core, 2, left=0, event="started")  # a seeder from the start
    announce(core, 2, left=0, event="stopped")
    assert scrape(core, HASH_A) == {HASH_A: (0, 1, 0)}


def test_seeders_are_not_sent_seeders():
    core = make_core()
    announce(core, 1, left=0)
    announce(core, 2, left=0)
    announce(core, 3, left=5)
    peers = announce(core, 4, left=0).message.peers
    assert [p.port for p in peers] == [6003]


def test_peers_expire_after_expiry_factor_intervals():
    core = make_core(interval=100, expiry_factor=2)
    announce(core, 1, now=0.0)
    assert len(announce(core, 2, now=200.0).message.peers) == 1  # still within 2 × interval
    assert [p.port for p in announce(core, 3, now=200.5).message.peers] == [6002]  # 1 expired
    assert scrape(core, HASH_A, now=200.5) == {HASH_A: (0, 0, 2)}
    assert core.get_timer() is not None
    core.handle_timer(1000.0)
    assert scrape(core, now=1000.0) == {}  # idle swarm dropped
    assert core.get_timer() is None


# --------------------------------------------------------------------------- peer models


def test_compact_dictionary_and_peers6():
    core = make_core()
    announce(core, 1, ip="127.0.0.2")
    announce(core, 2, ip="::1")
    compact = announce(core, 3, ip="127.0.0.4").message
    assert compact.peers_compact is True
    assert [(str(p.ip), p.port) for p in compact.peers] == [("127.0.0.2", 6001)]
    assert [(str(p.ip), p.port) for p in compact.peers6] == [("::1", 6002)]
    full = announce(core, 3, ip="127.0.0.4", compact=0).message
    assert full.peers_compact is False and full.peers6 is None
    assert sorted((p.peer_id, p.ip, p.port) for p in full.peers) == [
        (peer_id(1), "127.0.0.2", 6001), (peer_id(2), "::1", 6002)]
    bare = announce(core, 3, ip="127.0.0.4", compact=0, no_peer_id=1).message
    assert all(p.peer_id is None for p in bare.peers) and len(bare.peers) == 2


def test_ipv4_mapped_source_is_ipv4():
    core = make_core()
    announce(core, 1, ip="::ffff:127.0.0.9")
    assert [str(p.ip) for p in announce(core, 2).message.peers] == ["127.0.0.9"]


def test_numwant_default_zero_and_ceiling():
    core = make_core(default_numwant=3, max_numwant=5)
    for n in range(10):
        announce(core, n, ip=f"127.0.1.{n}")
    assert len(announce(core, 99).message.peers) == 3
    assert len(announce(core, 99, numwant=0).message.peers) == 0
    assert len(announce(core, 99, numwant=10**15).message.peers) == 5


def test_peer_choice_follows_the_rng():
    def chosen(seed):
        core = TrackerCore(TrackerConfig(default_numwant=4), rng=random.Random(seed))
        for n in range(30):
            announce(core, n)
        return [p.port for p in announce(core, 99).message.peers]
    assert chosen(1) == chosen(1)
    assert len(set(chosen(1))) == 4


# --------------------------------------------------------------------------- UDP (BEP 15)


def test_udp_announce_and_scrape():
    core = make_core()
    announce(core, 1, left=0, ip="127.0.0.2")  # a seeder known over HTTP
    cid = connect(core, ("127.0.0.3", 4000))
    resp = udp_announce(core, cid, 2, addr=("127.0.0.3", 4000))
    assert (resp.action, resp.transaction_id, resp.interval) == ("announce", 9, 1800)
    assert (resp.seeders, resp.leechers) == (1, 1)
    assert [(str(p.ip), p.port) for p in resp.peers] == [("127.0.0.2", 6001)]
    resp = udp(core, dict(connection_id=cid, transaction_id=3, info_hashes=[HASH_A, HASH_B]),
               UdpScrapeRequest, ("127.0.0.3", 4000))
    assert [(f.seeders, f.completed, f.leechers) for f in resp.files] == [(1, 0, 1), (0, 0, 0)]


def test_udp_over_ipv6_gets_18_byte_peers():
    core = make_core()
    announce(core, 1, ip="::2")
    announce(core, 2, ip="127.0.0.2")
    addr = ("::3", 4000, 0, 0)
    resp = udp_announce(core, connect(core, addr), 3, addr=addr, num_want=-1)
    assert [(str(p.ip), p.port) for p in resp.peers] == [("::2", 6001)]


def test_udp_event_none_is_a_regular_announce():
    core = make_core()
    cid = connect(core)
    udp_announce(core, cid, 1)
    resp = udp_announce(core, cid, 1, event="none", left=0)
    assert (resp.seeders, resp.leechers) == (1, 0)
    assert scrape(core, HASH_A) == {HASH_A: (1, 1, 0)}


def test_connection_ids_expire_and_are_bound_to_the_address():
    core = make_core()
    cid = connect(core, now=0.0)
    assert udp_announce(core, cid, 1, now=CONNECTION_ID_LIFETIME).action == "announce"
    late = udp_announce(core, cid, 1, now=CONNECTION_ID_LIFETIME + 1)
    assert (late.action, late.message) == ("error", b"Connection ID mismatch.")
    cid = connect(core, now=200.0)
    stolen = udp_announce(core, cid, 1, addr=("127.0.0.66", 4000), now=200.0)
    assert stolen.action == "error"
    guessed = udp_announce(core, cid ^ 1, 1, now=200.0)
    assert guessed.action == "error"
    core.handle_timer(500.0)
    assert udp_announce(core, cid, 1, now=200.0).action == "error"  # forgotten


def test_connection_ids_come_from_the_rng():
    ids = [connect(TrackerCore(rng=random.Random(3))) for _ in range(2)]
    assert ids[0] == ids[1] == random.Random(3).getrandbits(64)


# --------------------------------------------------------------------------- limits, refusals


def test_allow_list():
    core = make_core(allowed_info_hashes=frozenset({HASH_B}))
    refused = announce(core, 1).message
    assert refused.failure_reason.startswith("Requested download is not authorized")
    assert announce(core, 1, info_hash=HASH_B).message.failure_reason is None
    assert scrape(core, HASH_A, HASH_B) == {HASH_B: (0, 0, 1)}
    resp = udp_announce(core, connect(core), 2)
    assert resp.action == "error" and b"not authorized" in resp.message
    assert isinstance(core.next_event(), RequestRefused)


def test_max_swarms_and_max_peers_per_swarm():
    core = make_core(max_swarms=1, max_peers_per_swarm=2)
    announce(core, 1)
    assert "tracker full" in announce(core, 1, info_hash=HASH_B).message.failure_reason
    announce(core, 2)
    assert "swarm full" in announce(core, 3).message.failure_reason
    assert announce(core, 2).message.failure_reason is None  # known peers still reannounce
    announce(core, 2, event="stopped")
    assert announce(core, 3).message.failure_reason is None


def test_udp_scrape_of_too_many_hashes_is_an_error():
    core = make_core()
    cid = connect(core)
    resp = udp(core, dict(connection_id=cid, transaction_id=1,
                          info_hashes=[bytes([i]) * 20 for i in range(MAX_SCRAPE_HASHES + 1)]),
               UdpScrapeRequest)
    assert resp.action == "error"


@pytest.mark.parametrize("head, status", [
    (b"GET /announce?info_hash=short&peer_id=-PK0001-000000000001&port=1 HTTP/1.0\r\n\r\n", 400),
    (b"GET /announce?peer_id=-PK0001-000000000001&port=1 HTTP/1.0\r\n\r\n", 400),
    (b"POST /scrape HTTP/1.0\r\n\r\n", 405),
    (b"GET /index.html HTTP/1.0\r\n\r\n", 404),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    (b"GET / HTTP/1.0\r\nBad header\r\n\r\n", 400),
    (b"\r\n" * 20000, 400),
])
def test_bad_http_requests_get_a_failure_reason(head, status):
    resp = parse_http_response(make_core().handle_http_request(head, ("127.0.0.2", 1), now=0.0))
    assert resp.status == status and resp.message.failure_reason


def test_head_too_large():
    resp = parse_http_response(make_core().http_head_too_large(("127.0.0.2", 1)))
    assert resp.status == 400 and "over" in resp.message.failure_reason


def test_port_zero_is_refused():
    with pytest.raises(RemoteProtocolError):
        AnnounceParameters(info_hash=HASH_A, peer_id=peer_id(1), port=0,
                           ip=ipaddress.ip_address("127.0.0.1"))
    assert "invalid port" in http(make_core(), AnnounceRequest(
        info_hash=HASH_A, peer_id=peer_id(1), port=0)).message.failure_reason


@pytest.mark.parametrize("data", [b"", b"\x00" * 15, bytes.fromhex("000004172710198000000005"),
                                  bytes.fromhex("000004172710198000000009000000"),
                                  b"\xff" * 4000])
def test_garbage_datagrams_are_dropped(data):
    core = make_core()
    core.receive_datagram(data, ("127.0.0.2", 1), now=0.0)
    assert core.datagrams_to_send(0.0) == []
    assert core.next_event().answered is False


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([("127.0.0.2", 1), ("::1", 1, 0, 0), ("x",)]))
def test_random_datagrams_never_raise(data, addr):
    core = make_core()
    core.receive_datagram(data, addr, now=0.0)
    for out in core.datagrams_to_send(0.0):
        UdpTrackerResponse.parse(out.data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b"GET /announce?" + b + b" HTTP/1.0\r\n\r\n")
       | st.binary(max_size=200))
def test_random_http_heads_never_raise(data):
    answer = make_core().handle_http_request(data, ("127.0.0.2", 1), now=0.0)
    assert parse_http_response(answer).message is not None


def test_mutated_captured_udp_requests_never_raise():
    core = make_core()
    rng = random.Random(0)
    for src, dst, data in udp_datagrams(CAPTURE):
        if dst != TRACKER:
            continue
        for _ in range(30):
            mutated = bytearray(data)
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            core.receive_datagram(bytes(mutated), src, now=0.0)
            for out in core.datagrams_to_send(0.0):
                assert UdpTrackerResponse.parse(out.data).transaction_id is not None
    assert UdpTrackerRequest.parse(UdpConnectRequest.build(dict(transaction_id=1))).protocol_id \
        == PROTOCOL_ID
