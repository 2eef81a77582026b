"""The sans-I/O contract and the seeded in-memory transport (p2pkit.core)."""

from __future__ import annotations

import copy
import pickle

import pytest

from p2pkit.core import NEED_DATA, MemoryNetwork, NeedData, StreamPair, run_datagram_core

A, B = ("10.0.0.1", 1), ("10.0.0.2", 2)


def test_need_data_is_one_sentinel():
    assert NeedData() is NEED_DATA
    assert copy.deepcopy(NEED_DATA) is NEED_DATA
    assert pickle.loads(pickle.dumps(NEED_DATA)) is NEED_DATA


def deliveries(net, n, size=10):
    got = []
    net.listen(B, lambda data, src, now: got.append((data, round(now, 9))))
    for i in range(n):
        net.send_datagram(A, B, bytes([i % 256]) * size)
    net.run()
    return got


def test_same_seed_same_run_other_seed_other_run():
    runs = [deliveries(MemoryNetwork(seed=s, latency=(0.01, 0.2), loss=0.3, reorder=0.3), 50)
            for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_loss_counts_and_drops():
    net = MemoryNetwork(seed=3, loss=0.5)
    got = deliveries(net, 1000)
    assert net.sent == 1000 and net.lost + net.delivered == 1000
    assert len(got) == net.delivered
    assert 400 < net.lost < 600


def test_reordering_happens_only_when_asked():
    in_order = [d[0] for d in deliveries(MemoryNetwork(seed=1, latency=(0.1, 0.1)), 100)]
    assert in_order == sorted(in_order)
    shuffled = [d[0] for d in deliveries(MemoryNetwork(seed=1, latency=(0.1, 0.1), reorder=0.3), 100)]
    assert sorted(shuffled) == in_order and shuffled != in_order


def test_bandwidth_serialises_the_uplink():
    net = MemoryNetwork(seed=1, bandwidth=1000.0)
    got = deliveries(net, 3, size=500)
    assert [t for _, t in got] == [0.5, 1.0, 1.5]


def test_unknown_destination_is_counted_not_raised():
    net = MemoryNetwork(seed=1)
    net.send_datagram(A, B, b"x")
    net.run()
    assert net.undeliverable == 1


def test_bad_parameters_are_refused():
    for kwargs in ({"loss": 1.5}, {"reorder": -0.1}, {"latency": (0.2, 0.1)}, {"bandwidth": 0}):
        with pytest.raises(ValueError):
            MemoryNetwork(seed=1, **kwargs)


def test_run_until_stops_the_clock_there():
    net = MemoryNetwork(seed=1)
    fired = []
    net.call_at(5.0, lambda: fired.append(net.now))
    net.run(until=2.0)
    assert (fired, net.now, net.pending) == ([], 2.0, 1)
    net.run()
    assert fired == [5.0]


class Echo:
    """A toy stream core: every line received is an event; ``send`` writes a line."""

    def __init__(self):
        self.buf = b""
        self.out = b""

    def receive_data(self, data, now):
        self.buf += data

    def next_event(self):
        if b"\n" not in self.buf:
            return NEED_DATA
        line, self.buf = self.buf.split(b"\n", 1)
        if line.startswith(b"ping"):
            self.out += b"pong" + line[4:] + b"\n"
        return line

    def send(self, event, now):
        return event + b"\n"

    def data_to_send(self):
        out, self.out = self.out, b""
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass


def test_stream_pair_keeps_order_and_runs_answers():
    net = MemoryNetwork(seed=5, latency=(0.01, 0.3))
    pair = StreamPair(Echo(), Echo(), net=net)
    for i in range(20):
        pair.send(0, b"ping%d" % i)
    got_a, got_b = pair.run()
    assert got_b == [b"ping%d" % i for i in range(20)]
    assert got_a == [b"pong%d" % i for i in range(20)]


class Counter:
    """A toy datagram core: answers every datagram; a timer fires once at t=1."""

    def __init__(self):
        self.out = []
        self.events = []
        self.timer = 1.0

    def receive_datagram(self, data, addr, now):
        self.events.append(("got", data))
        if data == b"q":
            self.out.append((b"r", addr))

    def next_event(self):
        return self.events.pop(0) if self.events else NEED_DATA

    def datagrams_to_send(self, now):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return self.timer

    def handle_timer(self, now):
        self.timer = None
        self.events.append(("timer", now))


def test_datagram_cores_talk_through_the_network():
    net = MemoryNetwork(seed=2, latency=(0.1, 0.1))
    seen = {A: [], B: []}
    a, b = Counter(), Counter()
    kick_a = run_datagram_core(net, A, a, seen[A].append)
    run_datagram_core(net, B, b, seen[B].append)
    a.out.append((b"q", B))
    kick_a()
    net.run()
    assert seen[B][0] == ("got", b"q") and seen[A][0] == ("got", b"r")
    assert ("timer", 1.0) in seen[A]
