"""The BEP 15 client core, byte by byte: exact datagrams in, exact datagrams and events out,
time only through ``now``."""

from __future__ import annotations

import random

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.announce import Announce, ScrapeResult, TrackerPeer
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpAnnounceResponse6,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    UdpTrackerRequest,
)
from p2pkit.bittorrent.tracker.udp_client import (
    CONNECTION_ID_LIFETIME,
    MAX_RETRANSMISSIONS,
    MAX_SCRAPE_HASHES,
    RETRANSMIT_BASE,
    AnnounceCompleted,
    ScrapeCompleted,
    TrackerFailed,
    UdpTrackerClient,
)
from p2pkit.bittorrent.tracker.udp_client_state import AWAIT_CONNECT, AWAIT_RESPONSE
from p2pkit.core import NEED_DATA, DatagramCore, MemoryNetwork, run_datagram_core
from p2pkit.errors import LocalProtocolError

TRACKER = ("10.0.0.9", 6969)
TRACKER6 = ("2001:db8::9", 6969)
SEED = 7
CONNECTION_ID = 0x0102030405060708
REQUEST = Announce(info_hash=bytes(range(20)), peer_id=b"-PK0001-000000000001", port=6881,
                   left=1000, event="started", key=0xCAFE)


def transaction_ids(seed: int = SEED, n: int = 20) -> list[int]:
    """The transaction ids a client seeded with ``seed`` draws, in order."""
    rng = random.Random(seed)
    return [rng.getrandbits(32) for _ in range(n)]


