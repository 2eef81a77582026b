"""An asyncio Gnutella servent: the sans-I/O cores on real sockets, sharing a directory.

Specs: handshaking_0.6 and the rest of the protocol are the core's
(:mod:`p2pkit.gnutella.servent`); the HTTP side is :mod:`p2pkit.gnutella.http`'s (HUGE §6.1
``GET /uri-res/N2R?urn:sha1:…`` and the 0.4 ``GET /get/<File Index>/<File Name>``, ``HEAD``,
``Range`` with ``206``/``416``; the 0.4 Push / push_proxy § callback: a firewalled servent that
receives a Push connects out, sends ``GIV <index>:<servent GUID>/<name>`` and two line ends, and serves the
GET that comes back on that connection). The driver holds no protocol logic: it moves bytes
between sockets and the cores, calls their timers, streams the byte range an upload chose from
disk, and tells Gnutella connections from HTTP requests and GIVs by their first four bytes.

Hostile peers: the first four bytes must come within :data:`FIRST_BYTES_TIMEOUT`, and at most
:data:`MAX_UNIDENTIFIED` connections wait for them at once (a new one closes the oldest that
has not sent them, bytes not read yet counted; silent sockets wait in the kernel, which hands
a connection over once it has sent something: ``TCP_DEFER_ACCEPT``); the
servent bounds handshakes, timeouts and routes; any exception raised while handling one
connection's bytes closes that connection only, is logged once, and frees its slot; a closed
connection is forgotten at once (memory is O(live connections)); once a burst of sockets is
over, the C heap it freed is given back to the system (:mod:`p2pkit.gnutella.heap_trim`).

>>> files = share_directory("/nonexistent")  # a missing directory shares nothing
>>> files
[]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import logging
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pkit.core import NEED_DATA
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError
from p2pkit.first_flight import defer_accept, unread_bytes
from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella.events import (
    ConnectBackRequested,
    ConnectionClosed,
    ConnectionEstablished,
    Push,
    QueryHit,
)
from p2pkit.gnutella.heap_trim import HeapTrimmer
from p2pkit.gnutella.http import (
    GIV_TIMEOUT,
    Request,
    Upload,
    build_giv,
    build_request,
    parse_giv,
    target_for,
)
from p2pkit.gnutella.push_proxy import (
    build_push_proxy_request,
    is_push_proxy_target,
    parse_push_proxy_status,
    proxies_of,
    push_proxy_request,
    push_proxy_response,
)
from p2pkit.gnutella.servent import Connection, Servent, SharedFile
from p2pkit.http1 import build_head, head_end, parse_head, parse_status_line

__all__ = ["FIRST_BYTES_TIMEOUT", "MAX_UNIDENTIFIED", "MAX_UPLOADS", "MAX_UPLOADS_PER_ADDRESS",
           "SEND_TIMEOUT", "GnutellaServer", "Hit", "download", "share_directory"]

log = logging.getLogger("p2pkit.gnutella.server")

#: TTL of the ping sent on a new connection (as gtk-gnutella does).
DISCOVERY_PING_TTL = 4
#: Seconds a new connection has to send its first four bytes (``GNUT``, or ``GET`` or ``GIV`` and a space).
FIRST_BYTES_TIMEOUT = 10.0
#: Connections waiting for their first four bytes at once; one more closes the oldest.
MAX_UNIDENTIFIED = 64
#: HTTP uploads at once, and from one IP address; beyond them a request gets ``503`` (each
#: upload holds a socket and its send buffer, so these bound what never-reading clients cost).
MAX_UPLOADS = 64
MAX_UPLOADS_PER_ADDRESS = 8
#: Seconds an upload waits for the client to take the next block (its socket to drain)
#: before it is closed: a client that stops reading cannot keep an upload slot for ever.
SEND_TIMEOUT = 30.0
_READ = 64 * 1024
#: msg/connect_back: what a TCP connect-back sends before closing.
CONNECT_BACK = b"\n\n"
#: What tells a Gnutella connection from an HTTP request or a GIV: its first four bytes.
_FIRST_BYTES = 4


def share_directory(path: str | os.PathLike) -> list[SharedFile]:
    """The regular files directly in ``path``, indexed from 1, with their SHA-1 (HUGE §2)."""
    root = Path(path)
    if not root.is_dir():
        return []
    files = []
    for index, entry in enumerate(sorted(p for p in root.iterdir() if p.is_file()), 1):
        digest = hashlib.sha1()
        with open(entry, "rb") as f:
            for block in iter(lambda f=f: f.read(_READ), b""):
                digest.update(block)
        files.append(SharedFile(index=index, name=entry.name, size=entry.stat().st_size,
                                sha1=digest.digest()))
    return files


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One result of a search: where to download it from."""

    host: str
    port: int
    file_index: int
    file_name: str
    file_size: int
    urn: str | None
    servent_id: bytes
    #: The hit's push flag: the servent is firewalled, reach it through a Push (GIV back).
    push: bool = False
    #: push_proxy §4.1: the servent's push proxies (GGEP PUSH), asked over HTTP first.
    proxies: tuple[tuple[str, int], ...] = ()


