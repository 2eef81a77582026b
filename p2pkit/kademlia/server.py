"""The DHT node on a real UDP socket: an asyncio driver for :class:`~p2pkit.kademlia.node.Node`.

A driver moves bytes and time and holds no protocol logic (DESIGN.md): each datagram goes to
``Node.receive_datagram`` with the loop's clock, what the node queues is sent, and the node's
timer is armed with ``loop.call_at``. Operations are awaitable:

    server = await DhtServer.start("127.0.0.1", 6881)
    await server.bootstrap([("127.0.0.2", 6881)])
    done = await server.get_peers(info_hash)        # a LookupDone
    server.close()
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from typing import Any

from p2pkit.kademlia.node import LookupDone, Node, PingDone, StoreDone

__all__ = ["DhtServer", "OPERATION_TIMEOUT"]

log = logging.getLogger(__name__)

#: Seconds an awaited operation may take before ``asyncio.TimeoutError``.
OPERATION_TIMEOUT = 60.0

Address = tuple[str, int]


class DhtServer(asyncio.DatagramProtocol):
    """One node bound to one UDP socket."""

    def __init__(self, node: Node, *, on_event: Callable[[Any], None] | None = None) -> None:
        self.node = node
        self.on_event = on_event
        self.transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: dict[int, asyncio.Future] = {}
        #: Exceptions the node raised on a datagram (a bug; the server keeps serving).
        self.internal_errors = 0

    @classmethod
    async def start(cls, host: str, port: int, *, node_id: bytes | None = None,
                    rng: random.Random | None = None, on_event: Callable[[Any], None] | None
                    = None, **options: Any) -> DhtServer:
        """Bind ``host:port`` (port 0 picks one) and serve a new node there."""
        loop = asyncio.get_running_loop()
        node = Node(node_id, rng=rng or random.Random(), now=loop.time(), **options)
        _, server = await loop.create_datagram_endpoint(
            lambda: cls(node, on_event=on_event), local_addr=(host, port))
        return server

    @property
    def address(self) -> Address:
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    # ---- asyncio.DatagramProtocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._flush()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.node.receive_datagram(data, (addr[0], addr[1]), self._loop.time())
        except Exception:  # a bug in the node must not stop the server; it is logged
            self.internal_errors += 1
            log.exception("node failed on a datagram from %s", addr)
        self._flush()

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("DHT server closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---- moving bytes and time ---------------------------------------------------------------

    def _flush(self) -> None:
        now = self._loop.time()
        if self.transport is None or self.transport.is_closing():
            return
        for data, dst in self.node.datagrams_to_send(now):
            try:
                self.transport.sendto(data, dst)
            except (OSError, ValueError) as e:
                log.debug("cannot send to %s: %s", dst, e)
        while (event := self.node.next_event()) is not None:
            waiter = self._waiters.pop(getattr(event, "operation", None), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
            elif self.on_event is not None:
                self.on_event(event)
        at = self.node.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer = None if at == math.inf else self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.node.handle_timer(self._loop.time())
        self._flush()

    async def _wait(self, start: Callable[[float], int], timeout: float) -> Any:
        operation = start(self._loop.time())
        waiter = self._loop.create_future()
        self._waiters[operation] = waiter
        self._flush()
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiters.pop(operation, None)

    # ---- awaitable operations ----------------------------------------------------------------

    async def ping(self, addr: Address, timeout: float = OPERATION_TIMEOUT) -> PingDone:
        return await self._wait(lambda now: self.node.ping(addr, now), timeout)

    async def bootstrap(self, addrs: list[Address],
                        timeout: float = OPERATION_TIMEOUT) -> LookupDone:
        return await self._wait(lambda now: self.node.bootstrap(addrs, now), timeout)

    async def find_node(self, target: bytes, timeout: float = OPERATION_TIMEOUT) -> LookupDone:
        return await self._wait(lambda now: self.node.find_node(target, now), timeout)

    async def get_peers(self, info_hash: bytes,
                        timeout: float = OPERATION_TIMEOUT) -> LookupDone:
        return await self._wait(lambda now: self.node.get_peers(info_hash, now), timeout)

    async def announce_peer(self, info_hash: bytes, port: int, *, implied_port: bool = False,
                            timeout: float = OPERATION_TIMEOUT) -> StoreDone:
        return await self._wait(lambda now: self.node.announce_peer(
            info_hash, port, now, implied_port=implied_port), timeout)

    async def get(self, target: bytes, *, salt: bytes = b"",
                  timeout: float = OPERATION_TIMEOUT) -> LookupDone:
        return await self._wait(lambda now: self.node.get(target, now, salt=salt), timeout)

    async def put(self, v: Any, *, seed: bytes | None = None, seq: int | None = None,
                  salt: bytes = b"", cas: int | None = None,
                  timeout: float = OPERATION_TIMEOUT) -> StoreDone:
        return await self._wait(lambda now: self.node.put(v, now, seed=seed, seq=seq, salt=salt,
                                                          cas=cas), timeout)
