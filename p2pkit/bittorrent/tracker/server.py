"""asyncio driver for :class:`~p2pkit.bittorrent.tracker.core.TrackerCore`: an HTTP tracker
(BEP 3 §trackers, BEP 48 scrape) and a UDP tracker (BEP 15) on one swarm registry.

The driver only moves bytes: it reads one HTTP request head per connection (bounded by
:data:`~p2pkit.bittorrent.tracker.http.MAX_HEAD_SIZE` and :data:`REQUEST_TIMEOUT`), hands it to
the core, writes the answer and closes (HTTP/1.0, no keep-alive); UDP datagrams go to the core
and its answers go back out. Admission: at most :data:`MAX_CONNECTIONS` HTTP connections, and
:data:`MAX_CONNECTIONS_PER_ADDRESS` from one IP address; a connection beyond either replaces
the oldest one still waiting for its request head (idle sockets cannot keep an announce out),
and is refused only when every slot is busy answering. The clock is injected (``clock``, :func:`time.monotonic` by
default).

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

__all__ = ["MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_ADDRESS", "REQUEST_TIMEOUT", "TrackerServer"]

log = logging.getLogger("p2pkit.bittorrent.tracker.server")

#: Seconds a client has to send its request head and read the answer.
REQUEST_TIMEOUT = 10.0
#: Most HTTP connections open at once (see the module docstring for who makes room).
MAX_CONNECTIONS = 256
#: Most HTTP connections open at once from one IP address.
MAX_CONNECTIONS_PER_ADDRESS = 32


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


class TrackerServer:
    """HTTP and UDP tracker endpoints on one :class:`TrackerCore`.

    ``on_event`` is called with every core event (announces, scrapes, refusals).
    """

    def __init__(self, core: TrackerCore, *, clock: Callable[[], float] = time.monotonic,
                 on_event: Callable[[Any], None] | None = None) -> None:
        self.core = core
        self.clock = clock
        self.on_event = on_event
        self._http: asyncio.AbstractServer | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.Task | None = None
        #: Open HTTP connections, oldest first: writer -> the client's IP address.
        self._open: dict[asyncio.StreamWriter, str | None] = {}
        #: Those still waiting for their request head (the ones that may be evicted).
        self._waiting: set[asyncio.StreamWriter] = set()
        self.http_port: int | None = None
        self.udp_port: int | None = None

    async def start(self, *, host: str = "127.0.0.1", http_port: int | None = None,
                    udp_port: int | None = None) -> None:
        """Listen (port 0 picks a free one; ``None`` leaves that tracker off)."""
        loop = asyncio.get_running_loop()
        if http_port is not None:
            self._http = await asyncio.start_server(self._serve_http, host, http_port,
                                                    limit=MAX_HEAD_SIZE)
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
            await self._http.wait_closed()

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

    def _admit(self, host: str | None) -> bool:
        """Room for one more connection from ``host``, evicting an idle one if need be."""
        same = [w for w, h in self._open.items() if h == host]
        if len(same) >= MAX_CONNECTIONS_PER_ADDRESS and not self._evict(same):
            return False
        return len(self._open) < MAX_CONNECTIONS or self._evict(list(self._open))

    def _evict(self, candidates: list[asyncio.StreamWriter]) -> bool:
        """Close the oldest of ``candidates`` still waiting for its request head."""
        victim = next((w for w in candidates if w in self._waiting), None)
        if victim is None:
            return False
        self._open.pop(victim, None)
        self._waiting.discard(victim)
        victim.transport.abort()
        return True

    async def _serve_http(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if peer else None
        if not self._admit(host):
            writer.transport.abort()
            return
        self._open[writer] = host
        self._waiting.add(writer)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except asyncio.LimitOverrunError:
                head = None
            self._waiting.discard(writer)
            if head is None:
                answer = self.core.http_head_too_large(peer)
            else:
                answer = self.core.handle_http_request(head, peer, now=self.clock())
            self.drain_events()
            writer.write(answer)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception as e:  # a bug one client's request reached: that client only
            log.warning("closing %s: %s: %s", host, type(e).__name__, e)
        finally:
            self._open.pop(writer, None)
            self._waiting.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