def drain(client: UdpTrackerClient) -> list:
    out = []
    while (event := client.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def connect_response(transaction_id: int, connection_id: int = CONNECTION_ID) -> bytes:
    return UdpConnectResponse.build(dict(transaction_id=transaction_id,
                                         connection_id=connection_id))


def announce_response(transaction_id: int, schema=UdpAnnounceResponse, peers=None) -> bytes:
    peers = [dict(ip="10.0.0.7", port=6881), dict(ip="10.0.0.8", port=0)] if peers is None \
        else peers
    return schema.build(dict(transaction_id=transaction_id, interval=1800, leechers=5,
                             seeders=3, peers=peers))


def error_response(transaction_id: int, text: bytes) -> bytes:
    return UdpErrorResponse.build(dict(transaction_id=transaction_id, message=text))


def expected_announce(connection_id: int, transaction_id: int, url_data: bytes = b"") -> bytes:
    options = [dict(type="url_data", data=url_data[i:i + 255])
               for i in range(0, len(url_data), 255)]
    return UdpAnnounceRequest.build(dict(
        connection_id=connection_id, transaction_id=transaction_id,
        info_hash=REQUEST.info_hash, peer_id=REQUEST.peer_id, downloaded=0, left=1000,
        uploaded=0, event="started", key=0xCAFE, num_want=-1, port=6881, options=options))


def connected(now: float = 0.0, **kwargs) -> tuple[UdpTrackerClient, int, list[int]]:
    """A client that started an announce and got its connect response at ``now``."""
    client = UdpTrackerClient(rng=random.Random(SEED), **kwargs)
    tids = transaction_ids()
    op = client.announce(TRACKER, REQUEST, now)
    client.datagrams_to_send(now)
    client.receive_datagram(connect_response(tids[0]), TRACKER, now)
    return client, op, tids


def test_is_a_datagram_core():
    assert isinstance(UdpTrackerClient(rng=random.Random(0)), DatagramCore)


def test_connect_then_announce_exact_bytes():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    op = client.announce(TRACKER, REQUEST, 0.0, url_data=b"/announce?passkey=" + b"x" * 300)
    # BEP 15: "protocol_id 0x41727101980", "action 0 // connect", a random transaction id
    assert client.datagrams_to_send(0.0) == [
        (bytes.fromhex("0000041727101980" "00000000") + tids[0].to_bytes(4, "big"), TRACKER)]
    assert client.datagrams_to_send(0.0) == []  # taken once
    assert drain(client) == []
    client.receive_datagram(connect_response(tids[0]), TRACKER, 1.0)
    [(data, dst)] = client.datagrams_to_send(1.0)
    assert dst == TRACKER
    # BEP 41: the path and query in URLData options of at most 255 bytes each
    assert data == expected_announce(CONNECTION_ID, tids[1],
                                     b"/announce?passkey=" + b"x" * 300)
    assert client.connection_ids[TRACKER] == (CONNECTION_ID, 1.0)
    client.receive_datagram(announce_response(tids[1]), TRACKER, 2.0)
    [event] = drain(client)
    assert isinstance(event, AnnounceCompleted)
    assert (event.operation, event.tracker) == (op, TRACKER)
    # seeders are BEP 3's complete, leechers incomplete; a port-0 peer is unusable
    assert (event.result.interval, event.result.complete, event.result.incomplete) == (1800, 3, 5)
    assert event.result.peers == (TrackerPeer(host="10.0.0.7", port=6881),)
    assert client.get_timer() is None and client.operations == 0


def test_retransmission_times_follow_15_times_2_to_the_n():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.announce(TRACKER, REQUEST, 0.0)
    sent = [client.datagrams_to_send(0.0)]
    deadlines = [client.get_timer()]
    for _ in range(MAX_RETRANSMISSIONS):
        now = client.get_timer()
        client.handle_timer(now - 0.001)  # not yet due: nothing happens
        assert client.datagrams_to_send(now) == []
        client.handle_timer(now)
        sent.append(client.datagrams_to_send(now))
        deadlines.append(client.get_timer())
    # BEP 15: "15 * 2 ^ n seconds, where n starts at 0 and is increased up to 8 (3840 s)"
    assert deadlines == [RETRANSMIT_BASE * (2 ** (n + 1) - 1) for n in range(9)]
    assert deadlines[-1] - deadlines[-2] == 3840
    # every retransmission is a connect with a new random transaction id
    assert sent == [[(UdpConnectRequest.build(dict(transaction_id=t)), TRACKER)]
                    for t in tids[:9]]
    assert drain(client) == []
    client.handle_timer(deadlines[-1])
    [failed] = drain(client)
    assert isinstance(failed, TrackerFailed) and failed.failure_reason is None
    assert failed.reason == "no answer after 8 retransmissions"
    assert client.get_timer() is None and client.datagrams_to_send(deadlines[-1]) == []


def test_an_answer_to_an_earlier_transmission_is_ignored():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.announce(TRACKER, REQUEST, 0.0)
    client.handle_timer(15.0)
    assert len(client.datagrams_to_send(15.0)) == 2
    client.receive_datagram(connect_response(tids[0]), TRACKER, 16.0)
    assert client.datagrams_to_send(16.0) == [] and client.ignored == 1
    client.receive_datagram(connect_response(tids[1]), TRACKER, 16.0)
    assert client.datagrams_to_send(16.0) == [(expected_announce(CONNECTION_ID, tids[2]),
                                               TRACKER)]


def test_a_lost_announce_is_retransmitted_with_the_same_connection_id():
    client, _, tids = connected()
    assert client.datagrams_to_send(0.0) == [(expected_announce(CONNECTION_ID, tids[1]),
                                              TRACKER)]
    # n is shared by the connect and the announce: still 0, so 15 s
    assert client.get_timer() == 15.0
    client.handle_timer(15.0)
    assert client.datagrams_to_send(15.0) == [(expected_announce(CONNECTION_ID, tids[2]),
                                               TRACKER)]
    assert client.get_timer() == 45.0


def test_connection_id_lives_one_minute_after_it_was_received():
    client, _, tids = connected(now=100.0)
    client.datagrams_to_send(100.0)
    client.receive_datagram(announce_response(tids[1]), TRACKER, 100.0)
    drain(client)
    # BEP 15: "A client can use a connection ID until one minute after it has received it."
    client.announce(TRACKER, REQUEST, 100.0 + CONNECTION_ID_LIFETIME)
    assert client.datagrams_to_send(160.0) == [(expected_announce(CONNECTION_ID, tids[2]),
                                                TRACKER)]
    client.receive_datagram(announce_response(tids[2]), TRACKER, 160.0)
    drain(client)
    client.announce(TRACKER, REQUEST, 160.5)
    assert client.datagrams_to_send(160.5) == [
        (UdpConnectRequest.build(dict(transaction_id=tids[3])), TRACKER)]
    assert TRACKER not in client.connection_ids
    # another tracker never shares the id
    client.announce(("10.0.0.10", 6969), REQUEST, 160.5)
    [(data, _)] = client.datagrams_to_send(160.5)
    assert UdpTrackerRequest.parse(data).action == "connect"


def test_a_retransmission_after_expiry_connects_again():
    client, op, tids = connected(now=0.0)
    client.datagrams_to_send(0.0)
    client.receive_datagram(announce_response(tids[1]), TRACKER, 0.0)
    drain(client)
    client.announce(TRACKER, REQUEST, 50.0)  # kept id, 50 s old
    assert UdpTrackerRequest.parse(client.datagrams_to_send(50.0)[0][0]).action == "announce"
    client.handle_timer(65.0)  # unanswered; the id is now 65 s old
    assert client.datagrams_to_send(65.0) == [
        (UdpConnectRequest.build(dict(transaction_id=tids[3])), TRACKER)]
    assert client._operations[op + 1].state == AWAIT_CONNECT
    client.receive_datagram(connect_response(tids[3], connection_id=99), TRACKER, 66.0)
    assert client.datagrams_to_send(66.0) == [(expected_announce(99, tids[4]), TRACKER)]
    assert client._operations[op + 1].state == AWAIT_RESPONSE


def test_wrong_transaction_id_wrong_sender_and_wrong_action_are_ignored():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.announce(TRACKER, REQUEST, 0.0)
    client.datagrams_to_send(0.0)
    # BEP 15: "Check whether the transaction ID is equal to the one you chose."
    client.receive_datagram(connect_response(tids[0] ^ 1, connection_id=666), TRACKER, 1.0)
    client.receive_datagram(connect_response(tids[0], connection_id=666), ("10.6.6.6", 6969),
                            1.0)
    # "Check whether the action is connect."
    client.receive_datagram(announce_response(tids[0]), TRACKER, 1.0)
    assert client.ignored == 3 and client.datagrams_to_send(1.0) == [] and drain(client) == []
    assert client.connection_ids == {}
    client.receive_datagram(connect_response(tids[0]), TRACKER, 1.0)
    [(data, _)] = client.datagrams_to_send(1.0)
    assert UdpTrackerRequest.parse(data).connection_id == CONNECTION_ID
    # an answer to the connect again (a duplicate) is no longer waited for
    client.receive_datagram(connect_response(tids[0], connection_id=666), TRACKER, 1.0)
    assert client.ignored == 4 and client.connection_ids[TRACKER][0] == CONNECTION_ID


def test_truncated_and_garbage_datagrams_are_ignored():
    client, _, tids = connected()
    client.datagrams_to_send(0.0)
    good = announce_response(tids[1])
    for bad in (good[:7], good[:-1], good + b"\x00", b"", b"\xff" * 40):
        client.receive_datagram(bad, TRACKER, 1.0)
    assert client.ignored == 5 and drain(client) == []
    client.receive_datagram(good, TRACKER, 1.0)
    assert isinstance(drain(client)[0], AnnounceCompleted)


def test_error_action_to_connect_and_to_a_fresh_id_is_a_failure():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    op = client.announce(TRACKER, REQUEST, 0.0)
    client.receive_datagram(error_response(tids[0], b"go away\x00"), TRACKER, 1.0)
    assert drain(client) == [TrackerFailed(operation=op, tracker=TRACKER,
                                           reason="refused: go away", failure_reason="go away")]
    client2, op2, tids = connected()
    client2.datagrams_to_send(0.0)
    client2.receive_datagram(error_response(tids[1], b"Requested download is not authorized."),
                             TRACKER, 1.0)
    [failed] = drain(client2)
    assert failed.operation == op2
    assert failed.failure_reason == "Requested download is not authorized."
    assert client2.datagrams_to_send(1.0) == [] and client2.get_timer() is None


def test_error_for_a_kept_id_reconnects_once_before_failing():
    client, _, tids = connected()
    client.datagrams_to_send(0.0)
    client.receive_datagram(announce_response(tids[1]), TRACKER, 0.0)
    drain(client)
    op = client.announce(TRACKER, REQUEST, 10.0)  # the kept id
    client.datagrams_to_send(10.0)
    client.receive_datagram(error_response(tids[2], b"Connection ID mismatch."), TRACKER, 10.0)
    assert drain(client) == []
    assert client.datagrams_to_send(10.0) == [
        (UdpConnectRequest.build(dict(transaction_id=tids[3])), TRACKER)]
    client.receive_datagram(connect_response(tids[3], connection_id=5), TRACKER, 10.0)
    assert client.datagrams_to_send(10.0) == [(expected_announce(5, tids[4]), TRACKER)]
    client.receive_datagram(error_response(tids[4], b"banned"), TRACKER, 10.0)
    assert drain(client) == [TrackerFailed(operation=op, tracker=TRACKER,
                                           reason="refused: banned", failure_reason="banned")]


def test_scrape_exact_bytes_and_answer():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    hashes = [b"a" * 20, b"b" * 20]
    op = client.scrape(TRACKER, hashes, 0.0)
    client.datagrams_to_send(0.0)
    client.receive_datagram(connect_response(tids[0]), TRACKER, 0.0)
    assert client.datagrams_to_send(0.0) == [(UdpScrapeRequest.build(dict(
        connection_id=CONNECTION_ID, transaction_id=tids[1], info_hashes=hashes)), TRACKER)]
    client.receive_datagram(UdpScrapeResponse.build(dict(transaction_id=tids[1], files=[
        dict(seeders=1, completed=2, leechers=3), dict(seeders=4, completed=5, leechers=6)])),
        TRACKER, 0.0)
    assert drain(client) == [ScrapeCompleted(operation=op, tracker=TRACKER, files={
        b"a" * 20: ScrapeResult(complete=1, downloaded=2, incomplete=3),
        b"b" * 20: ScrapeResult(complete=4, downloaded=5, incomplete=6)})]


def test_scrape_with_the_wrong_number_of_entries_fails():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.scrape(TRACKER, [b"a" * 20, b"b" * 20], 0.0)
    client.receive_datagram(connect_response(tids[0]), TRACKER, 0.0)
    client.receive_datagram(UdpScrapeResponse.build(dict(transaction_id=tids[1], files=[
        dict(seeders=1, completed=2, leechers=3)])), TRACKER, 0.0)
    [failed] = drain(client)
    assert isinstance(failed, TrackerFailed) and "answered 1 torrents, asked 2" in failed.reason


def test_scrape_limits():
    client = UdpTrackerClient(rng=random.Random(SEED))
    with pytest.raises(LocalProtocolError):
        client.scrape(TRACKER, [b"a" * 20] * (MAX_SCRAPE_HASHES + 1), 0.0)
    with pytest.raises(LocalProtocolError):
        client.scrape(TRACKER, [], 0.0)
    with pytest.raises(LocalProtocolError):
        client.scrape(TRACKER, [b"short"], 0.0)


def test_ipv6_tracker_peers_are_18_bytes():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.announce(TRACKER6, REQUEST, 0.0)
    client.receive_datagram(connect_response(tids[0]), TRACKER6, 0.0)
    # BEP 15 §IPv6: "the stride size of <IP address, TCP port> pairs [...] is 18 bytes"
    client.receive_datagram(announce_response(tids[1], UdpAnnounceResponse6,
                                              [dict(ip="2001:db8::7", port=6881)]),
                            TRACKER6, 0.0)
    [event] = drain(client)
    assert event.result.peers == (TrackerPeer(host="2001:db8::7", port=6881),)


def test_cancel_forgets_the_operation():
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    op = client.announce(TRACKER, REQUEST, 0.0)
    client.cancel(op)
    client.cancel(op)  # twice is harmless
    assert client.get_timer() is None
    client.receive_datagram(connect_response(tids[0]), TRACKER, 1.0)
    assert client.ignored == 1 and client.datagrams_to_send(1.0) == [] and drain(client) == []


def test_many_operations_draw_distinct_transaction_ids():
    client = UdpTrackerClient(rng=random.Random(SEED))
    for _ in range(50):
        client.announce(TRACKER, REQUEST, 0.0)
    tids = [UdpTrackerRequest.parse(d).transaction_id for d, _ in client.datagrams_to_send(0.0)]
    assert len(set(tids)) == 50 and tids == transaction_ids(n=50)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.sampled_from(["connect", "announce"]))
