"""The uTP socket core: one UDP socket, many connections (BEP 29), sans-I/O.

The :class:`~p2pkit.core.DatagramCore` surface: ``receive_datagram(data, addr, now)``,
``next_event()``, ``datagrams_to_send(now)``, ``get_timer()``, ``handle_timer(now)``; and the
application's calls :meth:`UtpMultiplexer.connect`, :meth:`~UtpMultiplexer.send`,
:meth:`~UtpMultiplexer.close`, :meth:`~UtpMultiplexer.abort`. Connections are keyed by
``(address, recv_id)`` (BEP 29 §connection setup: each side receives on its own id, and the
remote sends with it).

Hostile input is bounded: a datagram that does not parse is dropped; a packet for an unknown
connection is answered with ST_RESET (BEP 29 §ST_RESET: "Terminate connection forcefully";
libutp answers every non-reset packet for no connection so), at most :data:`RESET_RATE` per
second with a burst of :data:`RESET_BURST` (a token bucket: a spoofed flood is answered by a
trickle, never amplified, and ST_RESETs themselves are never answered); an ST_SYN is
refused while :data:`MAX_HALF_OPEN` accepted connections still wait for their first data (a SYN
flood fills that cap and nothing else), or when :data:`MAX_CONNECTIONS` are open.

Two cores on an in-memory network (:class:`~p2pkit.core.MemoryNetwork`):

>>> import random
>>> from p2pkit.core import MemoryNetwork, DatagramEndpoint
>>> net = MemoryNetwork(seed=1, latency=(0.01, 0.02))
>>> a, b = UtpMultiplexer(rng=random.Random(1)), UtpMultiplexer(rng=random.Random(2))
>>> got = bytearray()
>>> def on_b(event):
...     if isinstance(event, DataReceived):
...         got.extend(event.data)
>>> end_a = DatagramEndpoint(net, ("10.0.0.1", 1), a)
>>> end_b = DatagramEndpoint(net, ("10.0.0.2", 1), b, on_b)
>>> key = a.connect(("10.0.0.2", 1), now=0.0)
>>> a.send(key, b"hello" * 1000)
>>> end_a.pump(); net.run(until=5.0)
>>> bytes(got) == b"hello" * 1000
True
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from p2pkit.bittorrent.utp.connection import (
    RECEIVE_WINDOW,
    DataRun,
    UtpConnection,
    timestamp_us,
)
from p2pkit.bittorrent.utp.events import (
    ConnectionAccepted,
    ConnectionKey,
    DataReceived,
)
from p2pkit.bittorrent.utp.mtu import ETHERNET_MTU, PathMtu, datagram_ceiling
from p2pkit.bittorrent.utp.sequence import SEQ_MASK
from p2pkit.bittorrent.wire.utp import (
    HEADER_SIZE,
    ST_DATA_V1,
    UtpPacket,
    build_plain_packet,
    unpack_header,
)
from p2pkit.core import NEED_DATA, Address, Event, NeedData
from p2pkit.errors import LocalProtocolError, ParseError

__all__ = ["MAX_CONNECTIONS", "MAX_HALF_OPEN", "RESET_BURST", "RESET_RATE", "UtpMultiplexer"]

#: Accepted connections waiting for their first ST_DATA, at most (SYN flood bound).
MAX_HALF_OPEN = 64
#: Connections per socket, at most.
MAX_CONNECTIONS = 1024
#: ST_RESETs sent per second for packets of unknown connections, and the burst allowed.
RESET_RATE = 10.0
RESET_BURST = 20.0
#: A window advertised below this is followed by an update once the application takes data
#: (as TCP's window update after a small window).
WINDOW_UPDATE = RECEIVE_WINDOW // 2


class UtpMultiplexer:
    """Every uTP connection of one UDP socket (see the module docstring).

    ``accept``: answer incoming ST_SYNs (a listening socket); ``rng`` picks connection ids and
    first sequence numbers; ``link_mtu(address)`` is the MTU of the interface that reaches
    ``address`` (the ceiling of the path MTU search, :mod:`.mtu`; Ethernet's 1500 without it).
    """

    def __init__(self, *, rng: random.Random | None = None, accept: bool = True,
                 max_connections: int = MAX_CONNECTIONS,
                 max_half_open: int = MAX_HALF_OPEN,
                 link_mtu: Callable[[Address], int] | None = None) -> None:
        self.rng = rng or random.Random()
        self.accepting = accept
        self.max_connections = max_connections
        self.max_half_open = max_half_open
        self.connections: dict[ConnectionKey, UtpConnection] = {}
        self._events: deque[Event] = deque()
        self._outgoing: list[tuple[bytes, Any]] = []
        #: Datagrams dropped: unparseable, for no known connection, SYNs refused.
        self.dropped = {"malformed": 0, "unknown connection": 0, "syn refused": 0}
        #: ST_RESETs sent for unknown connections.
        self.resets_sent = 0
        self.link_mtu = link_mtu
        self._reset_tokens = RESET_BURST
        self._reset_time: float | None = None

    def _path_mtu(self, address: Address) -> PathMtu:
        link = self.link_mtu(address) if self.link_mtu is not None else ETHERNET_MTU
        version = 6 if ":" in str(address[0]) else 4
        return PathMtu(ceiling=datagram_ceiling(link, version))

    # -- the application's side --------------------------------------------------------------

    def connect(self, address: Address, *, now: float) -> ConnectionKey:
        """Open a connection to ``address`` (ST_SYN); returns its key."""
        if len(self.connections) >= self.max_connections:
            raise LocalProtocolError(f"already {self.max_connections} uTP connections")
        for _ in range(64):
            recv_id = self.rng.randrange(0x10000)
            key = (address, recv_id)
            # Our send id is recv_id + 1: neither may collide with a connection to address.
            if key not in self.connections and (address, (recv_id + 1) & SEQ_MASK) not in \
                    self.connections:
                break
        else:
            raise LocalProtocolError(f"no free uTP connection id towards {address}")
        conn = UtpConnection.initiate(key=key, seq_nr=self.rng.randrange(0x10000), now=now,
                                      events=self._events, outgoing=self._outgoing,
                                      mtu=self._path_mtu(address))
        self.connections[key] = conn
        return key

    def _get(self, key: ConnectionKey) -> UtpConnection:
        conn = self.connections.get(key)
        if conn is None:
            raise LocalProtocolError(f"no uTP connection {key}")
        return conn

    def send(self, key: ConnectionKey, data: bytes) -> None:
        """Queue ``data`` on connection ``key``; it leaves with :meth:`datagrams_to_send`."""
        self._get(key).send(data)

    def buffered(self, key: ConnectionKey) -> int:
        """Bytes of ``key`` queued or in flight (for the driver's write flow control)."""
        conn = self.connections.get(key)
        return conn.buffered if conn is not None else 0

    def hold(self, key: ConnectionKey, nbytes: int) -> None:
        """The application holds ``nbytes`` received on ``key`` unread (it paused reading):
        they shrink the window ``key`` advertises, as a full TCP receive buffer does."""
        conn = self.connections.get(key)
        if conn is not None:
            if nbytes < conn.held:
                conn.ack_pending = True  # tell the remote the window opened
            conn.held = nbytes

    def close(self, key: ConnectionKey) -> None:
        """Finish ``key`` gracefully: ST_FIN after the queued data."""
        conn = self.connections.get(key)
        if conn is not None:
            conn.close()
            self._reap(conn)

    def abort(self, key: ConnectionKey, *, now: float) -> None:
        """Reset ``key`` (ST_RESET) and forget it."""
        conn = self.connections.get(key)
        if conn is not None:
            conn.abort(now)
            self._reap(conn)

    # -- DatagramCore ------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram from ``addr`` (known to be uTP: a driver sharing the port with the
        DHT sorts datagrams first, :func:`~p2pkit.bittorrent.wire.utp.looks_like_utp`).

        An ST_DATA packet without extensions (nearly every packet of a transfer) is read with
        the header's struct alone and offered to its connection's in-order path
        (:meth:`~.connection.UtpConnection.receive_in_order`); anything else is parsed whole."""
        if len(data) > HEADER_SIZE and data[0] == ST_DATA_V1 and not data[1]:
            header = unpack_header(data)
            conn = self.connections.get((addr, header[2]))
            if conn is not None and conn.receive_in_order(header, data, now):
                return
        try:
            pkt = UtpPacket.parse(data)
        except ParseError:
            self.dropped["malformed"] += 1
            return
        if pkt.type == "st_syn":
            self._syn(pkt, addr, now)
            return
        conn = self.connections.get((addr, pkt.connection_id))
        if conn is None and pkt.type == "st_reset":
            # libutp answers a packet it has no connection for with a reset carrying that
            # packet's id, our *send* id; it looks resets up the same way (id and id ± 1).
            for other in ((pkt.connection_id - 1) & SEQ_MASK, (pkt.connection_id + 1) & SEQ_MASK):
                candidate = self.connections.get((addr, other))
                if candidate is not None and candidate.send_id == pkt.connection_id:
                    conn = candidate
                    break
        if conn is None:
            self.dropped["unknown connection"] += 1
            if pkt.type != "st_reset":
                self._reset(pkt, addr, now)
            return
        conn.receive(pkt, now)
        self._reap(conn)

    def _reset(self, pkt: Any, addr: Address, now: float) -> None:
        """BEP 29 §ST_RESET for a packet of no connection, as libutp sends it: the packet's
        own ``connection_id`` and its ``seq_nr`` as ``ack_nr`` (the remote finds its
        connection by that id, its send id), rate-limited by a token bucket."""
        if self._reset_time is not None:
            elapsed = max(now - self._reset_time, 0.0)
            self._reset_tokens = min(RESET_BURST, self._reset_tokens + elapsed * RESET_RATE)
        self._reset_time = now
        if self._reset_tokens < 1.0:
            return
        self._reset_tokens -= 1.0
        self.resets_sent += 1
        self._outgoing.append((build_plain_packet(
            "st_reset", pkt.connection_id, timestamp_us(now), 0, 0,
            self.rng.randrange(0x10000), pkt.seq_nr, b""), addr))

    def _syn(self, pkt: Any, addr: Address, now: float) -> None:
        key = (addr, (pkt.connection_id + 1) & SEQ_MASK)
        existing = self.connections.get(key)
        if existing is not None:
            existing.receive(pkt, now)  # a resent SYN
            return
        half_open = sum(1 for c in self.connections.values() if c.half_open)
        if (not self.accepting or half_open >= self.max_half_open
                or len(self.connections) >= self.max_connections):
            self.dropped["syn refused"] += 1
            return
        conn = UtpConnection.accept(address=addr, syn=pkt, seq_nr=self.rng.randrange(0x10000),
                                    now=now, events=self._events, outgoing=self._outgoing,
                                    mtu=self._path_mtu(addr))
        self.connections[conn.key] = conn
        self._events.append(ConnectionAccepted(key=conn.key))

    def next_event(self) -> Event | NeedData:
        if not self._events:
            return NEED_DATA
        event = self._events.popleft()
        if type(event) is DataRun:
            chunks = event.chunks
            event = DataReceived(key=event.key,
                                 data=chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if isinstance(event, DataReceived):
            conn = self.connections.get(event.key)
            if conn is not None:
                conn.unread -= len(event.data)
                if conn.advertised < WINDOW_UPDATE:
                    # The window we advertised was small and the application took data: say
                    # it opened (with the next flush), or the remote waits for a timeout.
                    conn.ack_pending = True
        return event

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        for conn in list(self.connections.values()):
            conn.flush(now)
            self._reap(conn)
        out, self._outgoing[:] = list(self._outgoing), []
        return out

    def get_timer(self) -> float | None:
        times = [t for c in self.connections.values() if (t := c.get_timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for conn in list(self.connections.values()):
            when = conn.get_timer()
            if when is not None and when <= now:
                conn.handle_timer(now)
                self._reap(conn)

    def _reap(self, conn: UtpConnection) -> None:
        """Free a closed connection's state (its ConnectionClosed event is already queued)."""
        if conn.state == "CLOSED":
            self.connections.pop(conn.key, None)

