"""A tracker's swarm registry, sans-I/O: announce and scrape over HTTP and UDP (BEP 3, 23, 7,
15, 48).

BEP 3 §trackers: the tracker answers an announce with "interval [...] and peers", where peers
is "a list of dictionaries corresponding to peers, each of which contains the keys peer id, ip
and port". BEP 23 replaces that list with "a peers string with 6 bytes per peer"; BEP 7 adds
"peers6 [...] 18 bytes for each peer". BEP 48: a scrape gives per torrent "complete [...]
downloaded [...] incomplete". BEP 15 §connect: "Connection IDs should not be guessable by the
client [...] Trackers should accept the connection ID until two minutes after it has been send."

:class:`TrackerCore` never touches a socket or a clock: drivers hand it HTTP request heads
(:meth:`TrackerCore.handle_http_request`) and UDP datagrams
(:meth:`TrackerCore.receive_datagram` / :meth:`TrackerCore.datagrams_to_send`) with ``now``, and
read :meth:`TrackerCore.next_event` for logging. Every byte is read and written with the schemas
of :mod:`p2pkit.bittorrent.tracker.http` and :mod:`p2pkit.bittorrent.tracker.udp`.

>>> import random
>>> from p2pkit.bittorrent.tracker.http import AnnounceResponse, parse_http_response
>>> core = TrackerCore(TrackerConfig(interval=1800), rng=random.Random(1))
>>> head = (b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-LT2080-aaaaaaaaaaaa"
...         b"&port=6881&left=0&event=started&compact=1 HTTP/1.0\\r\\n\\r\\n")
>>> _ = core.handle_http_request(head, ("127.0.0.2", 40000), now=0.0)
>>> head = head.replace(b"-LT2080-aaaaaaaaaaaa", b"-LT2080-bbbbbbbbbbbb").replace(b"left=0",
...                                                                                  b"left=9")
>>> resp = parse_http_response(core.handle_http_request(head, ("127.0.0.3", 40000), now=1.0))
>>> resp.message.complete, resp.message.incomplete, [(str(p.ip), p.port) for p in resp.message.peers]
(1, 1, [('127.0.0.2', 6881)])
>>> core.next_event()
PeerAnnounced(transport='http', info_hash=b'aaaaaaaaaaaaaaaaaaaa', peer_id=b'-LT2080-aaaaaaaaaaaa', ip='127.0.0.2', port=6881, event='started', left=0, peers_returned=0)
"""

from __future__ import annotations

import collections
import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from construct import Container

from p2pkit.bittorrent.tracker.http import (
    MAX_HEAD_SIZE,
    HttpHeader,
    TrackerHttpResponse,
    build_http_response,
    encode_body,
    parse_http_request,
)
from p2pkit.bittorrent.tracker.query import AnnounceRequest, ScrapeRequest
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceResponse,
    UdpAnnounceResponse6,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeResponse,
    UdpTrackerRequest,
)
from p2pkit.errors import P2PKitError, RemoteProtocolError

__all__ = [
    "CONNECTION_ID_LIFETIME",
    "MAX_CONNECTION_IDS",
    "MAX_DATAGRAM_SIZE",
    "MAX_NUMWANT",
    "MAX_PEERS_PER_SWARM",
    "MAX_SCRAPE_HASHES",
    "MAX_SWARMS",
    "AnnounceParameters",
    "AnnounceResult",
    "OutgoingDatagram",
    "PeerAnnounced",
    "RequestRefused",
    "ScrapeCounts",
    "ScrapeServed",
    "SwarmPeer",
    "TrackerConfig",
    "TrackerCore",
]

#: BEP 15: "Trackers should accept the connection ID until two minutes after it has been send."
CONNECTION_ID_LIFETIME = 120.0
#: Most connection ids remembered at once (oldest dropped first).
MAX_CONNECTION_IDS = 65536
#: Largest UDP request read (a 74-hash scrape is 1496 bytes; an announce with BEP 41 options
#: at most 98 + 255 * 2).
MAX_DATAGRAM_SIZE = 2048
#: BEP 15 §scrape: "Up to about 74 torrents can be scraped at once."
MAX_SCRAPE_HASHES = 74
#: Default ceilings of :class:`TrackerConfig`.
MAX_NUMWANT = 200
MAX_PEERS_PER_SWARM = 5000
MAX_SWARMS = 10000

