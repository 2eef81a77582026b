"""Announcing to HTTP and UDP trackers, asyncio (BEP 3 §trackers, BEP 23, BEP 7, BEP 15, BEP 12,
BEP 48).

BEP 3 §trackers: "Tracker GET requests have the following keys: info_hash [...] peer_id [...]
port [...] uploaded [...] downloaded [...] left [...] event". The request is an HTTP/1.0 GET
built with :mod:`p2pkit.bittorrent.tracker.http` (BEP 23 ``compact=1``, BEP 7 ``key``), the
answer read to the end of the connection (at most ``MAX_HEAD_SIZE + MAX_BODY_SIZE`` bytes) and
decoded by :data:`~p2pkit.bittorrent.tracker.http.AnnounceResponse`; up to
:data:`MAX_REDIRECTS` redirects are followed.

BEP 15: "1. Choose a random transaction ID. [...] 3. Check whether the transaction ID is equal
to the one you chose." A connect exchange gets a connection_id that "a client can use [...] until
one minute after it has received it"; "If a response is not received after 15 * 2 ^ n seconds,
the client should retransmit the request, where n starts at 0 and is increased up to 8 [...]
Note that it is necessary to rerequest a connection ID when it has expired." Packets are the
:mod:`p2pkit.bittorrent.tracker.udp` schemas; datagrams that do not parse or carry another
transaction id are ignored.

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
import functools
import ipaddress
import random
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from construct import Container

from p2pkit.bittorrent.tracker.http import (
    MAX_BODY_SIZE,
    MAX_HEAD_SIZE,
    AnnounceRequest,
    HttpHeader,
    ScrapeRequest,
    TrackerHttpRequest,
    TrackerHttpResponse,
    build_announce_query,
    build_http_request,
    build_scrape_query,
    parse_http_response,
)
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceRequest,
    UdpConnectRequest,
    UdpScrapeRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
)
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

#: BEP 15: "A client can use a connection ID until one minute after it has received it."
CONNECTION_ID_LIFETIME = 60.0
#: BEP 15: retransmit "after 15 * 2 ^ n seconds".
RETRANSMIT_BASE = 15.0
#: BEP 15: "n starts at 0 and is increased up to 8 (3840 seconds)".
MAX_RETRANSMISSIONS = 8
#: Redirects followed for one HTTP announce or scrape.
MAX_REDIRECTS = 3
#: Largest UDP datagram read from a tracker (an announce response with 200 IPv6 peers is 3620).
MAX_UDP_DATAGRAM = 65536
#: BEP 15 §scrape: "Up to about 74 torrents can be scraped at once."
MAX_SCRAPE_HASHES = 74
USER_AGENT = "p2pkit"

_EVENTS = ("started", "completed", "stopped", "")
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


@dataclass(frozen=True, kw_only=True)
class Announce:
    """What we tell a tracker (BEP 3 §trackers; BEP 7 ``key``; BEP 15 announce request)."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    #: "started", "completed", "stopped" or "" for a regular reannounce.
    event: str = ""
    #: Peers wanted; ``None`` lets the tracker choose.
    numwant: int | None = None
    #: BEP 7: "The client SHOULD include a key parameter in its announces"; a 32-bit number (the
    #: BEP 15 ``key`` field, sent as 8 hex digits over HTTP as libtorrent does).
    key: int = 0
    #: The ``tracker id`` a previous HTTP response asked us to send back.
    tracker_id: bytes | None = None

    def __post_init__(self) -> None:
        # BEP 3: "info_hash: The 20 byte sha1 hash [...] peer_id: A string of length 20".
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise LocalProtocolError("info_hash and peer_id must be 20 bytes")
        if not 0 <= self.port <= 0xFFFF or not 0 <= self.key <= 0xFFFFFFFF:
            raise LocalProtocolError("port must fit 16 bits and key 32 bits")
        if self.event not in _EVENTS:
            raise LocalProtocolError(f"event must be one of {_EVENTS}, not {self.event!r}")
        if min(self.uploaded, self.downloaded, self.left) < 0 or (self.numwant or 0) < 0:
            raise LocalProtocolError("byte counts and numwant must not be negative")


