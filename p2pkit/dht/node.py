"""A Mainline DHT node as a sans-I/O state machine (BEP 5, with BEP 32, 42, 43, 44, 51).

The node never touches a socket or a clock (DESIGN.md §Shapes to follow): datagrams come in
through :meth:`Node.receive_datagram` with the time, datagrams to send come out of
:meth:`Node.datagrams_to_send`, and :meth:`Node.get_timer` / :meth:`Node.handle_timer` drive
timeouts and maintenance. Results of the operations a user starts (``ping``, ``find_node``,
``get_peers``, ``announce_peer``, ``get``, ``put``) arrive as events from
:meth:`Node.next_event`. The same object serves the UDP server, the simulator and the tests.

Two nodes talking through a list, no sockets:

>>> import random
>>> a = Node(bytes([1]) * 20, rng=random.Random(1), now=0.0)
>>> b = Node(bytes([2]) * 20, rng=random.Random(2), now=0.0)
>>> op = a.ping(("127.0.0.2", 6881), now=0.0)
>>> [(data, to)] = a.datagrams_to_send(0.0)
>>> b.receive_datagram(data, ("127.0.0.1", 6881), now=0.1)
>>> sent = b.datagrams_to_send(0.1)  # the answer, and b's own ping to check a before adding it
>>> [krpc.decode(d).y for d, _ in sent]
['r', 'q']
>>> a.receive_datagram(sent[0][0], ("127.0.0.2", 6881), now=0.2)
>>> event = a.next_event()
>>> type(event).__name__, event.node_id == bytes([2]) * 20, len(a.table)
('PingCompleted', True, 1)
>>> a.next_event()
NEED_DATA

Security (BEP 5 §Errors, BEP 42): datagrams over a per-source rate are dropped; a malformed
query is answered with error 203 when it has a transaction id, else dropped; ``announce_peer``
and ``put`` with a bad token get 203; responses are kept under :data:`MAX_RESPONSE_SIZE`
(no amplification); node ids that BEP 42 rejects are reported as :class:`NodeIdMismatch`
events and, with ``enforce_node_id``, kept out of the routing table and lookups.

The Kademlia algorithm (routing table, iterative lookup) is :mod:`p2pkit.kademlia`'s, run with
the Mainline parameters :data:`ID_BITS`, :data:`K` and :data:`ALPHA`; this module brings KRPC,
tokens, storage and the BEP extensions.

It stays one module: it is one state machine (queries in, answers and lookups out) whose
handlers share the pending-query table, the routing table and the stores; the second ideas
already have modules of their own (``tokens``, ``store``, ``items``, ``security``, ``scrape``,
:mod:`p2pkit.kademlia`).
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from construct import Container

from p2pkit import bencode
from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.dht import items as bep44
from p2pkit.dht import krpc
from p2pkit.dht.items import Item, ItemStore, PutRejected
from p2pkit.dht.krpc import ErrorCode
from p2pkit.dht.scrape import ScrapeBloomFilter
from p2pkit.dht.security import RateLimiter, node_id_is_exempt, node_id_is_valid
from p2pkit.dht.store import PeerStore
from p2pkit.dht.tokens import Tokens
from p2pkit.errors import LocalProtocolError, ParseError
from p2pkit.kademlia.lookup import Lookup
from p2pkit.kademlia.routing import RoutingTable

__all__ = [
    "ALPHA",
    "Contact",
    "ID_BITS",
    "K",
    "LookupCompleted",
    "MAX_RESPONSE_SIZE",
    "Node",
    "NodeEvent",
    "NodeIdMismatch",
    "PingCompleted",
    "QUERY_TIMEOUT",
    "StoreCompleted",
    "VERSION",
]

#: BEP 5: "Node IDs are chosen at random from the same 160-bit space as BitTorrent infohashes".
ID_BITS = 160
#: BEP 5: "Each bucket can only hold K nodes, currently eight".
K = 8
#: Queries a lookup keeps in flight (Kademlia §2.3: "α is a system-wide concurrency parameter,
#: such as 3"; BEP 5 leaves it to the implementation).
ALPHA = 3

#: Seconds before an unanswered query counts as failed.
QUERY_TIMEOUT = 5.0
#: Seconds between routing-table maintenance rounds (pings of questionable nodes, refreshes).
MAINTENANCE_INTERVAL = 60.0
#: Largest datagram the node sends: a 1500-byte MTU less IPv6 and UDP headers. Answers are
#: trimmed (fewer values, then no nodes) to fit, so a small query never buys a large reply.
MAX_RESPONSE_SIZE = 1452
#: Queries the node keeps outstanding at once (new operations wait beyond this).
MAX_PENDING = 2048
#: Seconds before an address that sent us queries is pinged again to verify it.
VERIFY_INTERVAL = 60.0
#: Addresses whose last verification ping is remembered.
MAX_VERIFIED = 4096
#: Questionable nodes pinged per maintenance round.
PINGS_PER_ROUND = 8
#: BEP 51: "interval: the subset refresh interval in seconds" (the largest the BEP allows).
SAMPLE_INTERVAL = 21600
#: Distinct external addresses (BEP 42 ``ip``) counted; others reported later are ignored.
MAX_ADDRESS_VOTES = 16
#: BEP 51 samples per answer.
MAX_SAMPLES = 20
#: BEP 5 "v": "a two character client identifier [...] plus a two character version".
VERSION = b"PK\x00\x01"

Address = tuple[str, int]


@functools.lru_cache(maxsize=MAX_VERIFIED)
def _compact_node(node_id: bytes, ip: str, port: int) -> bytes:
    """BEP 5 "compact node info" (BEP 32: 38 bytes for IPv6) of a known node, built once by
    the KRPC schema: answers repeat the same few routing-table entries."""
    schema = krpc.CompactNode6 if ":" in ip else krpc.CompactNode
    return schema.build(Container(id=node_id, ip=ip, port=port))


@functools.lru_cache(maxsize=MAX_VERIFIED)
def _compact_address(ip: str, port: int) -> bytes:
    """Compact IP-address/port info (BEP 42 ``ip`` of a querier, BEP 5 ``values``), built
    once per address by the KRPC address schema."""
    schema = krpc.CompactPeer6 if ":" in ip else krpc.CompactPeer
    return schema.build(Container(ip=ip, port=port))


@dataclass(frozen=True, kw_only=True)
class Contact:
    """A node: its id and UDP address (BEP 5 "compact node info", decoded)."""

    id: bytes
    addr: Address


def _check_id(value: bytes, what: str) -> None:
    # BEP 5: "Node IDs are chosen at random from the same 160-bit space as BitTorrent infohashes"
    if len(value) != ID_BITS // 8:
        raise LocalProtocolError(f"{what} is {ID_BITS // 8} bytes (BEP 5), not {len(value)}")


@dataclass(frozen=True, kw_only=True)
class NodeEvent(Event):
    """Base of the events :meth:`Node.next_event` returns."""


@dataclass(frozen=True, kw_only=True)
class PingCompleted(NodeEvent):
    """A ``ping`` was answered (``node_id``) or timed out (``node_id`` is None)."""

    operation: int
    addr: Address
    node_id: bytes | None

    def __post_init__(self) -> None:
        if self.node_id is not None:
            _check_id(self.node_id, "a node id")


#: BEP 5 and BEP 44 queries a lookup iterates with.
LOOKUP_METHODS = ("find_node", "get_peers", "get")
#: BEP 5 and BEP 44 queries that store at the nodes a lookup found.
STORE_METHODS = ("announce_peer", "put")


@dataclass(frozen=True, kw_only=True)
class LookupCompleted(NodeEvent):
    """An iterative ``find_node``, ``get_peers`` or ``get`` ended (BEP 5, BEP 44).

    BEP 5: the querying node "iterates over the closest nodes, querying them, until it cannot
    find any closer nodes".
    """

    operation: int
    method: str
    target: bytes
    #: The closest nodes that answered, closest first.
    nodes: tuple[Contact, ...]
    #: get_peers: peers from ``values``.
    peers: tuple[Address, ...] = ()
    #: get: the verified item with the highest ``seq`` (or the immutable one).
    item: Item | None = None
    queries: int = 0
    hops: int = 0

    def __post_init__(self) -> None:
        if self.method not in LOOKUP_METHODS:
            raise LocalProtocolError(f"a lookup iterates {', '.join(LOOKUP_METHODS)}, "
                                     f"not {self.method!r}")
        # BEP 5: infohashes and node ids share the 160-bit space; BEP 44 targets are SHA-1s
        _check_id(self.target, "a lookup target")


@dataclass(frozen=True, kw_only=True)
class StoreCompleted(NodeEvent):
    """An ``announce_peer`` or ``put`` was sent to the closest nodes that gave a token.

    BEP 5: announce_peer goes to the nodes that answered get_peers, with "the token received
    in response to a previous get_peers query"; BEP 44 put likewise after a get.
    """

    operation: int
    method: str
    target: bytes
    stored: int
    errors: tuple[tuple[Address, int, str], ...]
    lookup: LookupCompleted

    def __post_init__(self) -> None:
        if self.method not in STORE_METHODS:
            raise LocalProtocolError(f"a store is {' or '.join(STORE_METHODS)}, "
                                     f"not {self.method!r}")
        if self.stored < 0:
            raise LocalProtocolError("stored counts the nodes that accepted: never negative")


@dataclass(frozen=True, kw_only=True)
class NodeIdMismatch(NodeEvent):
    """BEP 42: a node's id does not match its IP address ("the node ID [...] must match the
    external IP of the node")."""

    addr: Address
    node_id: bytes