_EVENTS = ("started", "completed", "stopped", "")


@dataclass(frozen=True, kw_only=True)
class TrackerConfig:
    """What a tracker promises and how much it holds."""

    #: BEP 3: "interval maps to the number of seconds the downloader should wait between
    #: regular rerequests".
    interval: int = 1800
    #: De-facto ``min interval``: clients must not reannounce more often.
    min_interval: int | None = None
    #: A peer not heard from for ``expiry_factor * interval`` seconds is forgotten.
    expiry_factor: float = 2.0
    #: Peers returned when the client does not say (``numwant`` absent, or -1 over UDP).
    default_numwant: int = 50
    max_numwant: int = MAX_NUMWANT
    max_peers_per_swarm: int = MAX_PEERS_PER_SWARM
    max_swarms: int = MAX_SWARMS
    #: Only these info-hashes are tracked when not ``None`` (opentracker's whitelist).
    allowed_info_hashes: frozenset[bytes] | None = None

    def __post_init__(self) -> None:
        # BEP 3: interval is a number of seconds; a tracker must ask for some wait.
        if self.interval < 1 or self.expiry_factor <= 0:
            raise ValueError("interval and expiry_factor must be positive")
        if min(self.default_numwant, self.max_numwant, self.max_peers_per_swarm,
               self.max_swarms) < 0:
            raise ValueError("limits must not be negative")
        if self.allowed_info_hashes is not None and any(
                len(h) != 20 for h in self.allowed_info_hashes):
            # BEP 3: "info_hash: The 20 byte sha1 hash".
            raise ValueError("allowed info-hashes must be 20 bytes")


# --------------------------------------------------------------------------- values and events

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, kw_only=True)
class AnnounceParameters:
    """One announce, whichever transport carried it (BEP 3 §trackers, BEP 15 announce)."""

    info_hash: bytes
    peer_id: bytes
    #: The address the request came from (the ``ip`` parameter is not trusted).
    ip: IPAddress
    port: int
    #: "started", "completed", "stopped" or "" (a regular reannounce).
    event: str = ""
    left: int = 0
    downloaded: int = 0
    uploaded: int = 0
    #: ``None`` for the tracker's default.
    numwant: int | None = None

    def __post_init__(self) -> None:
        # BEP 3: "info_hash: The 20 byte sha1 hash [...] peer_id: A string of length 20".
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise RemoteProtocolError("info_hash and peer_id must be 20 bytes")
        # BEP 3: "port: The port number this peer is listening on."
        if not 0 < self.port <= 0xFFFF:
            raise RemoteProtocolError(f"invalid port {self.port}")
        if self.event not in _EVENTS:
            raise RemoteProtocolError(f"unknown event {self.event!r}")
        if min(self.left, self.downloaded, self.uploaded) < 0:
            raise RemoteProtocolError("negative byte counts")


@dataclass(frozen=True, kw_only=True)
class SwarmPeer:
    """A peer as handed out: BEP 3 "peer id, ip and port"."""

    peer_id: bytes
    ip: IPAddress
    port: int


@dataclass(frozen=True, kw_only=True)
class AnnounceResult:
    """What an announce is answered with (before encoding for HTTP or UDP)."""

    interval: int
    min_interval: int | None
    #: BEP 48 words: seeders and leechers in the swarm, the announcing peer included.
    complete: int
    incomplete: int
    peers: tuple[SwarmPeer, ...]


@dataclass(frozen=True, kw_only=True)
class ScrapeCounts:
    """BEP 48: "complete [...] downloaded [...] incomplete"."""

    complete: int = 0
    downloaded: int = 0
    incomplete: int = 0


@dataclass(frozen=True, kw_only=True)
class PeerAnnounced:
    """A peer announced and was answered."""

    transport: str
    info_hash: bytes
    peer_id: bytes
    ip: str
    port: int
    event: str
    left: int
    peers_returned: int