@dataclass(frozen=True, kw_only=True)
class TrackerPeer:
    """A peer handed out by a tracker. ``host`` is an IP address (or, in BEP 3's dictionary
    model, possibly a DNS name); ``peer_id`` only when the tracker sent one."""

    host: str
    port: int
    peer_id: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class AnnounceResult:
    """A tracker's answer. ``complete``/``incomplete`` are BEP 15's seeders/leechers."""

    interval: int
    min_interval: int | None = None
    peers: tuple[TrackerPeer, ...] = ()
    complete: int | None = None
    incomplete: int | None = None
    warning_message: str | None = None
    tracker_id: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class ScrapeResult:
    """BEP 48: "complete [...] downloaded [...] incomplete" for one torrent."""

    complete: int = 0
    downloaded: int = 0
    incomplete: int = 0


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
    """Received datagrams, queued; the socket is connected, so only the tracker's arrive."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= MAX_UDP_DATAGRAM:
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nobody listens there.
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


class TrackerClient:
    """Announces and scrapes; keeps BEP 15 connection ids between requests.

    ``rng`` draws transaction ids (BEP 15: "Choose a random transaction ID");
    ``retransmit_base`` is BEP 15's 15 seconds (tests make it small); ``clock`` dates
    connection ids.
    """

    def __init__(self, *, rng: random.Random | None = None,
                 retransmit_base: float = RETRANSMIT_BASE,
                 clock: Callable[[], float] = time.monotonic,
                 user_agent: str = USER_AGENT) -> None:
        self.rng = rng if rng is not None else random.SystemRandom()
        self.retransmit_base = retransmit_base
        self.clock = clock
        self.user_agent = user_agent
        self._connection_ids: dict[tuple[str, int], tuple[int, float]] = {}

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

    async def _udp_announce(self, endpoint: _Endpoint, request: Announce,
                            url: str) -> AnnounceResult:
        options = _url_data(endpoint)

        def packet(connection_id: int, transaction_id: int) -> bytes:
            return UdpAnnounceRequest.build(dict(
                connection_id=connection_id, action="announce", transaction_id=transaction_id,
                info_hash=request.info_hash, peer_id=request.peer_id,
                downloaded=request.downloaded, left=request.left, uploaded=request.uploaded,
                event=request.event or "none", key=request.key,
                num_want=-1 if request.numwant is None else min(request.numwant, 0x7FFFFFFF),
                port=request.port, options=options))

        message = await self._udp_request(endpoint, url, packet, "announce")
        return AnnounceResult(
            interval=message.interval, complete=message.seeders, incomplete=message.leechers,
            peers=tuple(TrackerPeer(host=str(p.ip), port=p.port) for p in message.peers
                        if p.port))

    async def _udp_scrape(self, endpoint: _Endpoint, info_hashes: list[bytes],
                          url: str) -> dict[bytes, ScrapeResult]:
        def packet(connection_id: int, transaction_id: int) -> bytes:
            return UdpScrapeRequest.build(dict(connection_id=connection_id, action="scrape",
                                               transaction_id=transaction_id,
                                               info_hashes=info_hashes))

        message = await self._udp_request(endpoint, url, packet, "scrape")
        if len(message.files) != len(info_hashes):
            raise TrackerError(f"scrape answered {len(message.files)} torrents, asked "
                               f"{len(info_hashes)}", url=url)
        return {h: ScrapeResult(complete=f.seeders, downloaded=f.completed,
                                incomplete=f.leechers)
                for h, f in zip(info_hashes, message.files, strict=True)}

    async def _udp_request(self, endpoint: _Endpoint, url: str,
                           packet: Callable[[int, int], bytes], action: str) -> Container:
        """BEP 15 exchange: connect when no live connection id, then the request; both
        retransmitted after ``retransmit_base * 2 ** n`` seconds, n shared and capped at 8."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Datagrams, remote_addr=(endpoint.host, endpoint.port))
        try:
            peer = transport.get_extra_info("peername")
            ipv6 = ipaddress.ip_address(peer[0].split("%")[0]).version == 6
            key = (endpoint.host, endpoint.port)
            attempt = 0
            fresh = False  # the connection id was obtained during this request
            while True:
                cached = self._connection_ids.get(key)
                if cached is not None and self.clock() - cached[1] > CONNECTION_ID_LIFETIME:
                    # "it is necessary to rerequest a connection ID when it has expired"
                    del self._connection_ids[key]
                    cached = None
                if cached is None:
                    answer = await self._exchange(
                        transport, protocol, ipv6, "connect", attempt,
                        lambda tid: UdpConnectRequest.build(dict(transaction_id=tid)))
                    if answer is None:
                        attempt = self._next_attempt(attempt, url)
                        continue
                    if answer.action == "error":
                        raise _udp_refusal(answer, url)
                    self._connection_ids[key] = (answer.connection_id, self.clock())
                    fresh = True
                    continue
                connection_id, _ = cached
                answer = await self._exchange(transport, protocol, ipv6, action, attempt,
                                              functools.partial(packet, connection_id))
                if answer is None:
                    attempt = self._next_attempt(attempt, url)
                    continue
                if answer.action == "error":
                    if not fresh:
                        # The tracker may have forgotten a connection id we kept from an
                        # earlier request: connect once more before taking the refusal.
                        self._connection_ids.pop(key, None)
                        continue
                    raise _udp_refusal(answer, url)
                return answer
        finally:
            transport.close()

    def _next_attempt(self, attempt: int, url: str) -> int:
        if attempt >= MAX_RETRANSMISSIONS:
            raise TrackerError(f"no answer after {MAX_RETRANSMISSIONS} retransmissions", url=url)
        return attempt + 1

    async def _exchange(self, transport: asyncio.DatagramTransport, protocol: _Datagrams,
                        ipv6: bool, action: str, attempt: int,
                        build: Callable[[int], bytes]) -> Container | None:
        """Send one request with a fresh random transaction id; the answer that carries it (the
        expected action or an error), or ``None`` when ``retransmit_base * 2 ** attempt``
        seconds pass first. Other datagrams are dropped."""
        transaction_id = self.rng.getrandbits(32)
        transport.sendto(build(transaction_id))
        schema = UdpTrackerResponse6 if ipv6 else UdpTrackerResponse
        wait = self.retransmit_base * 2 ** attempt
        try:
            async with asyncio.timeout(wait):
                while True:
                    data = await protocol.queue.get()
                    if isinstance(data, OSError):
                        raise data
                    try:
                        answer = schema.parse(data)
                    except ParseError:
                        continue  # not a tracker answer we understand
                    # "Check whether the transaction ID is equal to the one you chose."
                    if answer.transaction_id != transaction_id:
                        continue
                    if answer.action in (action, "error"):
                        return answer
        except TimeoutError:
            return None