@dataclass(eq=False)
class _Operation:
    id: int
    method: str
    target: bytes
    lookup: Lookup | None = None
    #: Queries of this operation still unanswered that the lookup does not track.
    waiting: int = 0
    peers: dict[Address, None] = field(default_factory=dict)
    item: Item | None = None
    salt: bytes = b""
    store: dict[str, Any] | None = None
    stored: int = 0
    errors: list[tuple[Address, int, str]] = field(default_factory=list)
    result: LookupCompleted | None = None
    internal: bool = False
    #: The query a lookup sends (``get_peers`` for an announce, ``get`` for a put).
    lookup_method: str = ""


# What a query of ours is for (the answer or timeout is routed by it).
#: A user's ping.
_PING = "ping"
#: A query of an iterative lookup, to a candidate of known id.
_LOOKUP = "lookup"
#: A lookup's query to a bootstrap address (node id unknown).
_BOOTSTRAP = "bootstrap"
#: announce_peer or put after a lookup.
_STORE = "store"
#: A ping to check a node before it enters the routing table, or during maintenance.
_VERIFY = "verify"


@dataclass(eq=False)
class _Pending:
    t: bytes
    addr: Address
    method: str
    deadline: float
    operation: int | None
    purpose: str  # one of the purposes below
    node_id: bytes | None = None


