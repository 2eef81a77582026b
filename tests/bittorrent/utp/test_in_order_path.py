"""The in-order ST_DATA path (``UtpConnection.receive_in_order``) against the general one.

Core ``b`` takes every datagram it receives with the in-order path where it applies; a twin of
``b`` (same seed, same clock) receives the same datagrams with that path switched off. Packet by
packet, both must send the same bytes and report the same events and state, on a network that
loses, reorders and delays, in both directions (b sends data back too)."""

from __future__ import annotations

import random

import pytest

from p2pkit.bittorrent.utp.connection import UtpConnection
from p2pkit.bittorrent.utp.events import DataReceived
from p2pkit.bittorrent.utp.multiplexer import UtpMultiplexer
from p2pkit.bittorrent.wire.utp import UtpPacket
from p2pkit.core import NEED_DATA, DatagramEndpoint, MemoryNetwork

A = ("10.0.0.1", 6881)
B = ("10.0.0.2", 6881)


def _state(core: UtpMultiplexer) -> list[tuple]:
    return [(key, c.state, c.ack_nr, c.seq_nr, c.recv.next_seq, c.unread, c.peer_window,
             c.last_ack, c.duplicate_acks, c.cur_window, c.reply_micro, dict(c.stats),
             c.cc.max_window, sorted(c.sent))
            for key, c in sorted(core.connections.items())]


def _drain(core: UtpMultiplexer) -> list:
    events = []
    while (event := core.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def _merged(events: list) -> list:
    out: list = []
    for event in events:
        if (isinstance(event, DataReceived) and out and isinstance(out[-1], DataReceived)
                and out[-1].key == event.key):
            out[-1] = DataReceived(key=event.key, data=out[-1].data + event.data)
        else:
            out.append(event)
    return out


class Twins:
    """A DatagramCore: ``fast`` answers the network; ``slow`` gets the same input and must
    answer the same, with the in-order path switched off."""

    def __init__(self) -> None:
        self.fast = UtpMultiplexer(rng=random.Random(2))
        self.slow = UtpMultiplexer(rng=random.Random(2))
        self.queue: list = []

    def receive_datagram(self, data: bytes, addr, now: float) -> None:
        self.fast.receive_datagram(data, addr, now)
        for conn in self.slow.connections.values():
            conn.receive_in_order = lambda *args: False  # noqa: ARG005
        self.slow.receive_datagram(data, addr, now)
        assert _state(self.fast) == _state(self.slow)

    def next_event(self):
        # The in-order path queues consecutive payloads as one event: the same bytes, in
        # fewer events; every other event the same.
        if not self.queue:
            fast, slow = _drain(self.fast), _drain(self.slow)
            assert _merged(fast) == _merged(slow)
            assert len(fast) <= len(slow)
            self.queue = fast
        return self.queue.pop(0) if self.queue else NEED_DATA

    def datagrams_to_send(self, now: float):
        out = self.fast.datagrams_to_send(now)
        assert out == self.slow.datagrams_to_send(now)
        return out

    def get_timer(self):
        when = self.fast.get_timer()
        assert when == self.slow.get_timer()
        return when

    def handle_timer(self, now: float) -> None:
        self.fast.handle_timer(now)
        self.slow.handle_timer(now)


@pytest.mark.parametrize(("jitter", "loss", "reorder"),
                         [(0.0, 0.0, 0.0), (0.0, 0.03, 0.0), (0.003, 0.05, 0.1)])
def test_the_in_order_path_changes_nothing(jitter, loss, reorder, monkeypatch):
    taken = []
    original = UtpConnection.receive_in_order

    def counted(self, header, data, now):
        taken.append(original(self, header, data, now))
        return taken[-1]

    monkeypatch.setattr(UtpConnection, "receive_in_order", counted)
    net = MemoryNetwork(seed=7, latency=(0.001, 0.001 + jitter), loss=loss, reorder=reorder)
    a = UtpMultiplexer(rng=random.Random(1))
    twins = Twins()
    got = {"a": bytearray(), "b": bytearray()}
    keys = []

    def on_b(event):
        if isinstance(event, DataReceived):
            got["b"].extend(event.data)
            if len(got["b"]) >= 4000 and not keys[1:]:
                keys.append(event.key)
                twins.fast.send(event.key, b"back" * 300)  # data the other way: acks ride it
                twins.slow.send(event.key, b"back" * 300)

    def on_a(event):
        if isinstance(event, DataReceived):
            got["a"].extend(event.data)

    end_a = DatagramEndpoint(net, A, a, on_a)
    DatagramEndpoint(net, B, twins, on_b)
    payload = random.Random(3).randbytes(300_000)
    keys.append(a.connect(B, now=0.0))
    a.send(keys[0], payload)
    end_a.pump()
    net.run(until=60.0, stop=lambda: len(got["b"]) == len(payload) and len(got["a"]) == 1200)
    assert bytes(got["b"]) == payload
    assert bytes(got["a"]) == b"back" * 300
    assert sum(taken) > (150 if not loss else 10)  # of some 210 data packets
    if loss:
        assert not all(taken)  # the others went the long way


def test_the_in_order_path_takes_plain_data_and_nothing_else():
    """A plain ST_DATA packet in order goes the short way; one with an extension, out of
    order, or with an ack of something never sent does not."""
    a, b = UtpMultiplexer(rng=random.Random(1)), UtpMultiplexer(rng=random.Random(2))
    key = a.connect(B, now=0.0)
    for data, _ in a.datagrams_to_send(0.0):
        b.receive_datagram(data, A, 0.0)
    for data, _ in b.datagrams_to_send(0.0):
        a.receive_datagram(data, B, 0.0)
    a.connections[key].cc.max_window = 1e6  # past slow start: all packets at once
    a.send(key, bytes(5000))
    packets = [d for d, _ in a.datagrams_to_send(0.1)]
    assert {UtpPacket.parse(p).type for p in packets} == {"st_data"} and len(packets) >= 4
    conn_b = next(iter(b.connections.values()))
    taken = []
    original = conn_b.receive_in_order

    def spy(header, data, now):
        taken.append(original(header, data, now))
        return taken[-1]

    conn_b.receive_in_order = spy
    b.receive_datagram(packets[0], A, 0.2)  # the first ST_DATA: the acceptor connects
    b.receive_datagram(packets[2], A, 0.2)  # out of order: held
    b.receive_datagram(packets[1], A, 0.2)  # in order, but packet 2 is held
    b.receive_datagram(packets[3], A, 0.2)  # in order, nothing held
    assert taken == [False, False, False, True]
    forged = bytearray(packets[3])
    forged[18:20] = ((int.from_bytes(forged[18:20], "big") + 5000) & 0xFFFF).to_bytes(2, "big")
    forged[16:18] = (int.from_bytes(forged[16:18], "big") + 1).to_bytes(2, "big")
    ignored = conn_b.stats["ignored"]
    b.receive_datagram(bytes(forged), A, 0.3)  # acks 5000 packets never sent
    assert taken[-1] is False and conn_b.stats["ignored"] == ignored + 1