@dataclass(frozen=True, kw_only=True)
class ScrapeServed:
    """A scrape was answered for these info-hashes (empty: a full scrape)."""

    transport: str
    ip: str
    info_hashes: tuple[bytes, ...]


@dataclass(frozen=True, kw_only=True)
class RequestRefused:
    """A request was answered with a failure (or dropped, ``answered`` False)."""

    transport: str
    ip: str
    reason: str
    answered: bool = True


@dataclass(frozen=True, kw_only=True)
class OutgoingDatagram:
    """A UDP datagram for the driver to send."""

    data: bytes
    addr: Any


# --------------------------------------------------------------------------- registry


@dataclass(kw_only=True)
class _PeerEntry:
    peer_id: bytes
    ip: IPAddress
    port: int
    left: int
    last_seen: float
    completed: bool = False


@dataclass(kw_only=True)
class _Swarm:
    peers: dict[tuple[bytes, int], _PeerEntry] = field(default_factory=dict)
    downloaded: int = 0
    last_activity: float = 0.0

    def counts(self) -> ScrapeCounts:
        seeders = sum(1 for p in self.peers.values() if p.left == 0)
        return ScrapeCounts(complete=seeders, downloaded=self.downloaded,
                            incomplete=len(self.peers) - seeders)


def _source_ip(addr: Any) -> IPAddress:
    """The IP of an asyncio address tuple; IPv4-mapped IPv6 addresses become IPv4."""
    try:
        ip = ipaddress.ip_address(addr[0])
    except (ValueError, TypeError, IndexError) as e:
        raise RemoteProtocolError(f"bad source address {addr!r}") from e
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class TrackerCore:
    """The swarm registry behind an HTTP and a UDP tracker; deterministic given ``rng``.

    ``rng`` picks which peers to return and the BEP 15 connection ids; pass
    :class:`random.SystemRandom` in production so that ids are not guessable.
    """

    def __init__(self, config: TrackerConfig | None = None, *, rng: random.Random) -> None:
        self.config = config or TrackerConfig()
        self._rng = rng
        self._swarms: dict[bytes, _Swarm] = {}
        self._connection_ids: dict[int, tuple[IPAddress, float]] = {}
        self._events: collections.deque[Any] = collections.deque()
        self._outgoing: list[OutgoingDatagram] = []
        self._next_sweep: float | None = None

    # ------------------------------------------------------------------ the registry itself

    @property
    def peer_lifetime(self) -> float:
        return self.config.interval * self.config.expiry_factor

    def announce(self, request: AnnounceParameters, *, now: float) -> AnnounceResult:
        """Record an announce and choose peers for the announcer.

        Raises :class:`RemoteProtocolError` (its text is the failure reason) when the torrent
        is not allowed or a limit is reached.
        """
        cfg = self.config
        if cfg.allowed_info_hashes is not None and request.info_hash not in \
                cfg.allowed_info_hashes:
            raise RemoteProtocolError("Requested download is not authorized for use with this "
                                      "tracker.")
        self._arm(now)
        swarm = self._swarms.get(request.info_hash)
        if swarm is None:
            if request.event == "stopped":
                return AnnounceResult(interval=cfg.interval, min_interval=cfg.min_interval,
                                      complete=0, incomplete=0, peers=())
            if len(self._swarms) >= cfg.max_swarms:
                raise RemoteProtocolError(f"tracker full: {cfg.max_swarms} torrents")
            swarm = self._swarms[request.info_hash] = _Swarm()
        self._expire_swarm(swarm, now)
        swarm.last_activity = now
        key = (request.peer_id, request.ip.version)
        entry = swarm.peers.get(key)
        if request.event == "stopped":
            # BEP 3: "stopped [...] sent to the tracker if the downloader is ceasing downloading".
            if entry is not None and not entry.completed and request.left == 0:
                swarm.downloaded += 1  # aria2 stops with left=0 and never sends "completed"
            swarm.peers.pop(key, None)
            counts = swarm.counts()
            return AnnounceResult(interval=cfg.interval, min_interval=cfg.min_interval,
                                  complete=counts.complete, incomplete=counts.incomplete,
                                  peers=())
        if entry is None:
            if len(swarm.peers) >= cfg.max_peers_per_swarm:
                raise RemoteProtocolError(f"swarm full: {cfg.max_peers_per_swarm} peers")
            # A peer that arrives with nothing left is a seeder, not a new download.
            entry = swarm.peers[key] = _PeerEntry(peer_id=request.peer_id, ip=request.ip,
                                                  port=request.port, left=request.left,
                                                  last_seen=now, completed=request.left == 0
                                                  and request.event != "completed")
        if not entry.completed and (request.event == "completed" or request.left == 0):
            # BEP 3: "completed is sent when the download is complete" (counted once per
            # peer; a client that reaches left=0 without sending it finished all the same).
            entry.completed = True
            swarm.downloaded += 1
        entry.ip, entry.port, entry.left, entry.last_seen = (request.ip, request.port,
                                                             request.left, now)
        numwant = cfg.default_numwant if request.numwant is None or request.numwant < 0 \
            else request.numwant
        numwant = min(numwant, cfg.max_numwant)
        others = [p for k, p in swarm.peers.items() if k != key and
                  not (request.left == 0 and p.left == 0)]  # seeders need no seeders
        chosen = others if len(others) <= numwant else self._rng.sample(others, numwant)
        counts = swarm.counts()
        return AnnounceResult(
            interval=cfg.interval, min_interval=cfg.min_interval, complete=counts.complete,
            incomplete=counts.incomplete,
            peers=tuple(SwarmPeer(peer_id=p.peer_id, ip=p.ip, port=p.port) for p in chosen))

    def scrape(self, info_hashes: tuple[bytes, ...], *, now: float) -> dict[bytes, ScrapeCounts]:
        """Counts per info-hash (zeros for unknown ones); all allowed swarms when empty."""
        allowed = self.config.allowed_info_hashes
        if not info_hashes:
            info_hashes = tuple(self._swarms)
        out = {}
        for h in info_hashes:
            if allowed is not None and h not in allowed:
                continue
            swarm = self._swarms.get(h)
            if swarm is not None:
                self._expire_swarm(swarm, now)
            out[h] = swarm.counts() if swarm is not None else ScrapeCounts()
        return out

    def _expire_swarm(self, swarm: _Swarm, now: float) -> None:
        deadline = now - self.peer_lifetime
        for key in [k for k, p in swarm.peers.items() if p.last_seen < deadline]:
            del swarm.peers[key]

    # ------------------------------------------------------------------ timers

    def _arm(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + min(self.peer_lifetime, CONNECTION_ID_LIFETIME)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run (``None``: nothing to expire)."""
        return self._next_sweep

    def handle_timer(self, now: float) -> None:
        """Forget expired peers, swarms idle for a peer lifetime, and old connection ids."""
        for info_hash, swarm in list(self._swarms.items()):
            self._expire_swarm(swarm, now)
            if not swarm.peers and swarm.last_activity < now - self.peer_lifetime:
                del self._swarms[info_hash]
        for cid in [c for c, (_, t) in self._connection_ids.items()
                    if t < now - CONNECTION_ID_LIFETIME]:
            del self._connection_ids[cid]
        self._next_sweep = None
        if self._swarms or self._connection_ids:
            self._arm(now)

    def next_event(self) -> Any:
        """The oldest event not yet read (:class:`PeerAnnounced`, :class:`ScrapeServed`,
        :class:`RequestRefused`), or ``None``."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ HTTP (BEP 3, 23, 7, 48)

    def handle_http_request(self, data: bytes, addr: Any, *, now: float) -> bytes:
        """Answer one HTTP request head (everything up to the blank line) with a whole HTTP
        response. Never raises: malformed heads get 400, bad announces a ``failure reason``."""
        try:
            ip = _source_ip(addr)
        except RemoteProtocolError as e:
            return self._http_refuse(400, "Bad Request", str(e), "?")
        try:
            request = parse_http_request(data)
        except P2PKitError as e:
            # A query that parses as HTTP but not as an announce still deserves a bencoded
            # reason; a head that is not HTTP gets a plain 400.
            return self._http_refuse(400, "Bad Request", f"bad request: {e}", str(ip))
        if request.method != "GET":
            return self._http_refuse(405, "Method Not Allowed", "only GET is served", str(ip))
        try:
            if isinstance(request.message, AnnounceRequest):
                body = self._http_announce(request.message, ip, now)
            elif isinstance(request.message, ScrapeRequest):
                body = self._http_scrape(request.message, ip, now)
            else:
                return self._http_refuse(404, "Not Found", "no such tracker path", str(ip))
        except RemoteProtocolError as e:
            self._events.append(RequestRefused(transport="http", ip=str(ip), reason=str(e)))
            body = encode_body(Container(failure_reason=str(e)))
        return self._http_ok(body)

    def http_head_too_large(self, addr: Any) -> bytes:
        """The answer to a request head over ``MAX_HEAD_SIZE`` (a driver stops reading it)."""
        ip = str(addr[0]) if isinstance(addr, tuple) and addr else "?"
        return self._http_refuse(400, "Bad Request", f"request head over {MAX_HEAD_SIZE} bytes",
                                 ip)

    @staticmethod
    def _http_ok(body: bytes, status: int = 200, reason: str = "OK") -> bytes:
        return build_http_response(TrackerHttpResponse(
            version="HTTP/1.0", status=status, reason=reason, body=body,
            headers=(HttpHeader(name="Content-Type", value="text/plain"),
                     HttpHeader(name="Content-Length", value=str(len(body))),
                     HttpHeader(name="Connection", value="close"))))

    def _http_refuse(self, status: int, reason: str, text: str, ip: str) -> bytes:
        self._events.append(RequestRefused(transport="http", ip=ip, reason=text))
        return self._http_ok(encode_body(Container(failure_reason=text[:200])), status, reason)

    def _http_announce(self, message: AnnounceRequest, ip: IPAddress, now: float) -> bytes:
        event = message.event or ""
        if event == "empty":  # BEP 3: "or empty, which is the same as not being present"
            event = ""
        params = AnnounceParameters(
            info_hash=message.info_hash, peer_id=message.peer_id, ip=ip, port=message.port,
            event=event, left=message.left or 0, downloaded=message.downloaded or 0,
            uploaded=message.uploaded or 0, numwant=message.numwant)
        result = self.announce(params, now=now)
        self._announced("http", params, len(result.peers))
        response = Container(interval=result.interval, min_interval=result.min_interval,
                             complete=result.complete, incomplete=result.incomplete)
        if message.compact == 0:
            # BEP 3 dictionary model; BEP 23: compact=0 "prefers the original format".
            response.peers_compact = False
            response.peers = [Container(ip=str(p.ip), port=p.port) if message.no_peer_id
                              else Container(peer_id=p.peer_id, ip=str(p.ip), port=p.port)
                              for p in result.peers]
        else:
            # BEP 23 compact ``peers``; BEP 7 ``peers6`` for the IPv6 peers.
            response.peers_compact = True
            response.peers = [Container(ip=p.ip, port=p.port) for p in result.peers
                              if p.ip.version == 4]
            peers6 = [Container(ip=p.ip, port=p.port) for p in result.peers if p.ip.version == 6]
            response.peers6 = peers6 or None
        return encode_body(response)

    def _http_scrape(self, message: ScrapeRequest, ip: IPAddress, now: float) -> bytes:
        counts = self.scrape(message.info_hashes, now=now)
        self._events.append(ScrapeServed(transport="http", ip=str(ip),
                                         info_hashes=message.info_hashes))
        files = {h: Container(complete=c.complete, downloaded=c.downloaded,
                              incomplete=c.incomplete) for h, c in counts.items()}
        return encode_body(Container(files=files), kind="scrape")

    def _announced(self, transport: str, p: AnnounceParameters, returned: int) -> None:
        self._events.append(PeerAnnounced(transport=transport, info_hash=p.info_hash,
                                          peer_id=p.peer_id, ip=str(p.ip), port=p.port,
                                          event=p.event, left=p.left, peers_returned=returned))

    # ------------------------------------------------------------------ UDP (BEP 15)

    def receive_datagram(self, data: bytes, addr: Any, *, now: float) -> None:
        """Take one UDP request; its answer (if any) waits in :meth:`datagrams_to_send`.

        Datagrams that do not parse as a request are dropped (answering garbage would make the
        tracker a reflector); known requests with a bad connection id or a refused announce get
        an error response. Never raises.
        """
        try:
            ip = _source_ip(addr)
        except RemoteProtocolError as e:
            self._events.append(RequestRefused(transport="udp", ip="?", reason=str(e),
                                               answered=False))
            return
        if len(data) > MAX_DATAGRAM_SIZE:
            self._events.append(RequestRefused(transport="udp", ip=str(ip), answered=False,
                                               reason=f"datagram over {MAX_DATAGRAM_SIZE} bytes"))
            return
        try:
            request = UdpTrackerRequest.parse(data)
        except P2PKitError as e:
            self._events.append(RequestRefused(transport="udp", ip=str(ip), reason=str(e),
                                               answered=False))
            return
        try:
            reply = self._udp_answer(request, ip, now)
        except RemoteProtocolError as e:
            self._events.append(RequestRefused(transport="udp", ip=str(ip), reason=str(e)))
            reply = UdpErrorResponse.build(dict(action="error",
                                                transaction_id=request.transaction_id,
                                                message=str(e).encode("utf-8")))
        self._outgoing.append(OutgoingDatagram(data=reply, addr=addr))

    def datagrams_to_send(self, now: float) -> list[OutgoingDatagram]:
        """The answers queued since the last call."""
        out, self._outgoing = self._outgoing, []
        return out

    def _udp_answer(self, request: Container, ip: IPAddress, now: float) -> bytes:
        if request.action == "connect":
            return UdpConnectResponse.build(dict(action="connect",
                                                 transaction_id=request.transaction_id,
                                                 connection_id=self._new_connection_id(ip, now)))
        self._check_connection_id(request.connection_id, ip, now)
        if request.action == "scrape":
            hashes = tuple(request.info_hashes)
            if len(hashes) > MAX_SCRAPE_HASHES:
                raise RemoteProtocolError(f"more than {MAX_SCRAPE_HASHES} info-hashes")
            counts = self.scrape(hashes, now=now)
            self._events.append(ScrapeServed(transport="udp", ip=str(ip), info_hashes=hashes))
            files = [counts.get(h, ScrapeCounts()) for h in hashes]
            return UdpScrapeResponse.build(dict(
                action="scrape", transaction_id=request.transaction_id,
                files=[dict(seeders=c.complete, completed=c.downloaded, leechers=c.incomplete)
                       for c in files]))
        event = "" if request.event == "none" else request.event
        params = AnnounceParameters(
            info_hash=request.info_hash, peer_id=request.peer_id, ip=ip, port=request.port,
            event=event, left=request.left, downloaded=request.downloaded,
            uploaded=request.uploaded, numwant=request.num_want)
        result = self.announce(params, now=now)
        # BEP 15 §IPv6: "Which format is used is determined by the address family of the
        # underlying UDP packet."
        peers = [dict(ip=p.ip, port=p.port) for p in result.peers if p.ip.version == ip.version]
        self._announced("udp", params, len(peers))
        schema = UdpAnnounceResponse if ip.version == 4 else UdpAnnounceResponse6
        return schema.build(dict(action="announce", transaction_id=request.transaction_id,
                                 interval=result.interval, leechers=result.incomplete,
                                 seeders=result.complete, peers=peers))

    def _new_connection_id(self, ip: IPAddress, now: float) -> int:
        while len(self._connection_ids) >= MAX_CONNECTION_IDS:
            del self._connection_ids[next(iter(self._connection_ids))]
        cid = self._rng.getrandbits(64)
        self._connection_ids[cid] = (ip, now)
        self._arm(now)
        return cid

    def _check_connection_id(self, cid: int, ip: IPAddress, now: float) -> None:
        issued = self._connection_ids.get(cid)
        # BEP 15: "the tracker [...] should check the connection ID [...] and ignore the request
        # or return an error if it doesn't match."
        if issued is None or issued[0] != ip or issued[1] < now - CONNECTION_ID_LIFETIME:
            raise RemoteProtocolError("Connection ID mismatch.")