def _url_data(endpoint: _Endpoint) -> list[dict]:
    """BEP 41 URLData options carrying the URL's path and query (255 bytes per option)."""
    target = endpoint.path + (f"?{endpoint.query}" if endpoint.query else "")
    if target in ("", "/"):
        return []
    raw = target.encode("utf-8")
    return [dict(type="url_data", data=raw[i : i + 255]) for i in range(0, len(raw), 255)]


def _udp_refusal(answer: Container, url: str) -> TrackerError:
    # BEP 15 error: "string message"; opentracker ends it with a NUL byte.
    text = bytes(answer.message).rstrip(b"\x00").decode("utf-8", "replace")
    return TrackerError(f"refused: {text}", url=url, failure_reason=text)


async def announce(url: str, request: Announce, *, timeout: float,
                   client: TrackerClient | None = None) -> AnnounceResult:
    """Announce to one tracker; see :meth:`TrackerClient.announce`. Pass a long-lived
    ``client`` to reuse BEP 15 connection ids between announces."""
    return await (client or TrackerClient()).announce(url, request, timeout=timeout)


async def scrape(url: str, info_hashes: Sequence[bytes], *, timeout: float,
                 client: TrackerClient | None = None) -> dict[bytes, ScrapeResult]:
    """Scrape one tracker; see :meth:`TrackerClient.scrape`."""
    return await (client or TrackerClient()).scrape(url, info_hashes, timeout=timeout)
