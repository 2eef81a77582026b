"""The sans-I/O contract every protocol core follows, and the seeded in-memory transport.

DESIGN.md §Shapes to follow; the shape is h11's, wsproto's and aioquic's. A *core* is a state
machine that takes received bytes (or datagrams) and the time, and returns events and bytes to
send. It never touches a socket, a clock, a thread or a global random generator: time comes in
as ``now`` (seconds, any monotonic origin) on every call that may depend on it, randomness from
a ``random.Random`` given to its constructor. Drivers (asyncio servers, the simulators, the
conformance harness, the tests' pair helpers) move the bytes.

Two flavours, one vocabulary:

* :class:`StreamCore` (one TCP connection; BitTorrent peer wire, Gnutella, HTTP):
  ``receive_data(data, now)`` (``b""`` is end of stream), ``next_event()`` (an :class:`Event`
  or :data:`NEED_DATA`), ``send(event, now) -> bytes`` for what the application asks,
  ``data_to_send() -> bytes`` for what the core decided to write by itself (answers, timers).
* :class:`DatagramCore` (one UDP socket, many remotes; the DHT node, the UDP tracker client):
  ``receive_datagram(data, addr, now)``, ``next_event()``, ``datagrams_to_send(now)``.
* Both: ``get_timer() -> float | None`` (the next time ``handle_timer`` must be called,
  ``None`` when nothing is due) and ``handle_timer(now)``.

A peer's mistake surfaces from ``receive_*``/``next_event`` as
:class:`~p2pkit.errors.RemoteProtocolError`; a local one from ``send`` as
:class:`~p2pkit.errors.LocalProtocolError` (h11).

The transport (:class:`MemoryNetwork`) is the one in-memory network of the project: every
simulator and every pair helper of the tests moves bytes through it, with seeded latency, loss,
bandwidth and reordering, on a simulated clock that jumps from one event to the next.

>>> net = MemoryNetwork(seed=1, latency=(0.01, 0.01))
>>> got = []
>>> net.listen(("10.0.0.2", 1), lambda data, src, now: got.append((data, src, now)))
>>> net.send_datagram(("10.0.0.1", 1), ("10.0.0.2", 1), b"ping")
>>> net.run()
>>> got
[(b'ping', ('10.0.0.1', 1), 0.01)]
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "NEED_DATA",
    "Address",
    "DatagramCore",
    "DatagramEndpoint",
    "Event",
    "MemoryNetwork",
    "NeedData",
    "Outbox",
    "StreamCore",
    "StreamPair",
    "Untimed",
    "run_datagram_core",
]

#: An endpoint: (host, port).
Address = tuple[str, int]


class NeedData:
    """The type of :data:`NEED_DATA`: the core holds no complete event; feed it more bytes."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:  # one sentinel, also across copy/pickle
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


