"""asyncio driver for :class:`~p2pkit.bittorrent.tracker.core.TrackerCore`: an HTTP tracker
(BEP 3 §trackers, BEP 48 scrape) and a UDP tracker (BEP 15) on one swarm registry.

The driver only moves bytes: it reads one HTTP request head per connection (bounded by
:data:`~p2pkit.bittorrent.tracker.http.MAX_HEAD_SIZE` and :data:`REQUEST_TIMEOUT`), hands it to
the core, writes the answer and closes (HTTP/1.0, no keep-alive); UDP datagrams go to the core
and its answers go back out. Admission: at most :data:`MAX_CONNECTIONS` HTTP connections, and
:data:`MAX_CONNECTIONS_PER_ADDRESS` from one IP address; a connection beyond either replaces
the oldest one still waiting for its request head (idle sockets cannot keep an announce out),
and is refused only when every slot is busy answering. The clock is injected (``clock``,
:func:`time.monotonic` by default).

Each HTTP connection is a plain :class:`asyncio.Protocol` (no stream reader, no task per
connection): refusing or evicting costs a few dictionary operations, and the head is searched
for its blank line only in the bytes that just arrived, so a flood of connections (churn,
oversized heads, garbage) costs the loop little and a well-behaved announce waits little
behind it (issue 13). Every per-connection structure (the open table, the per-address counts,
the waiting queues) loses its entry in ``connection_lost``: once the clients leave, they are
empty.

>>> import asyncio, random, urllib.request
>>> from p2pkit.bittorrent.tracker.core import TrackerCore
>>> async def demo():
...     server = TrackerServer(TrackerCore(rng=random.Random(0)))
...     await server.start(host="127.0.0.1", http_port=0, udp_port=None)
...     url = f"http://127.0.0.1:{server.http_port}/scrape"
...     body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
...     await server.close()
...     return body
>>> asyncio.run(demo())
b'd5:filesdee'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from p2pkit.bittorrent.tracker.core import TrackerCore
from p2pkit.bittorrent.tracker.http import MAX_HEAD_SIZE
from p2pkit.first_flight import defer_accept

__all__ = ["MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_ADDRESS", "REQUEST_TIMEOUT", "TrackerServer"]

log = logging.getLogger("p2pkit.bittorrent.tracker.server")

#: Seconds a client has to send its request head and read the answer.
REQUEST_TIMEOUT = 10.0
#: Most HTTP connections open at once (see the module docstring for who makes room).
MAX_CONNECTIONS = 256
#: Most HTTP connections open at once from one IP address.
MAX_CONNECTIONS_PER_ADDRESS = 32

_GONE: Any = object()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: TrackerServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        server = self.server
        now = server.clock()
        server.core.receive_datagram(data, addr, now=now)
        for datagram in server.core.datagrams_to_send(now):
            if self.transport is not None:
                self.transport.sendto(datagram.data, datagram.addr)
        server.drain_events()

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        pass


class _HttpConnection(asyncio.Protocol):
    """One HTTP connection: read the request head, answer it, close (HTTP/1.0)."""

    __slots__ = ("server", "transport", "host", "peer", "buffer", "timer", "answered")

    def __init__(self, server: TrackerServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.host: str | None = None
        self.peer: Any = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.answered = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer
        self.host = peer[0] if peer else None
        if not self.server._admit(self):
            self.answered = True
            transport.abort()
            return
        self.timer = self.server._loop.call_later(REQUEST_TIMEOUT, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return
        buffer = self.buffer
        searched = max(0, len(buffer) - 3)  # a blank line may straddle two reads
        buffer += data
        end = buffer.find(b"\r\n\r\n", searched)
        if end < 0 and len(buffer) <= MAX_HEAD_SIZE:
            return
        self.answered = True
        server = self.server
        server._answering(self)
        try:
            if end < 0 or end + 4 > MAX_HEAD_SIZE:
                answer = server.core.http_head_too_large(self.peer)
            else:
                answer = server.core.handle_http_request(bytes(buffer[:end + 4]), self.peer,
                                                         now=server.clock())
            server.drain_events()
        except Exception as e:  # a bug one client's request reached: that client only
            log.warning("closing %s: %s: %s", self.host, type(e).__name__, e)
            self.transport.close()
            return
        finally:
            self.buffer = bytearray()
        # the client has REQUEST_TIMEOUT again to read the answer; close() sends it first
        self.timer.cancel()
        self.timer = server._loop.call_later(REQUEST_TIMEOUT, self.transport.abort)
        self.transport.write(answer)
        self.transport.close()

    def eof_received(self) -> bool:
        return False  # a head cut short: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.server._forget(self)


class TrackerServer:
    """HTTP and UDP tracker endpoints on one :class:`TrackerCore`.

    ``on_event`` is called with every core event (announces, scrapes, refusals).
    """

    def __init__(self, core: TrackerCore, *, clock: Callable[[], float] = time.monotonic,
                 on_event: Callable[[Any], None] | None = None) -> None:
        self.core = core
        self.clock = clock
        self.on_event = on_event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: asyncio.AbstractServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.Task | None = None
        #: Open HTTP connections, oldest first: connection -> the client's IP address.
        self._open: dict[_HttpConnection, str | None] = {}
        #: Open HTTP connections per IP address (an address with none has no entry).
        self._per_address: dict[str | None, int] = {}
        #: Those still waiting for their request head (the ones that may be evicted), oldest
        #: first: all of them, and per IP address.
        self._waiting: dict[_HttpConnection, None] = {}
        self._waiting_per_address: dict[str | None, dict[_HttpConnection, None]] = {}
        self.http_port: int | None = None
        self.udp_port: int | None = None

    async def start(self, *, host: str = "127.0.0.1", http_port: int | None = None,
                    udp_port: int | None = None) -> None:
        """Listen (port 0 picks a free one; ``None`` leaves that tracker off)."""
        loop = self._loop = asyncio.get_running_loop()
        if http_port is not None:
            self._http = await loop.create_server(lambda: _HttpConnection(self), host,
                                                  http_port, backlog=MAX_CONNECTIONS)
            # the client speaks first: connect/close churn never wakes us (issue 13)
            defer_accept(self._http)
            self.http_port = self._http.sockets[0].getsockname()[1]
        if udp_port is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, udp_port))
            self._udp = transport
            self.udp_port = transport.get_extra_info("sockname")[1]
        self._timer = asyncio.create_task(self._run_timers())

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._udp is not None:
            self._udp.close()
        if self._http is not None:
            self._http.close()
            for connection in list(self._open):
                connection.transport.abort()
            await self._http.wait_closed()
            await asyncio.sleep(0)  # connection_lost callbacks of the aborted connections

    def drain_events(self) -> None:
        while (event := self.core.next_event()) is not None:
            if self.on_event is not None:
                self.on_event(event)

    async def _run_timers(self) -> None:
        while True:
            deadline = self.core.get_timer()
            delay = 60.0 if deadline is None else max(0.0, deadline - self.clock())
            await asyncio.sleep(min(delay, 60.0))
            if deadline is not None and self.clock() >= deadline:
                self.core.handle_timer(self.clock())

    # ---- admission: O(1) per connection ---------------------------------------------------

    def _admit(self, connection: _HttpConnection) -> bool:
        """Room for ``connection`` (evicting an idle one if need be); registers it if so."""
        host = connection.host
        if (self._per_address.get(host, 0) >= MAX_CONNECTIONS_PER_ADDRESS
                and not self._evict(self._waiting_per_address.get(host))):
            return False
        if len(self._open) >= MAX_CONNECTIONS and not self._evict(self._waiting):
            return False
        self._open[connection] = host
        self._per_address[host] = self._per_address.get(host, 0) + 1
        self._waiting[connection] = None
        self._waiting_per_address.setdefault(host, {})[connection] = None
        return True

    def _evict(self, candidates: dict[_HttpConnection, None] | None) -> bool:
        """Close the oldest of ``candidates`` (connections still waiting for their head)."""
        if not candidates:
            return False
        victim = next(iter(candidates))
        self._forget(victim)
        victim.transport.abort()
        return True

    def _answering(self, connection: _HttpConnection) -> None:
        """``connection`` sent its head: it may no longer be evicted."""
        if self._waiting.pop(connection, _GONE) is None:
            waiting = self._waiting_per_address[connection.host]
            del waiting[connection]
            if not waiting:
                del self._waiting_per_address[connection.host]

    def _forget(self, connection: _HttpConnection) -> None:
        """Drop every trace of ``connection`` (it may already be gone)."""
        host = self._open.pop(connection, _GONE)
        if host is _GONE:
            return
        self._answering(connection)
        left = self._per_address[host] - 1
        if left:
            self._per_address[host] = left
        else:
            del self._per_address[host]

    def connection_tables(self) -> dict[str, int]:
        """Sizes of the per-connection tables (all 0 once every client has left)."""
        return {"open": len(self._open), "addresses": len(self._per_address),
                "waiting": len(self._waiting),
                "waiting_addresses": len(self._waiting_per_address)}
