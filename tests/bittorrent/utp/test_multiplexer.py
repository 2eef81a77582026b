"""Two uTP cores through the seeded in-memory network: reliability, windows, hostile input."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.utp.connection import RECEIVE_WINDOW
from p2pkit.bittorrent.utp.events import Connected, ConnectionAccepted, DataReceived
from p2pkit.bittorrent.utp.multiplexer import MAX_HALF_OPEN, UtpMultiplexer
from p2pkit.bittorrent.wire.utp import UtpPacket
from p2pkit.core import MemoryNetwork

from .conftest import A, B, FixedIds, LossyNetwork, UtpPair

#: Bytes of a full data packet before any path MTU probe got through (the search starts at
#: the midpoint of 548 and 1472 bytes of datagram, 20 of them header).
MAX_PAYLOAD = 1010 - 20


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def packet(**fields) -> bytes:
    base = {"type": "st_data", "version": 1, "extensions": [], "connection_id": 0,
            "timestamp_microseconds": 0, "timestamp_difference_microseconds": 0,
            "wnd_size": 1 << 20, "seq_nr": 0, "ack_nr": 0, "payload": b""}
    base.update(fields)
    return UtpPacket.build(base)


def established(net=None, **kwargs) -> tuple[UtpPair, tuple]:
    pair = UtpPair(net or MemoryNetwork(seed=3, latency=(0.01, 0.01)), **kwargs)
    key = pair.connect()
    pair.net.run(until=pair.net.now + 1.0)
    assert any(isinstance(e, Connected) for e in pair.events["a"])
    return pair, key


def test_a_few_mib_both_ways_through_loss_reordering_duplication_and_delay():
    net = LossyNetwork(seed=7, latency=(0.005, 0.03), loss=0.03, reorder=0.1, duplicate=0.05)
    pair = UtpPair(net)
    key = pair.connect()
    up, down = payload(3 << 20, 1), payload(1 << 20, 2)
    pair.a.send(key, up)
    pair.a.close(key)
    pair.end_a.pump()
    b_key = None

    def answer():
        nonlocal b_key
        if b_key is None:
            accepted = [e for e in pair.events["b"] if isinstance(e, ConnectionAccepted)]
            if accepted:
                b_key = accepted[0].key
                pair.b.send(b_key, down)
                pair.end_b.pump()
        if b_key is not None and pair.ended("b") and b_key in pair.b.connections:
            pair.b.close(b_key)
            pair.end_b.pump()
        return bool(pair.closed("a") and pair.closed("b"))

    net.run(until=600.0, stop=answer)
    assert bytes(pair.received["b"]) == up
    assert bytes(pair.received["a"]) == down
    assert pair.closed("a") == ["closed"] and pair.closed("b") == ["closed"]
    assert pair.a.connections == {} and pair.b.connections == {}  # state freed
    assert net.lost > 50  # the loss really happened


def test_sequence_numbers_wrap_around():
    pair, key = established(rng_a=FixedIds(0xFFF0), rng_b=FixedIds(0xFFE0))
    data = payload(400 * MAX_PAYLOAD)
    pair.a.send(key, data)
    pair.end_a.pump()
    pair.net.run(until=pair.net.now + 30.0)
    assert bytes(pair.received["b"]) == data
    conn = pair.a.connections[key]
    assert 0 < conn.seq_nr < 0xFFF0 - 400  # it wrapped (packets grew as the MTU search went)
    assert conn.sent == {}


class DropByIndex(MemoryNetwork):
    """Drops the datagrams a→b whose index (counting from 0) is in ``drops``."""

    def __init__(self, drops: set[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.drops = drops
        self.count = 0

    def send_datagram(self, src, dst, data):
        if src == A:
            index, self.count = self.count, self.count + 1
            if index in self.drops:
                self.sent += 1
                self.lost += 1
                return
        super().send_datagram(src, dst, data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drops=st.sets(st.integers(min_value=0, max_value=160), max_size=40))
def test_any_loss_pattern_delivers_everything(drops):
    net = DropByIndex(drops, seed=1, latency=(0.01, 0.02))
    pair = UtpPair(net)
    key = pair.connect()
    data = payload(100 * MAX_PAYLOAD + 17, 5)
    pair.a.send(key, data)
    pair.end_a.pump()
    net.run(until=300.0, stop=lambda: len(pair.received["b"]) == len(data))
    assert bytes(pair.received["b"]) == data


def test_one_lost_packet_is_resent_from_selective_acks_before_any_timeout():
    net = DropByIndex({5}, seed=1, latency=(0.01, 0.01))
    pair = UtpPair(net)
    key = pair.connect()
    data = payload(60 * MAX_PAYLOAD)
    pair.a.send(key, data)
    pair.end_a.pump()
    net.run(until=0.9)  # before the first timeout (1 s, BEP 29 §timeouts) could fire
    assert bytes(pair.received["b"]) == data
    conn = pair.a.connections[key]
    assert conn.stats["resent"] == 1 and conn.timeouts == 0
    assert conn.cc.max_window < 60 * MAX_PAYLOAD  # the loss halved the window


def test_receive_window_is_advertised_and_respected():
    net = MemoryNetwork(seed=2, latency=(0.01, 0.01))
    a, b = UtpMultiplexer(rng=random.Random(1)), UtpMultiplexer(rng=random.Random(2))
    from p2pkit.core import DatagramEndpoint

    end_a = DatagramEndpoint(net, A, a)
    end_b = DatagramEndpoint(net, B, b)  # nobody takes b's events: its buffer fills
    key = a.connect(B, now=0.0)
    data = payload(4 * RECEIVE_WINDOW)
    a.send(key, data)
    end_a.pump()
    net.run(until=30.0)
    (b_conn,) = b.connections.values()
    assert b_conn.unread <= RECEIVE_WINDOW
    a_conn = a.connections[key]
    assert a_conn.peer_window < MAX_PAYLOAD  # b advertised a closed window
    assert a_conn.buffered >= 2 * RECEIVE_WINDOW  # and a stopped sending
    got = bytearray()
    while True:
        event = b.next_event()
        if isinstance(event, DataReceived):
            got += event.data
        elif not isinstance(event, ConnectionAccepted):
            break
    end_b.on_event = lambda e: got.extend(e.data) if isinstance(e, DataReceived) else None
    end_b.pump()  # the window opens again (a probe or b's next ack tells a)
    net.run(until=200.0, stop=lambda: len(got) == len(data))
    assert bytes(got) == data


def test_ledbat_keeps_queueing_delay_near_the_target():
    # A 1 MB/s uplink: the sender's queue is the only delay above the 10 ms propagation.
    net = MemoryNetwork(seed=4, latency=(0.01, 0.01), bandwidth=1_000_000)
    pair = UtpPair(net)
    key = pair.connect()
    pair.a.send(key, payload(20 << 20))
    pair.end_a.pump()
    delays = []
    for t in range(5, 25):
        net.run(until=float(t))
        delays.append(pair.a.connections[key].cc.our_delay)
    settled = sorted(delays[5:])[len(delays[5:]) // 2]  # the median, after slow start
    assert 40_000 < settled < 160_000  # microseconds; the target is 100 ms
    assert len(pair.received["b"]) > 10 * 1_000_000 // 2  # and the link was used


def test_a_dead_peer_times_out_and_frees_the_connection():
    pair, key = established()
    pair.end_b.close()  # b vanishes
    pair.a.send(key, b"x" * 5000)
    pair.end_a.pump()
    pair.net.run(until=400.0)
    assert pair.closed("a") == ["timed out"]
    assert pair.a.connections == {}


def test_a_syn_nobody_answers_times_out():
    net = MemoryNetwork(seed=1, latency=(0.01, 0.01))
    pair = UtpPair(net)
    pair.end_b.close()
    pair.connect()
    net.run(until=60.0)
    assert pair.closed("a") == ["timed out"]


# -- hostile input ----------------------------------------------------------------------------

def test_syn_flood_is_bounded_and_established_connections_keep_working():
    pair, key = established()
    net = pair.net
    for i in range(5000):
        net.send_datagram(("10.6.6.6", 1000 + i), B, packet(type="st_syn", connection_id=i,
                                                             seq_nr=i))
    net.run(until=net.now + 0.5)
    assert len(pair.b.connections) <= MAX_HALF_OPEN + 1
    assert pair.b.dropped["syn refused"] >= 5000 - MAX_HALF_OPEN
    data = payload(200_000)
    pair.a.send(key, data)
    pair.end_a.pump()
    net.run(until=net.now + 5.0)
    assert bytes(pair.received["b"]) == data
    # The half-open ones expire, and a new connection is accepted again.
    net.run(until=net.now + 15.0)
    assert len(pair.b.connections) == 1
    key2 = pair.a.connect(B, now=net.now)
    pair.end_a.pump()
    net.run(until=net.now + 1.0)
    assert [e.key for e in pair.events["a"] if isinstance(e, Connected)][-1] == key2


def test_sequence_numbers_far_out_of_window_are_ignored():
    pair, key = established()
    (b_conn,) = pair.b.connections.values()
    expected = b_conn.recv.next_seq
    for offset in (5000, 30000, 40000, 65000):
        pair.net.send_datagram(A, B, packet(connection_id=b_conn.recv_id,
                                            seq_nr=(expected + offset) & 0xFFFF,
                                            ack_nr=b_conn.seq_nr - 1 & 0xFFFF,
                                            payload=b"evil" * 100))
    pair.net.run(until=pair.net.now + 0.1)
    assert b_conn.recv.pending == {} and pair.received["b"] == b""
    # Ahead of the window: ignored; behind it: taken for old duplicates (answered by one ack).
    assert b_conn.stats["ignored"] == 2 and b_conn.stats["duplicates"] == 2
    pair.a.send(key, b"fine")
    pair.end_a.pump()
    pair.net.run(until=pair.net.now + 0.5)
    assert pair.received["b"] == b"fine"


def test_acks_for_unsent_data_are_ignored():
    pair, key = established()
    a_conn = pair.a.connections[key]
    pair.a.send(key, payload(50 * MAX_PAYLOAD))
    pair.end_a.pump()
    in_flight = dict(a_conn.sent)
    assert in_flight
    forged = packet(type="st_state", connection_id=a_conn.recv_id,
                    seq_nr=pair.b.connections[next(iter(pair.b.connections))].seq_nr,
                    ack_nr=(a_conn.seq_nr + 100) & 0xFFFF)
    pair.a.receive_datagram(forged, B, pair.net.now)
    assert a_conn.sent == in_flight and a_conn.stats["ignored"] == 1
    pair.net.run(until=pair.net.now + 5.0)
    assert len(pair.received["b"]) == 50 * MAX_PAYLOAD


def test_a_reset_for_an_unknown_id_is_ignored_and_a_real_one_closes():
    pair, key = established()
    a_conn = pair.a.connections[key]
    pair.a.receive_datagram(packet(type="st_reset", connection_id=(a_conn.recv_id + 7) & 0xFFFF),
                            B, pair.net.now)
    pair.a.receive_datagram(packet(type="st_reset", connection_id=a_conn.recv_id),
                            ("10.9.9.9", 6881), pair.net.now)  # right id, wrong address
    assert key in pair.a.connections and pair.a.dropped["unknown connection"] == 2
    pair.a.receive_datagram(packet(type="st_reset", connection_id=a_conn.recv_id), B,
                            pair.net.now)
    assert pair.a.connections == {}
    assert [e.reason for e in (pair.a.next_event(),) if hasattr(e, "reason")] == ["reset"]


@pytest.mark.parametrize("data", [b"", b"\x41", b"\x41" + bytes(10), b"\x51" + bytes(19),
                                  b"\x01\x01" + bytes(18) + b"\x00\x03ab"])
def test_malformed_datagrams_are_dropped(data):
    core = UtpMultiplexer(rng=random.Random(0))
    core.receive_datagram(data, A, 0.0)
    assert core.connections == {} and core.dropped["malformed"] == 1


def test_a_reset_carrying_our_send_id_closes_as_libutp_sends_it():
    # transmission 3.00 (libutp) resets with the id of the packet it had no connection for.
    pair, key = established()
    a_conn = pair.a.connections[key]
    pair.a.receive_datagram(packet(type="st_reset", connection_id=a_conn.send_id), B,
                            pair.net.now)
    assert pair.a.connections == {}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_datagrams_never_raise(datagrams):
    core = UtpMultiplexer(rng=random.Random(0))
    for data in datagrams:
        core.receive_datagram(b"\x41\x00" + data if len(data) % 2 else data, A, 0.0)
    core.datagrams_to_send(0.0)
    core.handle_timer(100.0)
    assert len(core.connections) <= 1 + len(datagrams)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["st_data", "st_state", "st_fin", "st_syn", "st_reset"]),
                          st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                          st.integers(0, (1 << 32) - 1), st.binary(max_size=40),
                          st.booleans()), max_size=30))
def test_forged_packets_on_an_established_connection_stay_within_bounds(forged):
    pair, key = established()
    (b_conn,) = pair.b.connections.values()
    for kind, seq, ack, wnd, data, sack in forged:
        extensions = [{"type": 1, "acked": [2, 5]}] if sack else []
        pair.b.receive_datagram(packet(type=kind, connection_id=b_conn.recv_id, seq_nr=seq,
                                       ack_nr=ack, wnd_size=wnd, payload=data,
                                       extensions=extensions), A, pair.net.now)
        pair.b.datagrams_to_send(pair.net.now)
    assert len(b_conn.recv.pending) <= 1024 and b_conn.reorder_bytes <= RECEIVE_WINDOW


def test_a_packet_of_no_connection_is_answered_by_a_reset_as_libutp_sends_it():
    core = UtpMultiplexer(rng=random.Random(0))
    core.receive_datagram(packet(type="st_data", connection_id=4242, seq_nr=77), A, 0.0)
    ((data, dst),) = core.datagrams_to_send(0.0)
    reset = UtpPacket.parse(data)
    assert dst == A and reset.type == "st_reset"
    assert (reset.connection_id, reset.ack_nr) == (4242, 77)
    core.receive_datagram(packet(type="st_reset", connection_id=4242), A, 0.0)
    assert core.datagrams_to_send(0.0) == []  # a reset is never answered


def test_resets_are_rate_limited():
    core = UtpMultiplexer(rng=random.Random(0))
    for i in range(500):  # a spoofed flood within one second
        core.receive_datagram(packet(type="st_state", connection_id=i), A, i / 1000)
    assert core.resets_sent == len(core.datagrams_to_send(0.5)) < 30
    core.receive_datagram(packet(type="st_state", connection_id=1), A, 10.0)
    assert core.resets_sent < 31 and len(core.datagrams_to_send(10.0)) == 1  # refilled


def test_two_cores_close_cleanly_when_the_last_fin_meets_a_reset():
    # a frees its side once both FINs are through; b's resent FIN then gets a reset, which
    # closes b as "closed" (it had everything), not "reset".
    pair, key = established()
    pair.a.close(key)
    pair.end_a.pump()
    pair.net.run(until=pair.net.now + 1.0)
    (b_key,) = pair.b.connections
    b_conn = pair.b.connections[b_key]
    pair.b.close(b_key)
    pair.end_b.pump()
    pair.net.run(until=pair.net.now + 0.005)  # b's FIN is out, a has not answered yet
    pair.a.connections.clear()  # a forgot the connection
    pair.net.run(until=pair.net.now + 30.0)
    assert b_conn.fin_received and pair.closed("b") == ["closed"]
    assert pair.a.resets_sent >= 1


def test_a_lost_resend_is_resent_again_from_selective_acks_without_a_timeout():
    sent = []

    class DropFirstTwoOf(MemoryNetwork):
        """Drops the first two transmissions of data packet 5 a→b."""

        def send_datagram(self, src, dst, data):
            pkt = UtpPacket.parse(data)
            if src == A and pkt.type == "st_data":
                sent.append(pkt.seq_nr)
                first = sent[0]
                if pkt.seq_nr == (first + 5) & 0xFFFF and sent.count(pkt.seq_nr) <= 2:
                    self.sent += 1
                    self.lost += 1
                    return
            super().send_datagram(src, dst, data)

    net = DropFirstTwoOf(seed=1, latency=(0.01, 0.01))
    pair = UtpPair(net)
    key = pair.connect()
    data = payload(150 * MAX_PAYLOAD)
    pair.a.send(key, data)
    pair.end_a.pump()
    net.run(until=0.9)  # before the first timeout (1 s) could fire
    assert bytes(pair.received["b"]) == data
    conn = pair.a.connections[key]
    assert conn.stats["resent"] == 2 and conn.timeouts == 0