class Node:
    """One DHT node. ``rng`` drives ids, tokens and transaction ids; time comes with each call."""

    def __init__(self, node_id: bytes | None = None, *, rng: random.Random, now: float,
                 k: int = K, alpha: int = ALPHA, read_only: bool = False,
                 enforce_node_id: bool = False, query_timeout: float = QUERY_TIMEOUT,
                 rate_limit: RateLimiter | None = None, version: bytes | None = VERSION,
                 maintenance_interval: float | None = MAINTENANCE_INTERVAL) -> None:
        self.rng = rng
        self.id = node_id if node_id is not None else rng.randbytes(20)
        self.k = k
        self.alpha = alpha
        self.read_only = read_only
        self.enforce_node_id = enforce_node_id
        self.query_timeout = query_timeout
        self.version = version
        self.table = RoutingTable(self.id, k=k, id_bits=ID_BITS)
        self.tokens = Tokens(rng, now)
        self.peers = PeerStore(rng)
        self.items = ItemStore()
        self.limiter = rate_limit if rate_limit is not None else RateLimiter()
        self._outbox: list[tuple[bytes, Address]] = []
        self._events: deque[NodeEvent] = deque()
        self._pending: dict[bytes, _Pending] = {}
        self._verified: dict[Address, float] = {}
        self._deadlines: list[tuple[float, bytes]] = []
        self._operations: dict[int, _Operation] = {}
        self._next_operation = 1
        self._next_t = rng.randrange(1 << 16)
        #: Seconds between maintenance rounds; None turns maintenance off (measurements).
        self.maintenance_interval = maintenance_interval
        self._next_maintenance = math.inf if maintenance_interval is None else (
            now + maintenance_interval)
        #: Counters: received, sent, malformed, rate_limited, unsolicited, errors_sent …
        self.stats: dict[str, int] = {}
        #: BEP 42: external addresses other nodes reported in ``ip``, with their votes.
        self.external_votes: dict[Address, int] = {}

    # ---- the sans-I/O surface --------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram from ``addr``; never raises on what a remote sends."""
        if self.admit(addr[0], now):
            self.receive_admitted(data, addr, now)

    def admit(self, ip: str, now: float) -> bool:
        """Count one datagram from ``ip`` and apply the per-source rate limit: True when it
        should be handled. A driver calls this before it even copies the datagram, so a flood
        from one address costs a dictionary look-up per datagram, not a decode; then it calls
        :meth:`receive_admitted`. (:meth:`receive_datagram` does both.)"""
        stats = self.stats
        stats["received"] = stats.get("received", 0) + 1
        if self.limiter.allow(ip, now):
            return True
        stats["rate_limited"] = stats.get("rate_limited", 0) + 1
        return False

    def receive_admitted(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram that :meth:`admit` let through; never raises on what a
        remote sends."""
        try:
            msg = krpc.decode(data)
        except ParseError as e:
            self._malformed(data, addr, e)
            return
        if msg["y"] == "q":
            self._on_query(msg, addr, now)
        else:
            self._on_answer(msg, addr, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Datagrams queued since the last call, with their destination."""
        out, self._outbox = self._outbox, []
        return out

    def get_timer(self) -> float | None:
        """The time at which :meth:`handle_timer` should next be called (the next query
        deadline or maintenance round), or None when nothing is due."""
        while self._deadlines and self._deadlines[0][1] not in self._pending:
            heapq.heappop(self._deadlines)
        nxt = self._next_maintenance
        if self._deadlines:
            nxt = min(nxt, self._deadlines[0][0])
        return None if nxt == math.inf else nxt

    def handle_timer(self, now: float) -> None:
        """Expire unanswered queries and run maintenance when due."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, t = heapq.heappop(self._deadlines)
            pending = self._pending.get(t)
            if pending is not None and pending.deadline <= now:
                del self._pending[t]
                self._on_timeout(pending, now)
        if now >= self._next_maintenance:
            self._next_maintenance = now + self.maintenance_interval
            self._maintain(now)

    @property
    def pending_queries(self) -> int:
        """Queries sent and not yet answered or timed out."""
        return len(self._pending)

    def next_event(self) -> NodeEvent | NeedData:
        """The next result (:class:`PingCompleted`, :class:`LookupCompleted`,
        :class:`StoreCompleted`, :class:`NodeIdMismatch`), or :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    # ---- operations a user starts -----------------------------------------------------------

    def ping(self, addr: Address, now: float) -> int:
        """BEP 5 ping; a :class:`PingCompleted` follows."""
        op = self._operation("ping", b"")
        op.waiting = 1
        self._query("ping", addr, {}, now, op=op, purpose=_PING)
        return op.id

    def bootstrap(self, addrs: list[Address], now: float) -> int:
        """Join through known addresses: a find_node lookup of our own id (BEP 5)."""
        return self.find_node(self.id, now, bootstrap=addrs)

    def find_node(self, target: bytes, now: float, *, bootstrap: list[Address] = ()) -> int:
        """Iterative find_node; a :class:`LookupCompleted` follows."""
        return self._start_lookup("find_node", target, now, bootstrap=bootstrap).id

    def get_peers(self, info_hash: bytes, now: float) -> int:
        """Iterative get_peers; a :class:`LookupCompleted` with ``peers`` follows."""
        return self._start_lookup("get_peers", info_hash, now).id

    def announce_peer(self, info_hash: bytes, port: int, now: float, *,
                      implied_port: bool = False) -> int:
        """get_peers, then announce_peer to the closest nodes that gave a token (BEP 5);
        a :class:`StoreCompleted` follows."""
        store = {"info_hash": info_hash, "port": port}
        if implied_port:
            store["implied_port"] = 1
        return self._start_lookup("get_peers", info_hash, now, store=store,
                                  final="announce_peer").id

    def get(self, target: bytes, now: float, *, salt: bytes = b"") -> int:
        """BEP 44 get; a :class:`LookupCompleted` with the verified ``item`` follows. ``salt`` is
        needed to verify a salted mutable item (it is not sent)."""
        op = self._start_lookup("get", target, now, salt=salt)
        return op.id

    def put(self, v: Any, now: float, *, seed: bytes | None = None, seq: int | None = None,
            salt: bytes = b"", cas: int | None = None) -> int:
        """BEP 44 put: immutable without ``seed``; mutable (signed with the 32-byte ed25519
        ``seed``) with it. A :class:`StoreCompleted` follows."""
        store: dict[str, Any] = {"v": v}
        if seed is None:
            target = bep44.immutable_target(v)
        else:
            if seq is None:
                raise LocalProtocolError("a mutable put needs seq (BEP 44)")
            k = bep44.public_key(seed)
            store.update(k=k, seq=seq, sig=bep44.sign(seed, seq, v, salt))
            if salt:
                store["salt"] = salt
            if cas is not None:
                store["cas"] = cas
            target = bep44.mutable_target(k, salt)
        return self._start_lookup("get", target, now, store=store, final="put", salt=salt).id

    # ---- internals: sending -----------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def _operation(self, method: str, target: bytes, internal: bool = False) -> _Operation:
        op = _Operation(self._next_operation, method, target, internal=internal)
        self._next_operation += 1
        self._operations[op.id] = op
        return op

    def _transaction_id(self) -> bytes:
        while True:
            self._next_t = (self._next_t + 1) & 0xFFFF
            t = self._next_t.to_bytes(2, "big")
            if t not in self._pending:
                return t

    def _send(self, message: Container, addr: Address) -> None:
        data = krpc.encode(message)
        self._outbox.append((data, addr))
        self._count("sent")

    def _query(self, method: str, addr: Address, arguments: dict[str, Any], now: float, *,
               op: _Operation | None, purpose: str, node_id: bytes | None = None) -> bool:
        if len(self._pending) >= MAX_PENDING:
            self._count("pending_full")
            return False
        t = self._transaction_id()
        msg = krpc.query(method, t, id=self.id, **arguments)
        if self.read_only:
            msg.ro = 1  # BEP 43: "places a 'ro' key in the top-level message dictionary"
        if self.version:
            msg.v = self.version
        deadline = now + self.query_timeout
        self._pending[t] = _Pending(t, addr, method, deadline, op.id if op else None, purpose,
                                    node_id)
        heapq.heappush(self._deadlines, (deadline, t))
        self._send(msg, addr)
        return True

    def _reply(self, message: Container, t: bytes, addr: Address) -> None:
        message["t"] = t
        if self.version:
            message["v"] = self.version
        # BEP 42: "all DHT responses SHOULD include a top-level field called ip"
        message["ip"] = _compact_address(addr[0], addr[1])
        data = krpc.encode(message)
        while len(data) > MAX_RESPONSE_SIZE:
            message = self._trim(message)
            data = krpc.encode(message)
        self._outbox.append((data, addr))
        stats = self.stats
        stats["sent"] = stats.get("sent", 0) + 1

    @staticmethod
    def _trim(answer: Container) -> Container:
        """A smaller answer (bounded responses, no amplification): fewer values, then no
        nodes6, then no nodes, then fewer samples; else a 202."""
        r = answer.get("r")
        if r is not None:
            for key in ("values", "nodes6", "nodes", "samples"):
                if r.get(key):
                    r[key] = r[key][: len(r[key]) // 2]
                    return answer
        return Container(krpc.error(answer.t, ErrorCode.SERVER_ERROR, "answer too large"),
                         ip=answer.ip)

    # ---- internals: answering queries --------------------------------------------------------

    def _malformed(self, data: bytes, addr: Address, e: ParseError) -> None:
        """BEP 5 error 203 "Protocol Error, such as a malformed packet" to a query we can
        address (it has a transaction id); answers and undecodable bytes are dropped."""
        self._count("malformed")
        try:
            raw = bencode.decode_lenient(data[:krpc.MAX_MESSAGE_SIZE]).value
        except ParseError:
            return
        if type(raw) is not dict or type(raw.get(b"t")) is not bytes or raw.get(b"y") != b"q":
            return
        if len(raw[b"t"]) > 32:
            return
        self._reply(krpc.error(raw[b"t"], ErrorCode.PROTOCOL_ERROR,
                               f"malformed message: {e.reason}"[:100]), raw[b"t"], addr)
        self._count("errors_sent")

    def _on_query(self, msg: Container, addr: Address, now: float) -> None:
        sender = msg["a"]["id"]
        handler = _HANDLERS.get(msg["method"])
        if handler is None:
            answer = krpc.error(msg["t"], ErrorCode.METHOD_UNKNOWN, "Method Unknown")
        else:
            try:
                answer = handler(self, msg, addr, now)
            except PutRejected as rejected:
                answer = krpc.error(msg.t, rejected.code, rejected.message)
        if answer["y"] == "e":
            self._count("errors_sent")
        else:
            stats = self.stats
            stats["queries_answered"] = stats.get("queries_answered", 0) + 1
        self._reply(answer, msg["t"], addr)
        # BEP 43: a read-only node "should not [be added] to the routing table"; others are
        # added once they answer a ping of ours (a spoofed source never does).
        if msg.get("ro") != 1 and sender != self.id:
            if self.table.seen_query(sender, addr, now) and self._may_verify(addr, now):
                self._query("ping", addr, {}, now, op=None, purpose=_VERIFY, node_id=sender)

    def _may_verify(self, addr: Address, now: float) -> bool:
        """At most one verification ping per address per :data:`VERIFY_INTERVAL` (two nodes
        that keep querying each other must not ping each other in a loop)."""
        last = self._verified.get(addr)
        if last is not None and now - last < VERIFY_INTERVAL:
            return False
        self._verified.pop(addr, None)
        self._verified[addr] = now
        if len(self._verified) > MAX_VERIFIED:
            del self._verified[next(iter(self._verified))]
        return True

    def _nodes(self, target: bytes, addr: Address, want: Any, now: float) -> dict[str, list]:
        """BEP 32: "nodes" and/or "nodes6" as the querier wants (its own family by default),
        each the ``k`` closest good nodes of that family in compact form."""
        if want is None:
            wanted = ("n6",) if ":" in addr[0] else ("n4",)
        else:
            wanted = [w for w in want if w in ("n4", "n6")] or (
                ("n6",) if ":" in addr[0] else ("n4",))
        out: dict[str, list] = {}
        for key, v6, name in (("n4", False, "nodes"), ("n6", True, "nodes6")):
            if key in wanted:
                out[name] = [_compact_node(e.id, e.addr[0], e.addr[1]) for e in
                             self.table.closest(target, self.k, now=now, ipv6=v6)]
        return out

    def _answer_ping(self, msg: Container, addr: Address, now: float) -> Container:
        return krpc.response(msg["t"], id=self.id)

    def _answer_find_node(self, msg: Container, addr: Address, now: float) -> Container:
        a = msg["a"]
        return krpc.response(msg["t"], id=self.id,
                             **self._nodes(a["target"], addr, a.get("want"), now))

    def _answer_get_peers(self, msg: Container, addr: Address, now: float) -> Container:
        a = msg["a"]
        answer = krpc.response(msg["t"], id=self.id, token=self.tokens.token_for(addr[0], now))
        if a.get("scrape") == 1 or a.get("noseed") == 1:
            return self._answer_scrape(answer, a, addr, now)
        peers = self.peers.peers(a["info_hash"], now, limit=100)
        if peers:
            # BEP 5: "If the queried node has peers for the infohash, they are returned in a
            # key "values" as a list of strings." (compact peer info, built once per peer)
            answer["r"]["values"] = [_compact_address(ip, port) for ip, port in peers]
        else:
            answer["r"].update(self._nodes(a["info_hash"], addr, a.get("want"), now))
        return answer

    def _answer_scrape(self, answer: Container, a: Container, addr: Address,
                       now: float) -> Container:
        """BEP 33 get_peers: ``scrape=1`` adds the ``BFsd`` (seeds) and ``BFpe`` (peers) bloom
        filters of the announced IPs; ``noseed=1`` leaves seeds out of ``values``."""
        info_hash = a["info_hash"]
        every = self.peers.peers(info_hash, now)
        values = [p for p in every if not (a.get("noseed") == 1 and
                                             self.peers.is_seed(info_hash, p))]
        if len(values) > 100:
            values = self.rng.sample(values, 100)
        if values:
            answer["r"]["values"] = [_compact_address(ip, port) for ip, port in values]
        else:
            answer["r"].update(self._nodes(info_hash, addr, a.get("want"), now))
        if a.get("scrape") == 1:
            seeds, others = ScrapeBloomFilter(), ScrapeBloomFilter()
            for peer in every:
                (seeds if self.peers.is_seed(info_hash, peer) else others).insert(peer[0])
            answer["r"]["BFsd"] = bytes(seeds)
            answer["r"]["BFpe"] = bytes(others)
        return answer

    def _answer_announce_peer(self, msg: Container, addr: Address, now: float) -> Container:
        # BEP 5: "The queried node must verify that the token was previously sent to the same
        # IP address as the querying node."
        if not self.tokens.check(msg.a.token, addr[0], now):
            return krpc.error(msg.t, ErrorCode.PROTOCOL_ERROR, "bad token")
        # BEP 5: "If it is present and non-zero, the port argument should be ignored and the
        # source port of the UDP packet should be used as the peer's port instead."
        port = addr[1] if msg.a.get("implied_port") else msg.a.port
        if not 0 < port < 65536:
            return krpc.error(msg.t, ErrorCode.PROTOCOL_ERROR, "invalid port")
        self.peers.add(msg.a.info_hash, (addr[0], port), now, seed=msg.a.get("seed") == 1)
        return krpc.response(msg.t, id=self.id)

    def _answer_get(self, msg: Container, addr: Address, now: float) -> Container:
        answer = krpc.response(msg.t, id=self.id, token=self.tokens.token_for(addr[0], now))
        # BEP 44 §Messages: "Responses to ``get`` should always include ``nodes`` and
        # ``nodes6``" (both families unless a BEP 32 ``want`` asks for one).
        answer.r.update(self._nodes(msg.a.target, addr, msg.a.get("want") or ("n4", "n6"),
                                    now))
        item = self.items.get(msg.a.target, now)
        if item is not None:
            if item.mutable:
                answer.r["seq"] = item.seq
                # BEP 44 §get message: "If a stored item exists but its sequence number is
                # less than or equal to the ``seq`` field then the ``k``, ``v``, and ``sig``
                # fields SHOULD be omitted from the response."
                if msg.a.get("seq") is not None and item.seq <= msg.a.seq:
                    return answer
                answer.r.update(dict(k=item.k, sig=item.sig))
            answer.r["v"] = item.v
        return answer

    def _answer_put(self, msg: Container, addr: Address, now: float) -> Container:
        if not self.tokens.check(msg.a.token, addr[0], now):
            return krpc.error(msg.t, ErrorCode.PROTOCOL_ERROR, "bad token")
        self.items.put(msg.a, now)
        return krpc.response(msg.t, id=self.id)

    def _answer_sample_infohashes(self, msg: Container, addr: Address, now: float) -> Container:
        hashes = self.peers.info_hashes(now)
        samples = self.rng.sample(hashes, min(MAX_SAMPLES, len(hashes)))
        return krpc.response(msg.t, id=self.id, interval=SAMPLE_INTERVAL, num=len(hashes),
                             samples=samples,
                             **self._nodes(msg.a.target, addr, msg.a.get("want"), now))

    # ---- internals: answers to our queries ---------------------------------------------------

    def _on_answer(self, msg: Container, addr: Address, now: float) -> None:
        pending = self._pending.get(msg.t)
        if pending is None or pending.addr != addr:
            self._count("unsolicited")
            return
        del self._pending[msg.t]
        msg.method = pending.method
        op = self._operations.get(pending.operation) if pending.operation else None
        if msg.y == "e":
            self._on_error(pending, op, msg, now)
            return
        node_id = msg.r.id
        trusted = True
        if not node_id_is_exempt(addr[0]) and not node_id_is_valid(node_id, addr[0]):
            self._events.append(NodeIdMismatch(addr=addr, node_id=node_id))
            trusted = not self.enforce_node_id
        if "ip" in msg:
            seen = (str(msg.ip.ip), msg.ip.port)
            if seen in self.external_votes or len(self.external_votes) < MAX_ADDRESS_VOTES:
                self.external_votes[seen] = self.external_votes.get(seen, 0) + 1
        if trusted and msg.get("ro") != 1:
            self.table.seen_response(node_id, addr, now)
        if pending.purpose == _PING:
            self._finish_simple(op, PingCompleted(operation=op.id, addr=addr, node_id=node_id))
        elif pending.purpose in (_LOOKUP, _BOOTSTRAP) and op is not None:
            self._lookup_answer(op, pending, node_id, msg.r, trusted, now)
        elif pending.purpose == _STORE and op is not None:
            op.stored += 1
            self._store_progress(op)

    def _on_error(self, pending: _Pending, op: _Operation | None, msg: Container,
                  now: float) -> None:
        self._count("errors_received")
        error = msg.get("e") or Container(code=0, message="")
        if pending.purpose == _PING and op is not None:
            self._finish_simple(op, PingCompleted(operation=op.id, addr=pending.addr, node_id=None))
        elif pending.purpose == _STORE and op is not None:
            op.errors.append((pending.addr, int(error.code), str(error.message)))
            self._store_progress(op)
        elif pending.purpose in (_LOOKUP, _BOOTSTRAP) and op is not None:
            self._lookup_failed(op, pending, now)

    def _on_timeout(self, pending: _Pending, now: float) -> None:
        self._count("timeouts")
        if pending.node_id is not None:
            self.table.failed(pending.node_id, now)
        op = self._operations.get(pending.operation) if pending.operation else None
        if op is None:
            return
        if pending.purpose == _PING:
            self._finish_simple(op, PingCompleted(operation=op.id, addr=pending.addr, node_id=None))
        elif pending.purpose == _STORE:
            op.errors.append((pending.addr, 0, "timeout"))
            self._store_progress(op)
        else:
            self._lookup_failed(op, pending, now, timeout=True)

    def _finish_simple(self, op: _Operation | None, event: NodeEvent) -> None:
        if op is not None and self._operations.pop(op.id, None) is not None:
            self._events.append(event)

    # ---- internals: lookups ------------------------------------------------------------------

    def _start_lookup(self, method: str, target: bytes, now: float, *,
                      bootstrap: list[Address] = (), store: dict[str, Any] | None = None,
                      final: str | None = None, salt: bytes = b"",
                      internal: bool = False) -> _Operation:
        op = self._operation(final or method, target, internal=internal)
        op.lookup = Lookup(target, k=self.k, alpha=self.alpha, id_bits=ID_BITS)
        op.store = store
        op.salt = salt
        op.lookup_method = method
        op.lookup.seed(self.table, now)
        args = self._lookup_arguments(method, target)
        for addr in bootstrap:
            if self._query(method, addr, args, now, op=op, purpose=_BOOTSTRAP):
                op.lookup.address_queried()
        self._advance(op, now)
        return op

    @staticmethod
    def _lookup_arguments(method: str, target: bytes) -> dict[str, Any]:
        return {"info_hash": target} if method == "get_peers" else {"target": target}

    def _advance(self, op: _Operation, now: float) -> None:
        lookup = op.lookup
        args = self._lookup_arguments(op.lookup_method, op.target)
        for candidate in lookup.next_queries():
            if not self._query(op.lookup_method, candidate.addr, args, now, op=op,
                               purpose=_LOOKUP, node_id=candidate.id):
                lookup.failed(candidate.id)
        if lookup.finished and op.result is None:
            self._lookup_finished(op, now)

    def _lookup_answer(self, op: _Operation, pending: _Pending, node_id: bytes, r: Container,
                       trusted: bool, now: float) -> None:
        lookup = op.lookup
        nodes = [(n.id, (str(n.ip), n.port)) for n in list(r.get("nodes") or ())
                 + list(r.get("nodes6") or ()) if n.port and n.id != self.id]
        # BEP 42 §Enforcement: "Non-compliant nodes also must not be considered to have sent a
        # valid response when checking the termination condition of a lookup."
        if pending.purpose == _BOOTSTRAP:
            lookup.address_answered(node_id, pending.addr, nodes, r.get("token"),
                                    counted=trusted)
        elif trusted:
            lookup.responded(pending.node_id, nodes, r.get("token"))
        else:
            lookup.discounted(pending.node_id, nodes)
        if trusted:
            for peer in r.get("values") or ():
                op.peers[(str(peer.ip), peer.port)] = None
            if "v" in r:
                self._consider_item(op, r, now)
        self._advance(op, now)

    def _consider_item(self, op: _Operation, r: Container, now: float) -> None:
        """BEP 44: "the key they get back from a get request MUST be verified to hash to the
        target ID the lookup was made for, as well as verifying the signature"."""
        if r.get("k") is not None:
            if r.get("seq") is None or r.get("sig") is None:
                return
            if bep44.mutable_target(r.k, op.salt) != op.target:
                return
            if not bep44.verify(r.k, r.sig, r.seq, r.v, op.salt):
                return
            if op.item is None or r.seq > op.item.seq:
                op.item = Item(v=r.v, k=r.k, seq=r.seq, sig=r.sig, salt=op.salt, stored_at=now)
        elif op.item is None and bep44.immutable_target(r.v) == op.target:
            op.item = Item(v=r.v, stored_at=now)

    def _lookup_failed(self, op: _Operation, pending: _Pending, now: float,
                       timeout: bool = False) -> None:
        if pending.purpose == _BOOTSTRAP:
            op.lookup.address_failed()
        elif pending.node_id is not None:
            op.lookup.failed(pending.node_id, timeout=timeout)
        self._advance(op, now)

    def _lookup_finished(self, op: _Operation, now: float) -> None:
        lookup = op.lookup
        op.result = LookupCompleted(
            operation=op.id, method=op.lookup_method, target=op.target,
            nodes=tuple(Contact(id=c.id, addr=c.addr) for c in lookup.closest()),
            peers=tuple(op.peers), item=op.item, queries=lookup.queries_sent, hops=lookup.hops)
        if op.store is None:
            self._operations.pop(op.id, None)
            if not op.internal:
                self._events.append(op.result)
            return
        for candidate in lookup.closest():
            if candidate.token is None:
                continue
            args = dict(op.store, token=candidate.token)
            if self._query(op.method, candidate.addr, args, now, op=op, purpose=_STORE,
                           node_id=candidate.id):
                op.waiting += 1
        self._store_progress(op, sent=True)

    def _store_progress(self, op: _Operation, sent: bool = False) -> None:
        if not sent:
            op.waiting -= 1
        if op.waiting <= 0 and self._operations.pop(op.id, None) is not None:
            self._events.append(StoreCompleted(operation=op.id, method=op.method, target=op.target,
                                          stored=op.stored, errors=tuple(op.errors),
                                          lookup=op.result))

    # ---- internals: maintenance ----------------------------------------------------------------

    def _maintain(self, now: float) -> None:
        """BEP 5: ping questionable nodes, refresh buckets unchanged for 15 minutes."""
        asked = {p.addr for p in self._pending.values()}
        for entry in self.table.questionable(now)[:PINGS_PER_ROUND]:
            if entry.addr not in asked:
                self._query("ping", entry.addr, {}, now, op=None, purpose=_VERIFY,
                            node_id=entry.id)
        for bucket in self.table.stale_buckets(now)[:2]:
            bucket.last_changed = now
            self._start_lookup("find_node", bucket.random_id(self.rng), now, internal=True)
        self.items.expire(now)
        self.limiter.expire(now)


_HANDLERS = {
    "ping": Node._answer_ping,
    "find_node": Node._answer_find_node,
    "get_peers": Node._answer_get_peers,
    "announce_peer": Node._answer_announce_peer,
    "get": Node._answer_get,
    "put": Node._answer_put,
    "sample_infohashes": Node._answer_sample_infohashes,
}

