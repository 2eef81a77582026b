"""A pair of uTP cores on a seeded in-memory network (h11's ConnectionPair shape)."""

from __future__ import annotations

import random

from p2pkit.bittorrent.utp.events import ConnectionClosed, DataReceived, StreamEnded
from p2pkit.bittorrent.utp.multiplexer import UtpMultiplexer
from p2pkit.core import DatagramEndpoint, MemoryNetwork

A = ("10.0.0.1", 6881)
B = ("10.0.0.2", 6881)


class LossyNetwork(MemoryNetwork):
    """A MemoryNetwork that also duplicates datagrams (``duplicate`` of them, seeded)."""

    def __init__(self, *, duplicate: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.duplicate = duplicate

    def send_datagram(self, src, dst, data):
        super().send_datagram(src, dst, data)
        if self.duplicate and self.rng.random() < self.duplicate:
            super().send_datagram(src, dst, data)


class FixedIds(random.Random):
    """An RNG whose ``randrange`` answers ``value`` (sequence numbers near the wrap)."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def randrange(self, *args, **kwargs):  # noqa: ARG002 - same signature as Random's
        return self.value


class UtpPair:
    """Core ``a`` at :data:`A` dials core ``b`` at :data:`B`; events are collected per side."""

    def __init__(self, net: MemoryNetwork, *, rng_a=None, rng_b=None) -> None:
        self.net = net
        self.a = UtpMultiplexer(rng=rng_a or random.Random(1))
        self.b = UtpMultiplexer(rng=rng_b or random.Random(2))
        self.events = {"a": [], "b": []}
        self.received = {"a": bytearray(), "b": bytearray()}
        self.end_a = DatagramEndpoint(net, A, self.a, lambda e: self._event("a", e))
        self.end_b = DatagramEndpoint(net, B, self.b, lambda e: self._event("b", e))

    def _event(self, side: str, event) -> None:
        self.events[side].append(event)
        if isinstance(event, DataReceived):
            self.received[side] += event.data

    def connect(self):
        key = self.a.connect(B, now=self.net.now)
        self.end_a.pump()
        return key

    def ended(self, side: str) -> bool:
        return any(isinstance(e, StreamEnded) for e in self.events[side])

    def closed(self, side: str) -> list[str]:
        return [e.reason for e in self.events[side] if isinstance(e, ConnectionClosed)]
