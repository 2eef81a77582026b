"""The DHT node on a real UDP socket: an asyncio driver for :class:`~p2pkit.dht.node.Node`.

A driver moves bytes and time and holds no protocol logic (DESIGN.md): each datagram's source
is first checked against the node's per-source rate limit (``Node.admit``, before the datagram
is even copied, so a flood from a few addresses costs a look-up per datagram and leaves the
loop free for everyone else), then goes to ``Node.receive_admitted`` with the loop's clock, what the node queues is sent, and the node's
timer is armed with ``loop.call_at``. Operations are awaitable:

    server = await DhtServer.start("127.0.0.1", 6881)
    await server.bootstrap([("127.0.0.2", 6881)])
    done = await server.get_peers(info_hash)        # a LookupCompleted
    server.close()

The server owns a non-blocking UDP socket watched with ``loop.add_reader`` rather than an
asyncio datagram transport: a transport reads one datagram per readiness event, while a busy
DHT node has many queued, so each wake-up here reads up to :data:`READ_BATCH` datagrams, hands
each to the node and sends what it queued at once, straight to the socket (events and the
timer are looked at once per wake-up). A send that would block
waits in a bounded backlog (:data:`MAX_SEND_BACKLOG`) flushed when the socket is writable;
beyond it datagrams are dropped and counted (UDP may lose them anyway; the node retries).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
from collections.abc import Callable
from typing import Any

from p2pkit.core import NEED_DATA
from p2pkit.dht.node import LookupCompleted, Node, PingCompleted, StoreCompleted

__all__ = ["DhtServer", "MAX_SEND_BACKLOG", "OPERATION_TIMEOUT", "READ_BATCH", "RECEIVE_BUFFER",
           "new_event_loop"]

log = logging.getLogger(__name__)

#: Seconds an awaited operation may take before ``asyncio.TimeoutError``.
OPERATION_TIMEOUT = 60.0
#: Datagrams read per readiness event before other callbacks of the loop get their turn.
READ_BATCH = 64
#: Bytes read per datagram: more than the node decodes (``krpc.MAX_MESSAGE_SIZE``), so a
#: larger datagram still reaches it whole and is refused as too large with its own size. A
#: datagram larger than this never reaches the node (it would see it cut, and report the cut
#: size): the server counts it in :attr:`DhtServer.oversized` and logs its real size (Linux
#: tells it with ``MSG_TRUNC``).
RECEIVE_SIZE = 8192
_TRUNC = getattr(socket, "MSG_TRUNC", 0)
#: Bytes the kernel may queue for the socket (``SO_RCVBUF``, capped by ``net.core.rmem_max``):
#: the default (about 200 KiB) holds a few hundred datagrams, a few milliseconds of a flood,
#: so a node that is not scheduled for that long would lose well-behaved queries with it.
RECEIVE_BUFFER = 1 << 20
#: Datagrams waiting for the socket to become writable; more are dropped.
MAX_SEND_BACKLOG = 4096

Address = tuple[str, int]


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """An event loop to serve on: ``"uvloop"`` (libuv; optional, ``pip install uvloop``),
    ``"asyncio"`` (the standard library's), or ``"auto"``: uvloop when it is installed.

    A served node spends a good part of each query in the loop's wake-up (one per datagram
    or batch); uvloop's costs a fraction of the standard selector loop's. Use it with
    ``asyncio.Runner(loop_factory=new_event_loop)``.

    >>> loop = new_event_loop("asyncio")
    >>> isinstance(loop, asyncio.AbstractEventLoop)
    True
    >>> loop.close()
    """
    if kind not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"unknown event loop {kind!r}: auto, uvloop or asyncio")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class DhtServer:
    """One node bound to one UDP socket."""

    def __init__(self, node: Node, sock: socket.socket, *,
                 on_event: Callable[[Any], None] | None = None) -> None:
        self.node = node
        self.on_event = on_event
        #: Datagrams that are not KRPC (which is a bencoded dictionary, starting with ``d``)
        #: go to this callback when it is set: a uTP endpoint sharing the port, as libtorrent
        #: shares its DHT port with uTP (:mod:`p2pkit.bittorrent.utp.endpoint`).
        self.on_other_datagram: Callable[[bytes, Address], None] | None = None
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: dict[int, asyncio.Future] = {}
        self._backlog: collections.deque[tuple[bytes, Address]] = collections.deque()
        self._closed = False
        #: Exceptions the node raised on a datagram (a bug; the server keeps serving).
        self.internal_errors = 0
        #: Datagrams dropped because the send backlog was full or the socket refused them.
        self.send_drops = 0
        #: Datagrams dropped unread because they were larger than ``RECEIVE_SIZE``.
        self.oversized = 0
        self._buffer = bytearray(RECEIVE_SIZE)
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._flush()

    @classmethod
    async def start(cls, host: str, port: int, *, node_id: bytes | None = None,
                    rng: random.Random | None = None, on_event: Callable[[Any], None] | None
                    = None, **options: Any) -> DhtServer:
        """Bind ``host:port`` (port 0 picks one) and serve a new node there."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):  # the kernel caps it at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        node = Node(node_id, rng=rng or random.Random(), now=loop.time(), **options)
        return cls(node, sock, on_event=on_event)

    @property
    def address(self) -> Address:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def close(self) -> None:
        """Stop serving: the socket is closed and awaited operations fail."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        if self._backlog:
            self._loop.remove_writer(self._sock.fileno())
            self._backlog.clear()
        self._sock.close()
        if self._timer is not None:
            self._timer.cancel()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("DHT server closed"))

    # ---- moving bytes and time ---------------------------------------------------------------

    def _on_readable(self) -> None:
        receive = self._sock.recvfrom_into
        buffer = self._buffer
        view = memoryview(buffer)
        node = self.node
        admit = node.admit
        now = self._loop.time()  # one reading per batch: the batch takes microseconds
        for _ in range(READ_BATCH):
            try:
                size, addr = receive(buffer, RECEIVE_SIZE, _TRUNC)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # e.g. an ICMP error reported on the socket
                log.debug("UDP error: %s", e)
                continue
            # what is not KRPC (uTP sharing the port: BEP 29 packets never start with "d") goes
            # to its own core, which has its own caps; the DHT's rate limit is for KRPC
            if self.on_other_datagram is not None and size and buffer[0] != 0x64:
                if size <= RECEIVE_SIZE:
                    self.on_other_datagram(bytes(view[:size]), (addr[0], addr[1]))
                continue
            # the per-source rate limit first: a flood costs a look-up per datagram, and
            # never a copy, a decode or a log line
            if not admit(addr[0], now):
                continue
            if size > RECEIVE_SIZE:
                self.oversized += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("datagram of %d bytes from %s dropped: more than %d", size, addr,
                              RECEIVE_SIZE)
                continue
            data = bytes(view[:size])
            try:
                node.receive_admitted(data, (addr[0], addr[1]), now)
            except Exception:  # a bug in the node must not stop the server; it is logged
                self.internal_errors += 1
                log.exception("node failed on a datagram from %s", addr)
            for answer, dst in node.datagrams_to_send(now):  # answer at once, not per batch
                self._send(answer, dst)
        self._flush()

    def sendto(self, data: bytes, dst: Address) -> None:
        """Send one datagram from the node's socket (for a protocol sharing the port)."""
        if not self._closed:
            self._send(data, dst)

    def _send(self, data: bytes, dst: Address) -> None:
        if self._backlog:
            self._queue(data, dst)
            return
        try:
            self._sock.sendto(data, dst)
        except (BlockingIOError, InterruptedError):
            self._queue(data, dst)
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
        except (OSError, ValueError, TypeError) as e:
            self.send_drops += 1
            log.debug("cannot send to %s: %s", dst, e)

    def _queue(self, data: bytes, dst: Address) -> None:
        if len(self._backlog) >= MAX_SEND_BACKLOG:
            self.send_drops += 1
        else:
            self._backlog.append((data, dst))

    def _on_writable(self) -> None:
        while self._backlog:
            data, dst = self._backlog[0]
            try:
                self._sock.sendto(data, dst)
            except (BlockingIOError, InterruptedError):
                return
            except (OSError, ValueError, TypeError) as e:
                self.send_drops += 1
                log.debug("cannot send to %s: %s", dst, e)
            self._backlog.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def _flush(self) -> None:
        if self._closed:
            return
        now = self._loop.time()
        for data, dst in self.node.datagrams_to_send(now):
            self._send(data, dst)
        while (event := self.node.next_event()) is not NEED_DATA:
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
            self._timer = None if at is None else self._loop.call_at(at, self._on_timer)

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

    async def ping(self, addr: Address, timeout: float = OPERATION_TIMEOUT) -> PingCompleted:
        return await self._wait(lambda now: self.node.ping(addr, now), timeout)

    async def bootstrap(self, addrs: list[Address],
                        timeout: float = OPERATION_TIMEOUT) -> LookupCompleted:
        return await self._wait(lambda now: self.node.bootstrap(addrs, now), timeout)

    async def find_node(self, target: bytes, timeout: float = OPERATION_TIMEOUT) -> LookupCompleted:
        return await self._wait(lambda now: self.node.find_node(target, now), timeout)

    async def get_peers(self, info_hash: bytes,
                        timeout: float = OPERATION_TIMEOUT) -> LookupCompleted:
        return await self._wait(lambda now: self.node.get_peers(info_hash, now), timeout)

    async def announce_peer(self, info_hash: bytes, port: int, *, implied_port: bool = False,
                            timeout: float = OPERATION_TIMEOUT) -> StoreCompleted:
        return await self._wait(lambda now: self.node.announce_peer(
            info_hash, port, now, implied_port=implied_port), timeout)

    async def get(self, target: bytes, *, salt: bytes = b"",
                  timeout: float = OPERATION_TIMEOUT) -> LookupCompleted:
        return await self._wait(lambda now: self.node.get(target, now, salt=salt), timeout)

    async def put(self, v: Any, *, seed: bytes | None = None, seq: int | None = None,
                  salt: bytes = b"", cas: int | None = None,
                  timeout: float = OPERATION_TIMEOUT) -> StoreCompleted:
        return await self._wait(lambda now: self.node.put(v, now, seed=seed, seq=seq, salt=salt,
                                                          cas=cas), timeout)