#: What ``next_event()`` returns when no complete event is buffered (h11's ``NEED_DATA``).
NEED_DATA = NeedData()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event a core returns or accepts.

    Subclasses are frozen, keyword-only dataclasses named after the spec's message or outcome
    (``Have(index=3)``, ``QueryHit(...)``, ``LookupFinished(...)``), validated in
    ``__post_init__`` with the spec sentence each check enforces.
    """


@runtime_checkable
class StreamCore(Protocol):
    """One connection of a stream protocol, sans-I/O (h11's ``Connection`` surface)."""

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes received (``b""``: the remote closed its side)."""

    def next_event(self) -> Event | NeedData:
        """The next event, or :data:`NEED_DATA`."""

    def send(self, event: Event, now: float) -> bytes:
        """The bytes that put ``event`` on the wire (also queued nowhere: write them)."""

    def data_to_send(self) -> bytes:
        """Bytes the core decided to write by itself since the last call (answers, timers)."""

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or ``None``."""

    def handle_timer(self, now: float) -> None:
        """Time has reached :meth:`get_timer`: keep-alives, timeouts, retransmissions."""


class Outbox:
    """The part most stream cores share: bytes queued in ``self._out`` (a ``bytearray``) as the
    core decides to write them, handed over once by :meth:`data_to_send`."""

    _out: bytearray

    def data_to_send(self) -> bytes:
        """Bytes the core queued since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out


class Untimed:
    """A core with no timer of its own (its driver never needs to wake it)."""

    def get_timer(self) -> float | None:
        """Always ``None``."""
        return None

    def handle_timer(self, now: float) -> None:
        """Nothing to do."""
        return None


@runtime_checkable
class DatagramCore(Protocol):
    """One datagram socket talking to many remotes, sans-I/O (aioquic's surface)."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """A datagram from ``addr``."""

    def next_event(self) -> Event | NeedData:
        """The next event, or :data:`NEED_DATA`."""

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Datagrams to send now, each with its destination."""

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called, or ``None``."""

    def handle_timer(self, now: float) -> None:
        """Time has reached :meth:`get_timer`: retransmissions, timeouts, maintenance."""


DatagramHandler = Callable[[bytes, Address, float], None]
StreamHandler = Callable[[bytes, float], None]


class MemoryNetwork:
    """A seeded in-memory network on a simulated clock (the one transport of the simulators).

    * ``latency``: (low, high) one-way delay in seconds, drawn uniformly per datagram or per
      stream write.
    * ``loss``: fraction of datagrams dropped (streams are reliable, as TCP).
    * ``bandwidth``: bytes per second of each sender's uplink, or ``None`` for unlimited;
      writes queue behind each other on the link.
    * ``reorder``: fraction of datagrams delayed by one more latency draw, so they may overtake
      or be overtaken (streams stay in order).

    Callbacks scheduled with :meth:`call_at` and deliveries run in time order; equal times
    run in the order they were scheduled, so a run is a function of the seed.
    """

    def __init__(self, *, seed: int, latency: tuple[float, float] = (0.0, 0.0),
                 loss: float = 0.0, bandwidth: float | None = None,
                 reorder: float = 0.0) -> None:
        if not 0.0 <= loss <= 1.0 or not 0.0 <= reorder <= 1.0:
            raise ValueError("loss and reorder are fractions in [0, 1]")
        if latency[0] < 0 or latency[1] < latency[0]:
            raise ValueError("latency is (low, high) with 0 <= low <= high")
        if bandwidth is not None and bandwidth <= 0:
            raise ValueError("bandwidth is a positive number of bytes per second")
        self.rng = random.Random(seed)
        self.latency = latency
        self.loss = loss
        self.bandwidth = bandwidth
        self.reorder = reorder
        self.now = 0.0
        #: (time, sequence number, callback, its arguments): a heap.
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._datagram_handlers: dict[Address, DatagramHandler] = {}
        self._uplink_free: dict[Address, float] = {}
        self._stream_last: dict[tuple[Address, Address], float] = {}
        #: Datagrams sent, delivered, lost in transit, and sent to an address nobody listens on.
        self.sent = self.delivered = self.lost = self.undeliverable = 0

    # -- the clock --------------------------------------------------------------------------

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` when the simulated clock reaches ``when`` (not before
        ``now``)."""
        self._seq += 1
        heapq.heappush(self._queue, (max(when, self.now), self._seq, callback, args))

    def run(self, *, until: float | None = None, max_steps: int | None = None,
            stop: Callable[[], bool] | None = None) -> None:
        """Run scheduled work in time order until none is left, ``until`` is reached,
        ``max_steps`` callbacks have run, or ``stop()`` (asked before each step) is true."""
        steps = 0
        queue = self._queue
        pop = heapq.heappop
        while queue:
            when = queue[0][0]
            if until is not None and when > until:
                self.now = until
                return
            if stop is not None and stop():
                return
            _, _, callback, args = pop(queue)
            self.now = when
            callback(*args)
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return
        if until is not None:
            self.now = max(self.now, until)

    @property
    def pending(self) -> int:
        """Scheduled callbacks and deliveries not yet run."""
        return len(self._queue)

    def discard_pending(self) -> None:
        """Forget every scheduled callback and delivery (tear-down). Scheduled callbacks
        refer to the network and to the cores they drive: a network dropped with work pending
        is otherwise kept alive by those reference cycles until the cyclic garbage collector
        runs."""
        self._queue.clear()

    @property
    def in_flight(self) -> int:
        """Datagrams sent and neither delivered, lost nor found undeliverable yet."""
        return self.sent - self.delivered - self.lost - self.undeliverable

    # -- links ------------------------------------------------------------------------------

    def _delay(self, src: Address, size: int) -> float:
        low, high = self.latency
        delay = low if low == high else self.rng.uniform(low, high)
        if self.bandwidth is not None:
            start = max(self.now, self._uplink_free.get(src, 0.0))
            done = start + size / self.bandwidth
            self._uplink_free[src] = done
            delay += done - self.now
        return delay

    # -- datagrams --------------------------------------------------------------------------

    def listen(self, addr: Address, handler: DatagramHandler) -> None:
        """Deliver datagrams sent to ``addr`` to ``handler(data, src, now)``."""
        self._datagram_handlers[addr] = handler

    def close(self, addr: Address) -> None:
        """Nobody listens on ``addr`` any more: datagrams to it vanish (churn)."""
        self._datagram_handlers.pop(addr, None)

    def send_datagram(self, src: Address, dst: Address, data: bytes) -> None:
        """Send one datagram: delivered after a latency draw, maybe lost or reordered."""
        self.sent += 1
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self.lost += 1
            return
        if self.bandwidth is None:  # _delay, inlined: the simulators send many datagrams
            low, high = self.latency
            delay = low if low == high else rng.uniform(low, high)
        else:
            delay = self._delay(src, len(data))
        if self.reorder and rng.random() < self.reorder:
            low, high = self.latency
            delay += rng.uniform(low, high) if high > low else low
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, self._deliver, (data, src, dst)))

    def _deliver(self, data: bytes, src: Address, dst: Address) -> None:
        handler = self._datagram_handlers.get(dst)
        if handler is None:
            self.undeliverable += 1
            return
        self.delivered += 1
        handler(data, src, self.now)

    # -- streams ----------------------------------------------------------------------------

    def send_stream(self, src: Address, dst: Address, data: bytes,
                    handler: StreamHandler) -> None:
        """Write ``data`` on the stream ``src`` → ``dst``: reliable and in order, delivered
        to ``handler(data, now)`` after latency and the sender's bandwidth."""
        key = (src, dst)
        at = max(self.now + self._delay(src, len(data)), self._stream_last.get(key, 0.0))
        self._stream_last[key] = at
        self.call_at(at, lambda: handler(data, self.now))


class DatagramEndpoint:
    """A :class:`DatagramCore` attached to a :class:`MemoryNetwork` at ``addr``: deliveries go
    to ``receive_datagram``, its datagrams to the network, its timer to the clock, its events
    to ``on_event``.

    Call :meth:`pump` after driving the core from outside (starting a lookup), so that what it
    queued is sent and its timer rescheduled; :meth:`close` detaches it (churn: it receives
    nothing and its timers no longer run).
    """

    def __init__(self, net: MemoryNetwork, addr: Address, core: Any,
                 on_event: Callable[[Any], None] | None = None) -> None:
        self.net = net
        self.addr = addr
        self.core = core
        self.on_event = on_event
        self.closed = False
        self._scheduled: float | None = None
        net.listen(addr, self._on_datagram)
        self.pump()  # schedule the core's first timer

    def pump(self) -> None:
        """Send what the core queued, hand its events to ``on_event``, arm its timer."""
        if self.closed:
            return
        core, net, addr = self.core, self.net, self.addr
        send = net.send_datagram
        for data, dst in core.datagrams_to_send(net.now):
            send(addr, dst, data)
        on_event = self.on_event
        if on_event is not None:
            while (event := core.next_event()) is not NEED_DATA:
                on_event(event)
        when = core.get_timer()
        if when is not None and when != self._scheduled:
            self._scheduled = when
            net.call_at(when, self._on_timer, when)
        self.pumped()

    def pumped(self) -> None:
        """Called at the end of every :meth:`pump` (a hook for drivers that watch the core,
        such as a simulator that must know which cores still wait for answers)."""

    def close(self) -> None:
        """Stop listening; datagrams to ``addr`` vanish and timers are ignored."""
        self.closed = True
        self.net.close(self.addr)

    def _on_timer(self, when: float) -> None:
        if self._scheduled != when or self.closed:
            return  # superseded by an earlier or later timer
        self._scheduled = None
        self.core.handle_timer(self.net.now)
        self.pump()

    def _on_datagram(self, data: bytes, src: Address, now: float) -> None:
        self.core.receive_datagram(data, src, now)
        self.pump()


def run_datagram_core(net: MemoryNetwork, addr: Address, core: Any,
                      on_event: Callable[[Any], None] | None = None) -> Callable[[], None]:
    """Attach a :class:`DatagramCore` to ``net`` at ``addr`` (a :class:`DatagramEndpoint`)
    and return its ``pump``, to call after driving the core from outside (starting a lookup)
    so that what it queued is sent and its timer rescheduled."""
    return DatagramEndpoint(net, addr, core, on_event).pump


class StreamPair:
    """Two :class:`StreamCore` ends joined by a reliable in-memory stream (h11's
    ``ConnectionPair``, aioquic's ``client_and_server()``), over a :class:`MemoryNetwork`.

    ``send(side, event)`` writes an event from one end; :meth:`run` delivers everything in
    flight (and what the cores answer by themselves) and returns the events each end saw.
    """

    def __init__(self, a: Any, b: Any, *, net: MemoryNetwork | None = None,
                 addresses: tuple[Address, Address] = (("10.0.0.1", 1), ("10.0.0.2", 2))):
        self.net = net if net is not None else MemoryNetwork(seed=0)
        self.ends = (a, b)
        self.addresses = addresses
        self.events: tuple[list[Any], list[Any]] = ([], [])

    def _other(self, side: int) -> int:
        return 1 - side

    def write(self, side: int, data: bytes) -> None:
        """Put raw bytes on the wire from end ``side`` (0 or 1)."""
        if not data:
            return
        dst = self._other(side)
        self.net.send_stream(self.addresses[side], self.addresses[dst], data,
                             lambda d, now, dst=dst: self._deliver(dst, d, now))

    def send(self, side: int, event: Any) -> None:
        """End ``side`` sends ``event``."""
        self.write(side, self.ends[side].send(event, self.net.now))
        self._flush(side)

    def _flush(self, side: int) -> None:
        self.write(side, self.ends[side].data_to_send())

    def _deliver(self, side: int, data: bytes, now: float) -> None:
        core = self.ends[side]
        core.receive_data(data, now)
        while (event := core.next_event()) is not NEED_DATA:
            self.events[side].append(event)
        self._flush(side)

    def run(self, *, until: float | None = None) -> tuple[list[Any], list[Any]]:
        """Deliver everything in flight; returns and clears the events each end received."""
        self.net.run(until=until)
        out = (list(self.events[0]), list(self.events[1]))
        self.events[0].clear()
        self.events[1].clear()
        return out
