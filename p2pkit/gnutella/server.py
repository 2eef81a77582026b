"""An asyncio Gnutella servent: the sans-I/O core on real sockets, sharing a directory.

Specs: handshaking_0.6 (the core does the protocol), push_proxy § and the 0.4 Push rules (a
firewalled servent that receives a Push connects out and sends ``GIV <index>:<servent
GUID>/<name>\n\n``, then serves the GET that comes back on that connection), HUGE §4 ("GET /uri-res/N2R?urn:sha1:…"
downloads) and the 0.4 download request ``GET /get/<File Index>/<File Name>``, both answered
with HTTP/1.1 and ``Range`` (RFC 9110 §14: ``206 Partial Content`` with ``Content-Range``;
``416`` when the range cannot be satisfied). The driver holds no protocol logic: it moves bytes
between sockets and :class:`~p2pkit.gnutella.servent.Servent`, and tells Gnutella connections
from HTTP requests by their first bytes.

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
import os
import random
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pkit.errors import LocalProtocolError, P2PKitError
from p2pkit.gnutella.servent import (
    ConnectionClosed,
    ConnectionEstablished,
    PushReceived,
    QueryHitReceived,
    Servent,
    SharedFile,
    drain,
)

__all__ = ["GnutellaServer", "Hit", "download", "share_directory"]

#: TTL of the ping sent on a new connection (as gtk-gnutella does).
DISCOVERY_PING_TTL = 4
#: Bound on an HTTP request head (request line and headers).
MAX_HTTP_HEAD = 8 * 1024
_READ = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


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


class GnutellaServer:
    """A servent listening on ``host:port`` and serving ``share`` over HTTP on the same port."""

    def __init__(self, *, share: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 port: int = 0, ultrapeer: bool = False, seed: int | None = None,
                 shared: Iterable[SharedFile] | None = None, firewalled: bool = False) -> None:
        self.share_dir = Path(share) if share else None
        files = list(shared) if shared is not None else (
            share_directory(self.share_dir) if self.share_dir else [])
        self.host = host
        self.port = port
        self.core = Servent(role="ultrapeer" if ultrapeer else "leaf", shared=files,
                            rng=random.Random(seed), listen=(host, port),
                            firewalled=firewalled)
        self._writers: dict[Any, asyncio.StreamWriter] = {}
        self._hits: dict[bytes, list[Hit]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._ids = itertools.count(1)
        self._givs: dict[tuple[bytes, int], asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self.connected = asyncio.Event()

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.core.listen = (self.host, self.port)

    async def close(self) -> None:
        for conn_id in list(self._writers):
            self.core.close(conn_id, code=200, reason="Servent shutdown")
        await self._flush()
        for writer in list(self._writers.values()):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def connect(self, host: str, port: int) -> Any:
        """Open a Gnutella connection to ``host:port`` (the core sends the handshake)."""
        # from our own address, as a servent with its own IP would (not the default source)
        reader, writer = await asyncio.open_connection(host, port, local_addr=(self.host, 0))
        conn_id = ("out", host, port, next(self._ids))
        self._writers[conn_id] = writer
        self.core.connect(conn_id, now=self._loop_time(), remote_ip=host)
        await self._flush()
        self._spawn(self._pump(conn_id, reader))
        return conn_id

    async def search(self, text: str, *, timeout: float = 2.0, urn: str | None = None,
                     ttl: int | None = None) -> list[Hit]:
        """Query the network and collect hits for ``timeout`` seconds."""
        guid = self.core.query(text, now=self._loop_time(), urn=urn, ttl=ttl)
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
        try:
            head = await reader.readexactly(4)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if head in (b"GET ", b"HEAD"):
            await self._serve_http(head, reader, writer)
            return
        if head == b"GIV ":
            await self._on_giv(reader, writer)
            return
        conn_id = ("in", next(self._ids))
        self._writers[conn_id] = writer
        peer = writer.get_extra_info("peername")
        self.core.accept(conn_id, now=self._loop_time(), remote_ip=peer[0] if peer else None)
        self.core.receive_data(conn_id, head, now=self._loop_time())
        await self._flush()
        await self._pump(conn_id, reader)

    async def _pump(self, conn_id: Any, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    data = await reader.read(_READ)
                except ConnectionError:
                    data = b""
                self.core.receive_data(conn_id, data, now=self._loop_time())
                await self._flush()
                if not data or conn_id not in self._writers:
                    return
        finally:
            writer = self._writers.pop(conn_id, None)
            if writer is not None:
                writer.close()

    async def _flush(self) -> None:
        pinged = False
        for conn_id, data in self.core.data_to_send():
            writer = self._writers.get(conn_id)
            if writer is not None:
                writer.write(data)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        for event in drain(self.core):
            if isinstance(event, QueryHitReceived):
                self._record_hit(event)
            elif isinstance(event, ConnectionClosed):
                writer = self._writers.pop(event.conn_id, None)
                if writer is not None:
                    writer.close()
            elif isinstance(event, ConnectionEstablished):
                self.connected.set()
                # ping-pong §: a servent pings a new connection to learn hosts (gtk-gnutella
                # does so with TTL 4); pong caching answers it without flooding.
                self.core.ping(now=self._loop_time(), ttl=DISCOVERY_PING_TTL)
                pinged = True
            elif isinstance(event, PushReceived):
                self._spawn(self._give(event.descriptor))
        if pinged:
            await self._flush()

    def _record_hit(self, event: QueryHitReceived) -> None:
        d = event.descriptor
        bucket = self._hits.get(event.query_guid)
        if bucket is None:
            return
        for result in d.results:
            urn = next((p.text for p in result.extensions if p.kind == "urn"), None)
            bucket.append(Hit(host=d.ip_address, port=d.port, file_index=result.file_index,
                              file_name=result.file_name, file_size=result.file_size, urn=urn,
                              servent_id=d.trailer.servent_id,
                              push=bool((d.trailer.get("open_data") or b"\0")[0] & 0x01)))

    # --- Push and GIV ---------------------------------------------------------------------

    async def fetch(self, hit: Hit, *, timeout: float = 10.0) -> bytes:
        """Download ``hit``: directly, or through a Push and the GIV connection it brings."""
        if not hit.push:
            return await download(hit, timeout=timeout)
        key = (hit.servent_id, hit.file_index)
        future = asyncio.get_running_loop().create_future()
        self._givs[key] = future
        try:
            if not self.core.push(hit.servent_id, hit.file_index, now=self._loop_time()):
                raise LocalProtocolError("no route for a Push to that servent")
            await self._flush()
            reader, writer = await asyncio.wait_for(future, timeout)
        finally:
            self._givs.pop(key, None)
        try:
            return await _get(reader, writer, hit, by_urn=False, first=None, last=None,
                              timeout=timeout)
        finally:
            writer.close()

    async def _on_giv(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``GIV <index>:<GUID hex>/<name>\n\n`` from a servent we pushed."""
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            writer.close()
            return
        match = re.match(rb"(\d+):([0-9a-fA-F]{32})/", line)
        future = match and self._givs.get((bytes.fromhex(match.group(2).decode()),
                                           int(match.group(1))))
        if not future or future.done():
            writer.close()
            return
        future.set_result((reader, writer))

    async def _give(self, push: Any) -> None:
        """Answer a Push: connect to the requester, send GIV, serve its GET."""
        found = next((f for f in self.core.shared if f.index == push.file_index), None)
        if found is None:
            return
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(push.ip_address, push.port,
                                        local_addr=(self.host, 0)), 10)
        except (OSError, TimeoutError):
            return
        writer.write(f"GIV {found.index}:{self.core.guid.hex()}/{found.name}\n\n"
                     .encode())
        try:
            head = await asyncio.wait_for(reader.readexactly(4), 10)
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            writer.close()
            return
        await self._serve_http(head, reader, writer)

    # --- HTTP -------------------------------------------------------------------------------

    def _find(self, target: str) -> SharedFile | None:
        path, _, query = target.partition("?")
        if path == "/uri-res/N2R" and query.lower().startswith("urn:sha1:"):
            found = self.core.matching("", [query])
            return found[0] if found else None
        match = re.fullmatch(r"/get/(\d+)/(.*)", path)
        if match:
            index, name = int(match.group(1)), urllib.parse.unquote(match.group(2))
            return next((f for f in self.core.shared if f.index == index and f.name == name),
                        None)
        return None

    async def _serve_http(self, head: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            request = head + await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            status, headers, body = self._http_response(request)
        except P2PKitError:
            status, headers, body = "400 Bad Request", {}, b""
        lines = [f"HTTP/1.1 {status}", "Server: p2pkit/0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not request.startswith(b"HEAD"):
            writer.write(body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _http_response(self, request: bytes) -> tuple[str, dict[str, str], bytes]:
        if len(request) > MAX_HTTP_HEAD:
            return "431 Request Header Fields Too Large", {}, b""
        lines = request.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise LocalProtocolError("bad request line")
        found = self._find(parts[1])
        if found is None or self.share_dir is None:
            return "404 Not Found", {"Content-Length": "0"}, b""
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(":") for line in lines[1:] if line)}
        size = found.size
        start, end = 0, size - 1
        status = "200 OK"
        headers = {"Content-Type": "application/binary", "X-Gnutella-Content-URN": found.urn}
        if "range" in fields:
            match = _RANGE.match(fields["range"].replace(" ", ""))
            if match is None or (not match.group(1) and not match.group(2)):
                return "416 Range Not Satisfiable", {"Content-Range": f"bytes */{size}"}, b""
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(0, size - int(match.group(2)))
            if start > end or start >= size:
                return "416 Range Not Satisfiable", {"Content-Range": f"bytes */{size}"}, b""
            status = "206 Partial Content"
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with open(self.share_dir / found.name, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        headers["Content-Length"] = str(len(body))
        return status, headers, body


async def download(hit: Hit, *, by_urn: bool = True, first: int | None = None,
                   last: int | None = None, timeout: float = 10.0) -> bytes:
    """Fetch ``hit`` over HTTP (``/uri-res/N2R?<urn>`` or ``/get/<index>/<name>``), optionally a
    byte range; checks the status and, for a whole file, the SHA-1 of the URN."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(hit.host, hit.port),
                                            timeout)
    try:
        return await _get(reader, writer, hit, by_urn=by_urn, first=first, last=last,
                          timeout=timeout)
    finally:
        writer.close()


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hit: Hit, *,
               by_urn: bool, first: int | None, last: int | None, timeout: float) -> bytes:
    if by_urn and hit.urn:
        target = f"/uri-res/N2R?{hit.urn}"
    else:
        target = f"/get/{hit.file_index}/{urllib.parse.quote(hit.file_name)}"
    headers = [f"GET {target} HTTP/1.1", f"Host: {hit.host}:{hit.port}",
               "User-Agent: p2pkit/0.1", "Connection: close"]
    if first is not None:
        headers.append(f"Range: bytes={first}-{'' if last is None else last}")
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
    response = await asyncio.wait_for(reader.read(), timeout)
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or status[1] not in (b"200", b"206"):
        raise LocalProtocolError(f"download refused: {head.splitlines()[0]!r}")
    if first is None and hit.urn and hit.urn.lower().startswith("urn:sha1:"):
        if hashlib.sha1(body).digest() != base64.b32decode(hit.urn[9:].upper()):
            raise LocalProtocolError("downloaded data does not match its urn:sha1")
    return body
