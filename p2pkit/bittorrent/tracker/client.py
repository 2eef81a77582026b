"""Announcing to HTTP and UDP trackers, asyncio (BEP 3 §trackers, BEP 23, BEP 7, BEP 15, BEP 12,
BEP 48).

BEP 3 §trackers: "Tracker GET requests have the following keys: info_hash [...] peer_id [...]
port [...] uploaded [...] downloaded [...] left [...] event". The request is an HTTP/1.0 GET
built with :mod:`p2pkit.bittorrent.tracker.http` (BEP 23 ``compact=1``, BEP 7 ``key``), the
answer read to the end of the connection (at most ``MAX_HEAD_SIZE + MAX_BODY_SIZE`` bytes) and
decoded by :data:`~p2pkit.bittorrent.tracker.http.AnnounceResponse`; up to
:data:`MAX_REDIRECTS` redirects are followed.

BEP 15 (UDP trackers) is :class:`~p2pkit.bittorrent.tracker.udp_client.UdpTrackerClient`, a
sans-I/O core (connect, connection-id lifetime, retransmission after ``15 * 2 ^ n`` seconds,
transaction ids, error action); :class:`TrackerClient` only drives it: one connected socket per
tracker in use, the core's timer on the event loop, its events turned into results or
:class:`TrackerError`. The request and result vocabulary shared by both transports
(:class:`Announce`, :class:`AnnounceResult`, :class:`TrackerPeer`, :class:`ScrapeResult`) is in
:mod:`p2pkit.bittorrent.tracker.announce` and re-exported here.

BEP 12: "URLs within each tier will be processed in a randomly chosen order [...] if a
connection with a tracker is successful, it will be moved to the front of the tier."
:class:`TrackerTiers` keeps that order; :meth:`TrackerClient.announce_tiers` walks it.

Every failure (the tracker's ``failure reason`` or BEP 15 error, a timeout, a refused
connection, a malformed answer) raises :class:`TrackerError`:

>>> import asyncio, random
>>> from p2pkit.bittorrent.tracker.core import TrackerCore
>>> from p2pkit.bittorrent.tracker.server import TrackerServer
>>> async def demo():
...     server = TrackerServer(TrackerCore(rng=random.Random(0)))
...     await server.start(host="127.0.0.1", http_port=0, udp_port=0)
...     seed = Announce(info_hash=b"i" * 20, peer_id=b"-PK0001-aaaaaaaaaaaa", port=6881,
...                     left=0, event="started")
...     await announce(f"http://127.0.0.1:{server.http_port}/announce", seed, timeout=5)
...     leech = Announce(info_hash=b"i" * 20, peer_id=b"-PK0001-bbbbbbbbbbbb", port=6882,
...                      left=100, event="started")
...     result = await announce(f"udp://127.0.0.1:{server.udp_port}", leech, timeout=5)
...     await server.close()
...     return result
>>> result = asyncio.run(demo())
>>> result.complete, result.incomplete, result.peers
(1, 1, (TrackerPeer(host='127.0.0.1', port=6881, peer_id=None),))
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from construct import Container

from p2pkit.bittorrent.tracker.announce import (
    Announce,
    AnnounceResult,
    ScrapeResult,
    TrackerPeer,
)
from p2pkit.bittorrent.tracker.http import (
    MAX_BODY_SIZE,
    MAX_HEAD_SIZE,
    HttpHeader,
    TrackerHttpRequest,
    TrackerHttpResponse,
    build_http_request,
    parse_http_response,
)
from p2pkit.bittorrent.tracker.query import (
    AnnounceRequest,
    ScrapeRequest,
    build_announce_query,
    build_scrape_query,
)
from p2pkit.bittorrent.tracker.udp_client import (
    CONNECTION_ID_LIFETIME,
    MAX_RETRANSMISSIONS,
    MAX_SCRAPE_HASHES,
    RETRANSMIT_BASE,
    AnnounceCompleted,
    ScrapeCompleted,
    TrackerEvent,
    TrackerFailed,
    UdpTrackerClient,
)
from p2pkit.core import NEED_DATA
from p2pkit.errors import LimitExceeded, LocalProtocolError, P2PKitError, ParseError

__all__ = [
    "CONNECTION_ID_LIFETIME",
    "MAX_REDIRECTS",
    "MAX_RETRANSMISSIONS",
    "MAX_SCRAPE_HASHES",
    "MAX_UDP_DATAGRAM",
    "RETRANSMIT_BASE",
    "USER_AGENT",
    "Announce",
    "AnnounceResult",
    "ScrapeResult",
    "TrackerClient",
    "TrackerError",
    "TrackerPeer",
    "TrackerTiers",
    "announce",
    "scrape",
    "scrape_url",
]

#: Redirects followed for one HTTP announce or scrape.
MAX_REDIRECTS = 3
#: Largest UDP datagram read from a tracker (an announce response with 200 IPv6 peers is 3620).
MAX_UDP_DATAGRAM = 65536
USER_AGENT = "p2pkit"

_REDIRECTS = (301, 302, 303, 307, 308)


class TrackerError(P2PKitError):
    """A tracker did not give a usable answer.

    ``failure_reason`` is the tracker's own text when it refused (HTTP ``failure reason``,
    BEP 15 error ``message``), else ``None``; ``url`` names the tracker. A malformed answer
    chains the :class:`~p2pkit.errors.ParseError` (``__cause__``).
    """

    def __init__(self, reason: str, *, url: str = "", failure_reason: str | None = None) -> None:
        self.reason = reason
        self.url = url
        self.failure_reason = failure_reason
        super().__init__(f"{url}: {reason}" if url else reason)


def scrape_url(announce_url: str) -> str | None:
    """BEP 48: the scrape URL, or ``None`` when the announce URL has no ``announce`` to replace.

    "locating the string announce in the path section of the announce URL and replacing it
    with the string scrape"; "If the announce URL does not contain the text 'announce' [...]
    the tracker does not support the scrape convention". UDP trackers scrape at the same URL.

    >>> scrape_url("http://t.example/x/announce.php?pk=1"), scrape_url("http://t.example/a")
    ('http://t.example/x/scrape.php?pk=1', None)
    """
    parts = urllib.parse.urlsplit(announce_url)
    if parts.scheme == "udp":
        return announce_url
    head, slash, last = parts.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    return urllib.parse.urlunsplit(parts._replace(path=head + slash + "scrape" + last[8:]))


class TrackerTiers:
    """BEP 12 announce-list order: tiers in sequence, each shuffled once, winners to the front.

    >>> tiers = TrackerTiers([["udp://a:1", "udp://b:1"], ["http://c/announce"]],
    ...                      rng=random.Random(4))
    >>> list(tiers)
    ['udp://b:1', 'udp://a:1', 'http://c/announce']
    >>> tiers.succeeded("udp://a:1")
    >>> list(tiers)
    ['udp://a:1', 'udp://b:1', 'http://c/announce']
    """

    def __init__(self, tiers: Iterable[Iterable[str]], *, rng: random.Random) -> None:
        self.tiers: list[list[str]] = []
        seen: set[str] = set()
        for tier in tiers:
            urls = [u for u in dict.fromkeys(tier) if u not in seen]
            seen.update(urls)
            if urls:
                rng.shuffle(urls)  # "the list will be shuffled when first read"
                self.tiers.append(urls)

    def __iter__(self) -> Iterator[str]:
        """Every URL in the order to try them now."""
        return iter([url for tier in self.tiers for url in tier])

    def __len__(self) -> int:
        return sum(len(tier) for tier in self.tiers)

    def succeeded(self, url: str) -> None:
        """``url`` answered: "it will be moved to the front of the tier"."""
        for tier in self.tiers:
            if url in tier:
                tier.remove(url)
                tier.insert(0, url)
                return
        raise LocalProtocolError(f"{url} is in no tier")


@dataclass(frozen=True, kw_only=True)
class _Endpoint:
    scheme: str
    host: str
    port: int
    path: str
    query: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}.get(self.scheme)
        return host if self.port == default else f"{host}:{self.port}"


def _endpoint(url: str) -> _Endpoint:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise TrackerError(f"bad tracker URL: {e}", url=url) from None
    if parts.scheme not in ("http", "https", "udp") or not parts.hostname:
        raise TrackerError("only http://, https:// and udp:// trackers are supported", url=url)
    if port is None:
        if parts.scheme == "udp":
            raise TrackerError("a udp:// tracker URL needs a port", url=url)
        port = 443 if parts.scheme == "https" else 80
    return _Endpoint(scheme=parts.scheme, host=parts.hostname, port=port, path=parts.path or "/",
                     query=parts.query)


def _http_result(message: Container, url: str) -> AnnounceResult:
    if message.interval < 0 or (message.min_interval or 0) < 0:
        # BEP 3: "interval maps to the number of seconds the downloader should wait".
        raise TrackerError(f"negative interval {message.interval}", url=url)
    peers = []
    for p in message.peers or ():
        if 0 < p.port <= 0xFFFF:
            peers.append(TrackerPeer(host=str(p.ip), port=p.port,
                                     peer_id=p.get("peer_id")))
    for p in message.peers6 or ():
        if p.port:
            peers.append(TrackerPeer(host=str(p.ip), port=p.port))
    return AnnounceResult(interval=message.interval, min_interval=message.min_interval,
                          peers=tuple(peers), complete=message.complete,
                          incomplete=message.incomplete,
                          warning_message=message.warning_message, tracker_id=message.tracker_id)


class _Datagrams(asyncio.DatagramProtocol):
    """The connected socket to one tracker, shared by every request in flight to it: what
    arrives goes to the client's BEP 15 core; an ICMP error (nobody listens there) fails the
    requests waiting on it."""

    def __init__(self, client: TrackerClient) -> None:
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.tracker: tuple[str, int] | None = None
        self.waiters: set[asyncio.Future[Any]] = set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= MAX_UDP_DATAGRAM and self.tracker is not None:
            self.client._udp.receive_datagram(data, self.tracker, self.client.clock())
            self.client._pump()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nobody listens there.
        if isinstance(exc, OSError):
            for waiter in self.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)


class TrackerClient:
    """Announces and scrapes; keeps BEP 15 connection ids between requests.

    ``rng`` draws transaction ids (BEP 15: "Choose a random transaction ID");
    ``retransmit_base`` is BEP 15's 15 seconds (tests make it small); ``clock`` is the ``now``
    the BEP 15 core sees (connection id ages, retransmission deadlines).
    """

    def __init__(self, *, rng: random.Random | None = None,
                 retransmit_base: float = RETRANSMIT_BASE,
                 clock: Callable[[], float] = time.monotonic,
                 user_agent: str = USER_AGENT) -> None:
        self.rng = rng if rng is not None else random.SystemRandom()
        self.retransmit_base = retransmit_base
        self.clock = clock
        self.user_agent = user_agent
        #: The BEP 15 protocol, sans-I/O; it keeps connection ids between requests.
        self._udp = UdpTrackerClient(rng=self.rng, retransmit_base=retransmit_base)
        #: One connected socket per tracker with requests in flight.
        self._sockets: dict[tuple[str, int], _Datagrams] = {}
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._timer: tuple[float, asyncio.TimerHandle] | None = None

    # ------------------------------------------------------------------ announce

    async def announce(self, url: str, request: Announce, *, timeout: float) -> AnnounceResult:
        """Announce ``request`` to the tracker at ``url`` (http://, https:// or udp://).

        ``timeout`` bounds the whole exchange, retransmissions and redirects included.
        Raises :class:`TrackerError`.
        """
        endpoint = _endpoint(url)
        try:
            async with asyncio.timeout(timeout):
                if endpoint.scheme == "udp":
                    return await self._udp_announce(endpoint, request, url)
                return await self._http_announce(endpoint, request, url)
        except TimeoutError:
            raise TrackerError(f"no answer within {timeout} s", url=url) from None
        except (OSError, UnicodeError) as e:  # refused, unreachable, bad host name
            raise TrackerError(f"cannot reach the tracker: {getattr(e, 'strerror', None) or e}",
                               url=url) from None

    async def announce_tiers(self, tiers: TrackerTiers, request: Announce, *,
                             timeout: float) -> tuple[str, AnnounceResult]:
        """BEP 12: try each URL in tier order until one answers; move it to the front of its
        tier. ``timeout`` applies to each tracker. Raises :class:`TrackerError` listing every
        failure when none answers."""
        failures = []
        for url in tiers:
            try:
                result = await self.announce(url, request, timeout=timeout)
            except TrackerError as e:
                failures.append(str(e))
                continue
            tiers.succeeded(url)
            return url, result
        raise TrackerError("no tracker answered: " + "; ".join(failures) if failures
                           else "no trackers")

    async def scrape(self, url: str, info_hashes: Sequence[bytes], *,
                     timeout: float) -> dict[bytes, ScrapeResult]:
        """BEP 48 / BEP 15 scrape of ``info_hashes`` at the tracker whose announce URL is
        ``url``. Raises :class:`TrackerError`."""
        if not 0 < len(info_hashes) <= MAX_SCRAPE_HASHES or any(len(h) != 20
                                                                 for h in info_hashes):
            raise LocalProtocolError(f"scrape 1 to {MAX_SCRAPE_HASHES} 20-byte info-hashes")
        target = scrape_url(url)
        if target is None:
            raise TrackerError("the announce URL has no scrape counterpart (BEP 48)", url=url)
        endpoint = _endpoint(target)
        try:
            async with asyncio.timeout(timeout):
                if endpoint.scheme == "udp":
                    return await self._udp_scrape(endpoint, list(info_hashes), url)
                return await self._http_scrape(endpoint, list(info_hashes), target)
        except TimeoutError:
            raise TrackerError(f"no answer within {timeout} s", url=url) from None
        except (OSError, UnicodeError) as e:  # refused, unreachable, bad host name
            raise TrackerError(f"cannot reach the tracker: {getattr(e, 'strerror', None) or e}",
                               url=url) from None

    # ------------------------------------------------------------------ HTTP

    def _announce_query(self, request: Announce) -> str:
        message = AnnounceRequest(
            info_hash=request.info_hash, peer_id=request.peer_id, port=request.port,
            uploaded=request.uploaded, downloaded=request.downloaded, left=request.left,
            compact=1, no_peer_id=1, event=request.event or None, numwant=request.numwant,
            key=f"{request.key:08X}".encode("ascii"), trackerid=request.tracker_id)
        return build_announce_query(message)

    async def _http_announce(self, endpoint: _Endpoint, request: Announce,
                             url: str) -> AnnounceResult:
        response = await self._http_get(endpoint, self._announce_query(request), url, "announce")
        message = response.message
        if message.failure_reason is not None:
            raise TrackerError(f"refused: {message.failure_reason}", url=url,
                               failure_reason=message.failure_reason)
        return _http_result(message, url)

    async def _http_scrape(self, endpoint: _Endpoint, info_hashes: list[bytes],
                           url: str) -> dict[bytes, ScrapeResult]:
        query = build_scrape_query(ScrapeRequest(info_hashes=tuple(info_hashes)))
        message = (await self._http_get(endpoint, query, url, "scrape")).message
        if message.failure_reason is not None:
            raise TrackerError(f"refused: {message.failure_reason}", url=url,
                               failure_reason=message.failure_reason)
        return {h: ScrapeResult(complete=f.complete or 0, downloaded=f.downloaded or 0,
                                incomplete=f.incomplete or 0)
                for h, f in message.files.items() if h in info_hashes}

    async def _http_get(self, endpoint: _Endpoint, query: str, url: str,
                        kind: str) -> TrackerHttpResponse:
        """GET ``query`` at ``endpoint`` (following redirects); the response with its decoded
        bencoded ``message``."""
        for _ in range(MAX_REDIRECTS + 1):
            data = await self._http_exchange(endpoint, query, url)
            try:
                head = parse_http_response(data, kind=None)
            except ParseError as e:
                raise TrackerError(f"malformed HTTP response: {e}", url=url) from e
            location = next((h.value for h in head.headers if h.name.lower() == "location"),
                            None)
            if head.status in _REDIRECTS and location:
                url = urllib.parse.urljoin(url, location)
                endpoint = _endpoint(url)
                query = ""  # the Location is the whole new target
                continue
            try:
                response = parse_http_response(data, kind=kind)
            except ParseError as e:
                if head.status != 200:
                    raise TrackerError(f"HTTP {head.status} {head.reason}", url=url) from e
                raise TrackerError(f"malformed {kind} response: {e}", url=url) from e
            if response.message is None:
                raise TrackerError(f"HTTP {head.status} {head.reason} with an empty body",
                                   url=url)
            return response
        raise TrackerError(f"more than {MAX_REDIRECTS} redirects", url=url)

    async def _http_exchange(self, endpoint: _Endpoint, query: str, url: str) -> bytes:
        full_query = "&".join(q for q in (endpoint.query, query) if q)
        head = build_http_request(TrackerHttpRequest(
            method="GET", path=endpoint.path, query=full_query or None, version="HTTP/1.0",
            headers=(HttpHeader(name="Host", value=endpoint.host_header),
                     HttpHeader(name="User-Agent", value=self.user_agent),
                     HttpHeader(name="Accept-Encoding", value="gzip"),
                     HttpHeader(name="Connection", value="close"))))
        tls = ssl.create_default_context() if endpoint.scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            endpoint.host, endpoint.port, ssl=tls,
            server_hostname=endpoint.host if tls else None)
        try:
            writer.write(head)
            await writer.drain()
            # HTTP/1.0: the answer ends when the tracker closes; read no more than the largest
            # head and body parse_http_response accepts, plus one byte to notice an excess.
            bound = MAX_HEAD_SIZE + MAX_BODY_SIZE
            chunks = []
            size = 0
            while chunk := await reader.read(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > bound:
                    limit = LimitExceeded(f"tracker response over {bound} bytes",
                                          protocol="bt-tracker-http", offset=bound)
                    raise TrackerError(str(limit), url=url) from limit
            return b"".join(chunks)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ------------------------------------------------------------------ UDP (BEP 15)
    # The protocol is UdpTrackerClient's (sans-I/O); this driver only moves its datagrams
    # through one connected socket per tracker, runs its timer on the event loop, and hands
    # each operation's event to the request awaiting it.

    async def _udp_announce(self, endpoint: _Endpoint, request: Announce,
                            url: str) -> AnnounceResult:
        target = endpoint.path + (f"?{endpoint.query}" if endpoint.query else "")
        data = b"" if target in ("", "/") else target.encode("utf-8")
        event = await self._udp_request(endpoint, url, lambda tracker, now: self._udp.announce(
            tracker, request, now, url_data=data))
        assert isinstance(event, AnnounceCompleted)
        return event.result

    async def _udp_scrape(self, endpoint: _Endpoint, info_hashes: list[bytes],
                          url: str) -> dict[bytes, ScrapeResult]:
        event = await self._udp_request(endpoint, url, lambda tracker, now: self._udp.scrape(
            tracker, info_hashes, now))
        assert isinstance(event, ScrapeCompleted)
        return dict(event.files)

    async def _udp_request(self, endpoint: _Endpoint, url: str,
                           start: Callable[[tuple[str, int], float], int]) -> TrackerEvent:
        """Start the operation in the core on the tracker's socket; await its event."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), remote_addr=(endpoint.host, endpoint.port))
        peer = transport.get_extra_info("peername")
        tracker = (peer[0], peer[1])
        if tracker in self._sockets:  # another request to it is in flight: share its socket
            transport.close()
            protocol = self._sockets[tracker]
        else:
            protocol.transport, protocol.tracker = transport, tracker
            self._sockets[tracker] = protocol
        waiter: asyncio.Future[Any] = loop.create_future()
        protocol.waiters.add(waiter)
        operation = start(tracker, self.clock())
        self._waiters[operation] = waiter
        try:
            self._pump()
            event = await waiter
        finally:
            self._waiters.pop(operation, None)
            self._udp.cancel(operation)
            protocol.waiters.discard(waiter)
            if not protocol.waiters:
                del self._sockets[tracker]
                assert protocol.transport is not None
                protocol.transport.close()
            self._pump()
        if isinstance(event, TrackerFailed):
            raise TrackerError(event.reason, url=url, failure_reason=event.failure_reason)
        return event

    def _pump(self) -> None:
        """Send what the core queued, deliver its events, and set the loop's timer to its."""
        for data, dst in self._udp.datagrams_to_send(self.clock()):
            socket = self._sockets.get(dst)
            if socket is not None and socket.transport is not None:
                socket.transport.sendto(data)
        while (event := self._udp.next_event()) is not NEED_DATA:
            waiter = self._waiters.pop(event.operation, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
        when = self._udp.get_timer()
        if self._timer is not None and (when is None or self._timer[0] != when):
            self._timer[1].cancel()
            self._timer = None
        if when is not None and self._timer is None:
            delay = max(when - self.clock(), 0.0)
            self._timer = (when, asyncio.get_running_loop().call_later(delay, self._on_timer))

    def _on_timer(self) -> None:
        self._timer = None
        self._udp.handle_timer(self.clock())
        self._pump()


async def announce(url: str, request: Announce, *, timeout: float,
                   client: TrackerClient | None = None) -> AnnounceResult:
    """Announce to one tracker; see :meth:`TrackerClient.announce`. Pass a long-lived
    ``client`` to reuse BEP 15 connection ids between announces."""
    return await (client or TrackerClient()).announce(url, request, timeout=timeout)


async def scrape(url: str, info_hashes: Sequence[bytes], *, timeout: float,
                 client: TrackerClient | None = None) -> dict[bytes, ScrapeResult]:
    """Scrape one tracker; see :meth:`TrackerClient.scrape`."""
    return await (client or TrackerClient()).scrape(url, info_hashes, timeout=timeout)