class GnutellaServer:
    """A servent listening on ``host:port`` and serving ``share`` over HTTP on the same port.

    One task per socket feeds its :class:`~p2pkit.gnutella.servent.Connection`; after every
    read the server writes what the servent queued on any connection and handles the events;
    one timer task calls :meth:`Servent.handle_timer` when :meth:`Servent.get_timer` says
    (pings, handshake and idle timeouts, Bye linger).
    """

    def __init__(self, *, share: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 port: int = 0, ultrapeer: bool = False, seed: int | None = None,
                 shared: Iterable[SharedFile] | None = None, firewalled: bool = False,
                 deflate: bool = True, tls: bool = False,
                 ultrapeer_qrp: bool = True, vendor_messages: bool = True,
                 hsep: bool = True, dynamic_query: bool = False, udp: bool = False) -> None:
        self.share_dir = Path(share) if share else None
        files = list(shared) if shared is not None else (
            share_directory(self.share_dir) if self.share_dir else [])
        self.host = host
        self.port = port
        self.core = Servent(role="ultrapeer" if ultrapeer else "leaf", shared=files,
                            rng=random.Random(seed), listen=(host, port),
                            firewalled=firewalled, deflate=deflate, tls=tls,
                            ultrapeer_qrp=ultrapeer_qrp, vendor_messages=vendor_messages,
                            hsep=hsep, dynamic_query=dynamic_query, udp=udp)
        self._writers: dict[Any, asyncio.StreamWriter] = {}
        self._hits: dict[bytes, list[Hit]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._ids = itertools.count(1)
        self._givs: dict[tuple[bytes, int], asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        #: Connections whose first four bytes we have not read yet, oldest first: writer ->
        #: its reader.
        self._unidentified: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
        #: Every accepted socket and the task serving it, until it ends.
        self._streams: dict[asyncio.StreamWriter, None] = {}
        self._handlers: set[asyncio.Task] = set()
        #: HTTP uploads under way: writer -> the client's IP address.
        self._uploads: dict[asyncio.StreamWriter, str | None] = {}
        #: Gives the C heap freed by a burst of sockets back to the system once most of them
        #: are gone (:mod:`p2pkit.gnutella.heap_trim`).
        self.heap_trimmer = HeapTrimmer()
        self._trim_retry: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()
        #: Gnutella over UDP on the same port (``udp=True``; :mod:`p2pkit.gnutella.udp`).
        self._udp: asyncio.DatagramTransport | None = None

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        # every Gnutella connection speaks first (GNUTELLA CONNECT, GET, GIV, a connect-back's
        # blank line): silent sockets wait in the kernel, not in MAX_UNIDENTIFIED
        defer_accept(self._server)
        self.port = self._server.sockets[0].getsockname()[1]
        self.core.listen = (self.host, self.port)
        if self.core.udp is not None:
            self.core.udp.started = self._loop_time()
            try:
                self._udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, self.port))
            except OSError:
                self._server.close()
                raise
        self._spawn(self._run_timers())

    async def close(self) -> None:
        """Bye to every Gnutella connection, then close every socket (uploads and connections
        still in their handshake included) and wait for their tasks: nothing is left to be
        cancelled by the event loop's shutdown (no ``CancelledError`` tracebacks)."""
        for conn_id in list(self._writers):
            self.core.close(conn_id, self._loop_time(), code=200, reason="Servent shutdown")
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(self._flush(), 2.0)
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        if self._trim_retry is not None:
            self._trim_retry.cancel()
        for writer in list(self._writers.values()):
            writer.close()
        for writer in list(self._streams):
            writer.transport.abort()
        for task in list(self._tasks):  # timers, outgoing connections, Push callbacks
            task.cancel()
        pending = set(self._handlers)
        if pending:  # their sockets are closed: they end by themselves
            _, pending = await asyncio.wait(pending, timeout=2.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, *pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def connect(self, host: str, port: int) -> Any:
        """Open a Gnutella connection to ``host:port`` (the core sends the handshake)."""
        # from our own address, as a servent with its own IP would (not the default source)
        reader, writer = await asyncio.open_connection(host, port, local_addr=(self.host, 0))
        conn_id = ("out", host, port, next(self._ids))
        self._writers[conn_id] = writer
        conn = self.core.connect(conn_id, self._loop_time(), remote_ip=host)
        await self._flush()
        self._spawn(self._pump(conn, reader))
        return conn_id

    async def search(self, text: str, *, timeout: float = 2.0, urn: str | None = None,
                     ttl: int | None = None) -> list[Hit]:
        """Query the network and collect hits for ``timeout`` seconds."""
        guid = self.core.query(text, self._loop_time(), urn=urn, ttl=ttl)
        self._hits[guid] = []
        await self._flush()
        await asyncio.sleep(timeout)
        return self._hits.pop(guid)

    # --- connections ------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._streams[writer] = None
        self._note_live()
        try:
            await self._serve_client(reader, writer)
        except asyncio.CancelledError:  # shutting down: this socket's task ends quietly
            writer.transport.abort()
        finally:
            self._handlers.discard(task)
            self._streams.pop(writer, None)
            self._note_live()

    def _note_live(self) -> None:
        """Tell the heap trimmer how many sockets live now; when it owes a trim (refused only
        for being too soon after the last one), call it again when that trim is due."""
        loop = asyncio.get_running_loop()
        self.heap_trimmer.note(len(self._streams), loop.time())
        when = self.heap_trimmer.retry_at
        if when is not None and self._trim_retry is None:
            self._trim_retry = loop.call_at(when, self._retry_trim)

    def _retry_trim(self) -> None:
        self._trim_retry = None
        self._note_live()

    def _idlest_unidentified(self) -> asyncio.StreamWriter:
        """The connection to close when :data:`MAX_UNIDENTIFIED` wait for their first bytes:
        the oldest that has not sent four bytes, counting those the event loop has not read (the
        reader's buffer, then the kernel's: :func:`~p2pkit.first_flight.unread_bytes`), or the
        oldest of all. "The oldest" alone evicted well-behaved clients under a flood of
        connections: in a burst of accepts their first flight waits unread while newer
        attackers arrive (1 to 3 of every 140 handshakes and downloads were reset in the
        soak's attack phase, issue 13)."""
        for writer, reader in self._unidentified.items():
            buffered = len(getattr(reader, "_buffer", b""))  # StreamReader keeps it private
            if buffered + unread_bytes(writer.get_extra_info("socket")) < _FIRST_BYTES:
                return writer
        return next(iter(self._unidentified))

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        if len(self._unidentified) >= MAX_UNIDENTIFIED:
            victim = self._idlest_unidentified()
            del self._unidentified[victim]
            victim.transport.abort()
        self._unidentified[writer] = reader
        try:
            head = await asyncio.wait_for(reader.readexactly(_FIRST_BYTES),
                                          FIRST_BYTES_TIMEOUT)
        except asyncio.IncompleteReadError as e:
            if e.partial == CONNECT_BACK:  # msg/connect_back: someone reached our port
                self.core.connect_back_received()
            writer.transport.abort()
            return
        except (ConnectionError, TimeoutError):
            writer.transport.abort()
            return
        finally:
            self._unidentified.pop(writer, None)
        if head in (b"GET ", b"HEAD"):
            peer = writer.get_extra_info("peername")
            host = peer[0] if peer else None
            if len(self._uploads) >= MAX_UPLOADS or sum(
                    h == host for h in self._uploads.values()) >= MAX_UPLOADS_PER_ADDRESS:
                writer.write(build_head("HTTP/1.1 503 Service Unavailable",
                                        [("Connection", "close"), ("Retry-After", "60")]))
                writer.close()
                return
            self._uploads[writer] = host
            try:
                await self._serve_http(head, reader, writer)
            finally:
                self._uploads.pop(writer, None)
            return
        if head == b"GIV ":
            await self._on_giv(head, reader, writer)
            return
        conn_id = ("in", next(self._ids))
        peer = writer.get_extra_info("peername")
        try:
            conn = self.core.accept(conn_id, self._loop_time(),
                                    remote_ip=peer[0] if peer else None)
        except LimitExceeded:  # too many handshakes under way (silent peers): not this one
            writer.transport.abort()
            return
        self._writers[conn_id] = writer
        await self._pump(conn, reader, first=head)

    async def _pump(self, conn: Connection, reader: asyncio.StreamReader, *,
                    first: bytes | None = None) -> None:
        """Feed ``conn`` until it ends; whatever happens, the socket is closed and the servent
        forgets the connection (its slot, routes and QRP table) when this returns."""
        try:
            data = first
            while True:
                if data is None:
                    try:
                        data = await reader.read(_READ)
                    except ConnectionError:
                        data = b""
                try:
                    conn.receive_data(data, self._loop_time())
                except Exception as e:  # a bug reached by one peer's bytes: drop that peer
                    log.warning("closing %r: %s: %s", conn.conn_id, type(e).__name__, e)
                    return
                await self._flush()
                if not data or conn.conn_id not in self._writers:
                    return
                data = None
        finally:
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        writer = self._writers.pop(conn.conn_id, None)
        if writer is not None:
            writer.close()
        if conn.state != cs.CLOSED:
            with contextlib.suppress(Exception):
                conn.receive_data(b"", self._loop_time())  # the end of its stream
        while conn.next_event() is not NEED_DATA:
            pass
        self.core.remove(conn.conn_id)

    async def _run_timers(self) -> None:
        """Call the servent's timers when due; woken early when a flush may have moved them."""
        loop = asyncio.get_running_loop()
        while True:
            when = self.core.get_timer()
            self._wake.clear()
            alarm = loop.call_at(when, self._wake.set) if when is not None else None
            try:
                await self._wake.wait()
            finally:
                if alarm is not None:
                    alarm.cancel()
            self.core.handle_timer(loop.time())
            await self._flush(wake=False)

    async def _flush(self, *, wake: bool = True) -> None:
        pinged = False
        for conn in self.core.connections_with_data():
            writer = self._writers.get(conn.conn_id)
            data = conn.data_to_send()
            if writer is not None:
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        for conn in list(self.core.connections.values()):
            while (event := conn.next_event()) is not NEED_DATA:
                pinged |= self._on_event(event)
        self._flush_udp()
        if wake:
            self._wake.set()
        if pinged:
            await self._flush(wake=wake)

    def _flush_udp(self) -> None:
        udp = self.core.udp
        if udp is None:
            return
        for data, addr in udp.datagrams_to_send(self._loop_time()):
            if self._udp is not None:
                self._udp.sendto(data, addr)
        while (event := udp.next_event()) is not NEED_DATA:
            self._on_event(event)

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        udp = self.core.udp
        if udp is None:
            return
        try:
            udp.receive_datagram(data, (addr[0], addr[1]), self._loop_time())
        except Exception as e:  # a bug reached by one datagram: that datagram only
            log.warning("dropping a datagram from %s: %s: %s", addr, type(e).__name__, e)
        self._flush_udp()
        self._wake.set()

    def _on_event(self, event: Any) -> bool:
        """Handle one event; True when it queued a ping to write."""
        if isinstance(event, QueryHit):
            self._record_hit(event)
        elif isinstance(event, ConnectionClosed):
            writer = self._writers.pop(event.conn_id, None)
            if writer is not None:
                writer.close()
            self.core.remove(event.conn_id)
        elif isinstance(event, ConnectionEstablished):
            self.connected.set()
            # ping-pong §: a servent pings a new connection to learn hosts (gtk-gnutella
            # does so with TTL 4); pong caching answers it without flooding. That one only:
            # the others were pinged when they came.
            self.core.ping(self._loop_time(), ttl=DISCOVERY_PING_TTL, conn_id=event.conn_id)
            return True
        elif isinstance(event, Push):
            self._spawn(self._give(event.descriptor))
        elif isinstance(event, ConnectBackRequested):
            self._spawn(self._connect_back(event.ip_address, event.port))
        return False  # ConnectionRefused: the ConnectionClosed that follows closes the socket

    def _record_hit(self, event: QueryHit) -> None:
        d = event.descriptor
        bucket = self._hits.get(event.query_guid)
        if bucket is None:
            return
        for result in d.results:
            urn = next((p.text for p in result.extensions if p.kind == "urn"), None)
            bucket.append(Hit(host=d.ip_address, port=d.port, file_index=result.file_index,
                              file_name=result.file_name, file_size=result.file_size, urn=urn,
                              servent_id=d.trailer.servent_id,
                              push=bool((d.trailer.get("open_data") or b"\0")[0] & 0x01),
                              proxies=tuple(proxies_of(d))))

    async def _connect_back(self, host: str, port: int) -> None:
        """msg/connect_back, BEAR/7v1: "the connecting servent emits the 2-byte string "\\n\\n"
        and closes the connection"."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(self.host, 0)), GIV_TIMEOUT)
        except (OSError, TimeoutError):
            return
        writer.write(CONNECT_BACK)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    # --- Push and GIV ---------------------------------------------------------------------

    async def fetch(self, hit: Hit, *, timeout: float = 10.0) -> bytes:
        """Download ``hit``: directly, or through a Push and the GIV connection it brings.

        A firewalled servent's push proxies (push_proxy §5) are asked first, one after the
        other until one answers 202 (its Push has FileIndex 0, so the GIV says 0); then the
        Push goes along the hit's route."""
        if not hit.push:
            return await download(hit, timeout=timeout, local_host=self.host)
        keys = [(hit.servent_id, hit.file_index), (hit.servent_id, 0)]
        future = asyncio.get_running_loop().create_future()
        for key in keys:
            self._givs[key] = future
        try:
            asked = False
            for proxy in hit.proxies:
                if await self._ask_push_proxy(proxy, hit.servent_id, timeout):
                    asked = True
                    break
            if not asked:
                if not self.core.push(hit.servent_id, hit.file_index, self._loop_time()):
                    raise LocalProtocolError("no push proxy accepted and no route for a Push "
                                             "to that servent")
                await self._flush()
            reader, writer = await asyncio.wait_for(future, timeout)
        finally:
            for key in keys:
                self._givs.pop(key, None)
        try:
            return await _get(reader, writer, hit, by_urn=False, first=None, last=None,
                              timeout=timeout)
        finally:
            writer.close()

    async def _on_giv(self, head: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        """``GIV <index>:<GUID hex>/<name>\\n\\n`` from a servent we pushed."""
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\n\n"), GIV_TIMEOUT)
            giv = parse_giv(head + rest)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, ParseError):
            writer.close()
            return
        future = self._givs.get((giv.servent_guid, giv.file_index))
        if not future or future.done():
            writer.close()
            return
        future.set_result((reader, writer))

    async def _ask_push_proxy(self, proxy: tuple[str, int], servent_id: bytes,
                              timeout: float) -> bool:
        """push_proxy §5: ask ``proxy`` to push ``servent_id`` to us; True on 202 (any
        other answer, or none, and "it MUST not contact this PP again")."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*proxy, local_addr=(self.host, 0)), timeout)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(build_push_proxy_request(servent_id, (self.host, self.port),
                                                  host=f"{proxy[0]}:{proxy[1]}"))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            return parse_push_proxy_status(head) == 202
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ParseError):
            return False
        finally:
            writer.close()

    async def _serve_push_proxy(self, request: Request, writer: asyncio.StreamWriter) -> None:
        """push_proxy §5: 202 and a Push (FileIndex 0) to the leaf, 410 when it is not our
        leaf, 400 for a malformed request."""
        try:
            wanted = push_proxy_request(request.target, request.headers)
        except ParseError:
            status = 400
        else:
            status = 202 if self.core.proxy_push(wanted.servent_id, wanted.node,
                                                  self._loop_time()) else 410
        writer.write(push_proxy_response(status))
        with contextlib.suppress(ConnectionError):
            await self._flush()
            await writer.drain()
        writer.close()

    async def _give(self, push: Any) -> None:
        """Answer a Push: connect to the requester, send GIV, serve its GET. A Push from a
        push proxy has FileIndex 0 (push_proxy §5): the GIV says 0 and the GET names the file."""
        found = next((f for f in self.core.shared if f.index == push.file_index), None)
        if found is None and push.file_index == 0 and self.core.shared:
            found = SharedFile(index=0, name="file", size=0, sha1=bytes(20))  # GIV 0:<guid>/file
        if found is None:
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(push.ip_address, push.port,
                                        local_addr=(self.host, 0)), GIV_TIMEOUT)
        except (OSError, TimeoutError):
            return
        writer.write(build_giv(found.index, self.core.guid, found.name))
        await self._serve_http(b"", reader, writer)

    # --- HTTP -------------------------------------------------------------------------------

    async def _serve_http(self, head: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        """Feed an :class:`~p2pkit.gnutella.http.Upload`, write its head, stream the body."""
        upload = Upload(self.core.shared if self.share_dir else [], self._loop_time())
        if head:
            upload.receive_data(head, self._loop_time())
        while (event := upload.next_event()) is NEED_DATA:
            timer = upload.get_timer()
            delay = max(0.0, timer - self._loop_time()) if timer is not None else None
            try:
                data = await asyncio.wait_for(reader.read(_READ), delay)
            except TimeoutError:
                upload.handle_timer(self._loop_time())
                continue
            except ConnectionError:
                data = b""
            upload.receive_data(data, self._loop_time())
        if isinstance(event, Request) and is_push_proxy_target(event.target):
            await self._serve_push_proxy(event, writer)
            return
        writer.write(upload.data_to_send())
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(SEND_TIMEOUT) as stall:
                if isinstance(event, Request) and event.response.body is not None:
                    response = event.response
                    with open(self.share_dir / response.file.name, "rb") as f:
                        f.seek(response.body.first)
                        left = response.body.length
                        while left > 0:
                            block = f.read(min(_READ, left))
                            if not block:
                                break
                            writer.write(block)
                            left -= len(block)
                            await writer.drain()
                            stall.reschedule(loop.time() + SEND_TIMEOUT)  # it took a block
                await writer.drain()
        except TimeoutError:  # a client that stopped reading: its slot goes to someone else
            writer.transport.abort()
        except ConnectionError:
            pass
        finally:
            writer.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    """Datagrams on the servent's port go to its :class:`~p2pkit.gnutella.udp.UdpEndpoint`."""

    def __init__(self, server: GnutellaServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: nothing to do
        pass


async def download(hit: Hit, *, by_urn: bool = True, first: int | None = None,
                   last: int | None = None, timeout: float = 10.0,
                   local_host: str | None = None) -> bytes:
    """Fetch ``hit`` over HTTP (``/uri-res/N2R?<urn>`` or ``/get/<index>/<name>``), optionally a
    byte range; checks the status and, for a whole file, the SHA-1 of the URN. ``local_host``:
    the source address (a servent's own, as :meth:`GnutellaServer.fetch` passes)."""
    local_addr = (local_host, 0) if local_host is not None else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(hit.host, hit.port, local_addr=local_addr), timeout)
    try:
        return await _get(reader, writer, hit, by_urn=by_urn, first=first, last=last,
                          timeout=timeout)
    finally:
        writer.close()


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hit: Hit, *,
               by_urn: bool, first: int | None, last: int | None, timeout: float) -> bytes:
    target = (target_for(urn=hit.urn) if by_urn and hit.urn else
              target_for(file_index=hit.file_index, file_name=hit.file_name))
    writer.write(build_request(target, host=f"{hit.host}:{hit.port}", first=first, last=last))
    response = await asyncio.wait_for(reader.read(), timeout)
    try:
        end = head_end(response)
        if end is None:
            raise LocalProtocolError("download refused: no response head")
        status = parse_status_line(parse_head(response[:end]).start_line)
    except ParseError as e:
        raise LocalProtocolError(f"download refused: {e.reason}") from None
    if status.status not in (200, 206):
        raise LocalProtocolError(f"download refused: {status.status} {status.reason}")
    body = response[end:]
    if first is None and hit.urn and hit.urn.lower().startswith("urn:sha1:"):
        if hashlib.sha1(body).digest() != base64.b32decode(hit.urn[9:].upper()):
            raise LocalProtocolError("downloaded data does not match its urn:sha1")
    return body