def test_random_datagrams_never_raise(junk, stage):
    client = UdpTrackerClient(rng=random.Random(SEED))
    tids = transaction_ids()
    client.announce(TRACKER, REQUEST, 0.0)
    tid = tids[0]
    if stage == "announce":
        client.receive_datagram(connect_response(tids[0]), TRACKER, 0.0)
        tid = tids[1]
    client.datagrams_to_send(0.0)
    # raw junk, and junk behind a header carrying the transaction id we wait for
    for action in (None, 0, 1, 2, 3):
        data = junk if action is None else (action.to_bytes(4, "big") + tid.to_bytes(4, "big")
                                            + junk)
        client.receive_datagram(data, TRACKER, 1.0)
    for event in drain(client):
        assert isinstance(event, AnnounceCompleted | TrackerFailed)


def test_over_a_lossy_memory_network():
    """The core on MemoryNetwork with 40 % loss: retransmissions carry it through."""
    net = MemoryNetwork(seed=3, latency=(0.01, 0.2), loss=0.4)
    answered: list[Container] = []

    def tracker(data: bytes, src, now: float) -> None:
        request = UdpTrackerRequest.parse(data)
        answered.append(request)
        if request.action == "connect":
            reply = connect_response(request.transaction_id)
        else:
            reply = announce_response(request.transaction_id)
        net.send_datagram(TRACKER, src, reply)

    net.listen(TRACKER, tracker)
    client = UdpTrackerClient(rng=random.Random(SEED))
    events: list = []
    kick = run_datagram_core(net, ("10.0.0.1", 6881), client, events.append)
    for _ in range(5):
        client.announce(TRACKER, REQUEST, net.now)
    kick()
    net.run()
    assert len(events) == 5 and all(isinstance(e, AnnounceCompleted) for e in events)
    assert net.lost > 0 and client.get_timer() is None
    assert {r.action for r in answered} == {"connect", "announce"}
