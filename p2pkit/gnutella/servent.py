"""A sans-I/O Gnutella 0.6 servent: ultrapeer or leaf, handshakes, routing, QRP, Bye.

Specs: handshaking_0.6 §3 (three-leg handshake), ultra-peers § (X-Ultrapeer; a leaf keeps
connections to ultrapeers only and is "shielded"; an ultrapeer refuses what it has no slot for
with 503), ping-pong § (pong caching: an ultrapeer answers pings from its cache instead of
broadcasting them), the Gnutella 0.4 routing rules restated there (a descriptor's TTL is
decremented and hops incremented at each hop; a descriptor whose GUID was seen is dropped;
pongs, query hits and pushes travel back along the path their ping, query or hit came by), QRP
and ultrapeer_qrp § (leaves send route tables; an ultrapeer forwards a query to a leaf only when
the leaf's table matches), bye §3-§4 (TTL=1, hops=0; the receiver closes), HUGE §3 (queries by
``urn:sha1:``).

The core never touches a socket or a clock: a driver calls :meth:`Servent.connect` /
:meth:`Servent.accept`, feeds bytes with :meth:`Servent.receive_data` (``b""`` is EOF) and the
current time, sends what :meth:`Servent.data_to_send` returns, and reads events from
:meth:`Servent.next_event`. Randomness (GUIDs) comes from an injected ``random.Random``.

>>> import random
>>> up = Servent(role="ultrapeer", rng=random.Random(1))
>>> leaf = Servent(role="leaf", rng=random.Random(2),
...                shared=[SharedFile(index=1, name="alpha_notes.txt", size=10, sha1=bytes(20))])
>>> pair = [(leaf, "up", up, "leaf")]
>>> leaf.connect("up", now=0.0); up.accept("leaf", now=0.0)
>>> pump(pair) > 0
True
>>> [type(e).__name__ for e in drain(up)]
['ConnectionEstablished']
>>> guid = up.query("alpha", now=1.0)
>>> _ = pump(pair)
>>> hits = [e for e in drain(up) if isinstance(e, QueryHitReceived)]
>>> [r.file_name for r in hits[0].descriptor.results]
['alpha_notes.txt']
"""

from __future__ import annotations

import base64
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from construct import Container

from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, ProtocolError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.ggep import FILE_SEPARATOR, extension
from p2pkit.gnutella.handshake import Handshake, Headers
from p2pkit.gnutella.qrp import RouteTable, RouteTableReceiver, keywords
from p2pkit.gnutella.stream import HandshakeFrame, StreamReader

__all__ = [
    "CONNECTION_TRANSITIONS",
    "ConnectionClosed",
    "ConnectionEstablished",
    "ConnectionRefused",
    "HARD_TTL_LIMIT",
    "MAX_ROUTES",
    "MAX_TTL",
    "NEED_DATA",
    "PushReceived",
    "QueryHitReceived",
    "Servent",
    "SharedFile",
    "drain",
    "pump",
]

#: Queries and pings are trimmed so that ``ttl + hops`` stays within this (gtk-gnutella
#: advertises ``X-Max-TTL: 4``; the classic network used 7).
MAX_TTL = 7
#: bye §2 code 403: "relay messages deemed excessively long-lived [hop+TTL > max]": beyond
#: this the connection is dropped with a Bye.
HARD_TTL_LIMIT = 16
#: Bound on the routing table (GUID -> connection); the oldest entries go first.
MAX_ROUTES = 10_000
#: Bound on cached pongs (ping-pong §: "pong caching").
MAX_CACHED_PONGS = 30
#: Pongs returned for one ping from the cache.
PONGS_PER_PING = 10
#: More pings than this from one connection within PING_WINDOW seconds is a flood (bye 4xx).
MAX_PINGS_PER_WINDOW = 20
PING_WINDOW = 10.0
#: Slots an ultrapeer offers (ultra-peers §: refusals say "503" when full).
MAX_LEAVES = 30
MAX_ULTRAPEERS = 32
USER_AGENT = "p2pkit/0.1"
VENDOR_CODE = "P2PK"

#: Connection states as data (h11's ``_state.py`` shape): state -> event -> next state.
CONNECTION_TRANSITIONS: dict[str, dict[str, str]] = {
    "connecting": {"response_ok": "established", "response_refused": "closed", "eof": "closed"},
    "accepting": {"connect": "awaiting_final", "eof": "closed"},
    "awaiting_final": {"final_ok": "established", "final_refused": "closed", "eof": "closed"},
    "established": {"bye": "closed", "eof": "closed", "error": "closed", "close": "closed"},
    "closed": {},
}


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


#: :meth:`Servent.next_event` returns this when no event is pending.
NEED_DATA = _NeedData()


@dataclass(frozen=True, kw_only=True)
class SharedFile:
    """A file a servent shares: its index (``/get/<index>/<name>``), name, size and SHA-1."""

    index: int
    name: str
    size: int
    sha1: bytes

    def __post_init__(self) -> None:
        # HUGE §3: "urn:sha1:[32-character-SHA1]" is the base32 of a 20-byte SHA-1.
        if len(self.sha1) != 20:
            raise LocalProtocolError("sha1 must be 20 bytes")

    @property
    def urn(self) -> str:
        return "urn:sha1:" + base64.b32encode(self.sha1).decode("ascii")


@dataclass(frozen=True, kw_only=True)
class ConnectionEstablished:
    conn_id: Any
    peer_is_ultrapeer: bool
    headers: Headers


@dataclass(frozen=True, kw_only=True)
class ConnectionRefused:
    conn_id: Any
    status_code: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class ConnectionClosed:
    """The connection ended; ``code``/``reason`` from a Bye (either side) or the error."""

    conn_id: Any
    code: int
    reason: str
    by_peer: bool


@dataclass(frozen=True, kw_only=True)
class QueryHitReceived:
    """A hit for one of our own queries (``query_guid``)."""

    conn_id: Any
    query_guid: bytes
    descriptor: Any


@dataclass(frozen=True, kw_only=True)
class PushReceived:
    """A Push addressed to us: connect out to ``descriptor.ip_address:port`` and send GIV."""

    conn_id: Any
    descriptor: Any


@dataclass
class _Connection:
    conn_id: Any
    state: str
    outgoing: bool
    reader: StreamReader = field(default_factory=StreamReader)
    peer_is_ultrapeer: bool = False
    headers: Headers = field(default_factory=Headers)
    route_table: RouteTableReceiver = field(default_factory=RouteTableReceiver)
    pings: deque = field(default_factory=deque)
    remote_ip: str | None = None

    def move(self, event: str) -> None:
        target = CONNECTION_TRANSITIONS[self.state].get(event)
        if target is None:
            raise ProtocolError(f"{event!r} in state {self.state!r}")
        self.state = target


class _Routes:
    """GUID -> connection, bounded: the oldest entries are forgotten first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._routes: OrderedDict[bytes, Any] = OrderedDict()

    def add(self, guid: bytes, conn_id: Any) -> bool:
        """Remember ``guid``; False if it was already known (a duplicate)."""
        if guid in self._routes:
            return False
        self._routes[guid] = conn_id
        if len(self._routes) > self.limit:
            self._routes.popitem(last=False)
        return True

    def get(self, guid: bytes) -> Any:
        return self._routes.get(guid)

    def __len__(self) -> int:
        return len(self._routes)

    def forget_connection(self, conn_id: Any) -> None:
        for guid in [g for g, c in self._routes.items() if c == conn_id]:
            del self._routes[guid]


_LOCAL = object()  # route target: this servent originated the descriptor


class Servent:
    """One Gnutella servent's protocol logic over any number of connections."""

    def __init__(self, *, role: str = "leaf", rng: random.Random | None = None,
                 shared: Iterable[SharedFile] = (), guid: bytes | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 6346), max_ttl: int = MAX_TTL,
                 max_routes: int = MAX_ROUTES, firewalled: bool = False, qrp: bool = True,
                 qrp_table_length: int = 1 << 16) -> None:
        if role not in ("leaf", "ultrapeer"):
            raise LocalProtocolError(f"role must be 'leaf' or 'ultrapeer', not {role!r}")
        self.role = role
        self.rng = rng or random.Random()
        self.guid = guid or self._new_guid()
        self.listen = listen
        self.max_ttl = max_ttl
        self.firewalled = firewalled
        #: False: an ultrapeer sends every query to every leaf (what QRP saves, measured).
        self.qrp = qrp
        self.qrp_table_length = qrp_table_length
        self._qrp_messages: list[Container] | None = None
        self.shared = list(shared)
        self.connections: dict[Any, _Connection] = {}
        self.routes = _Routes(max_routes)  # ping and query GUIDs -> where they came from
        self.push_routes = _Routes(max_routes)  # servent GUIDs (from hits) -> connection
        self.pong_cache: deque = deque(maxlen=MAX_CACHED_PONGS)
        #: Descriptors sent and received, by type (the simulator's measure).
        self.sent: Counter = Counter()
        self.received: Counter = Counter()
        self._events: deque = deque()
        self._outgoing: dict[Any, bytearray] = {}
        self._by_sha1 = {f.sha1: f for f in self.shared}

    # --- driver API -------------------------------------------------------------------------

    @property
    def is_ultrapeer(self) -> bool:
        return self.role == "ultrapeer"

    def connect(self, conn_id: Any, *, now: float, remote_ip: str | None = None) -> None:
        """We opened ``conn_id``: send ``GNUTELLA CONNECT/0.6`` and our headers.

        ``remote_ip`` (the address the driver dialled) goes out as ``Remote-IP``, as
        gtk-gnutella does, so that the peer learns its public address.
        """
        self._new_connection(conn_id, "connecting", outgoing=True, remote_ip=remote_ip)
        self._write_handshake(conn_id, dict(kind="connect", version="0.6",
                                            headers=self._headers(remote_ip)))

    def accept(self, conn_id: Any, *, now: float, remote_ip: str | None = None) -> None:
        """``conn_id`` connected to us (from ``remote_ip``): wait for its ``GNUTELLA CONNECT``."""
        self._new_connection(conn_id, "accepting", outgoing=False, remote_ip=remote_ip)

    def receive_data(self, conn_id: Any, data: bytes, *, now: float) -> None:
        """Bytes from ``conn_id`` (``b""``: the peer closed)."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.state == "closed":
            return
        if not data:
            self._closed(conn, 0, "connection closed", by_peer=True, event="eof")
            return
        try:
            frames = conn.reader.feed(data)
        except LimitExceeded as e:
            self._bye(conn, 400, f"Too big: {e.reason}")
            return
        except ParseError as e:
            self._bye(conn, 501, f"Protocol desynchronization: {e.reason}")
            return
        for frame in frames:
            if conn.state == "closed":
                return
            try:
                if isinstance(frame, HandshakeFrame):
                    self._on_handshake(conn, frame.handshake, now)
                else:
                    self._on_descriptor(conn, frame.descriptor, now)
            except ProtocolError as e:
                self._bye(conn, 400, f"Protocol error: {e}")
                return
        if conn.state == "established" and conn.reader.state != "descriptors":
            self._bye(conn, 501, "Unsupported link encoding")

    def data_to_send(self) -> list[tuple[Any, bytes]]:
        """Bytes to write, per connection, in order; drains the queue."""
        out = [(conn_id, bytes(buf)) for conn_id, buf in self._outgoing.items() if buf]
        self._outgoing = {k: bytearray() for k in self._outgoing
                          if k in self.connections and self.connections[k].state != "closed"}
        return out

    def next_event(self) -> Any:
        """The next event, or :data:`NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    def close(self, conn_id: Any, *, code: int = 201, reason: str = "User manual removal") -> None:
        """Say Bye (bye §3: "the last thing on the network") and close ``conn_id``."""
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state != "closed":
            self._bye(conn, code, reason, by_peer=False)

    def query(self, text: str, *, now: float, ttl: int | None = None,
              urn: str | None = None) -> bytes:
        """Send a query to every established connection; return its GUID.

        A leaf sends it to its ultrapeers (which route it); an ultrapeer floods it to its
        ultrapeers and to the leaves whose QRP table matches.
        """
        guid = self._new_guid()
        ttl = self.max_ttl if ttl is None else ttl
        if not 1 <= ttl <= self.max_ttl:
            raise LocalProtocolError(f"ttl {ttl} outside 1..{self.max_ttl}")
        extensions = []
        if urn is not None:
            extensions.append(Container(kind="urn", text=urn, separator=None))
        query = Container(guid=guid, type="query", ttl=ttl, hops=0,
                          min_speed=dict(mark=True, ggep_h=True), search_criteria=text,
                          extensions=extensions)
        self.routes.add(guid, _LOCAL)
        for conn in self._established():
            if conn.peer_is_ultrapeer or self._leaf_wants(conn, query):
                self._send(conn, query)
        return guid

    def ping(self, *, now: float, ttl: int = 1) -> bytes:
        """Ping every established connection (ping-pong §: TTL 1 is a keep-alive probe)."""
        guid = self._new_guid()
        self.routes.add(guid, _LOCAL)
        ping = Container(guid=guid, type="ping", ttl=ttl, hops=0, extensions=[])
        for conn in self._established():
            self._send(conn, ping)
        return guid

    def push(self, servent_id: bytes, file_index: int, *, now: float) -> bool:
        """Ask the firewalled servent ``servent_id`` to connect to us (route of its hit)."""
        conn_id = self.push_routes.get(servent_id)
        conn = self.connections.get(conn_id)
        if conn is None or conn.state != "established":
            return False
        self._send(conn, Container(guid=self._new_guid(), type="push", ttl=self.max_ttl,
                                   hops=0, servent_id=servent_id, file_index=file_index,
                                   ip_address=self.listen[0], port=self.listen[1],
                                   extensions=[]))
        return True

    # --- handshake --------------------------------------------------------------------------

    def _headers(self, remote_ip: str | None = None, *, refusal: bool = False) -> Headers:
        """Our handshake headers: the names and order gtk-gnutella 1.2.3 uses, minus what this
        servent does not implement (vendor messages, HSEP, dynamic querying, deflate)."""
        items = [("Listen-IP", f"{self.listen[0]}:{self.listen[1]}")]
        if remote_ip:
            items.append(("Remote-IP", remote_ip))
        items.append(("User-Agent", USER_AGENT))
        if not refusal:
            items += [("Pong-Caching", "0.1"), ("Bye-Packet", "0.1"), ("GGEP", "0.5"),
                      ("GUID", self.guid.hex()), ("X-Query-Routing", "0.1")]
        items.append(("X-Ultrapeer", "True" if self.is_ultrapeer else "False"))
        if not refusal:
            if self.is_ultrapeer:
                items.append(("X-Ultrapeer-Needed", "False"))
            items.append(("X-Max-TTL", str(self.max_ttl)))
        return Headers(items)

    def _on_handshake(self, conn: _Connection, block: Any, now: float) -> None:
        if block.kind == "connect":
            conn.move("connect")
            conn.headers = block.headers
            conn.peer_is_ultrapeer = _true(block.headers.get("X-Ultrapeer"))
            refusal = self._refusal(conn)
            if refusal is not None:
                self._write_handshake(conn.conn_id, dict(
                    kind="response", version="0.6", status_code=503, reason=refusal,
                    headers=self._headers(conn.remote_ip, refusal=True)))
                self._closed(conn, 503, refusal, by_peer=False, event="final_refused")
                return
            self._write_handshake(conn.conn_id, dict(kind="response", version="0.6",
                                                     status_code=200, reason="OK",
                                                     headers=self._headers(conn.remote_ip)))
        elif block.kind == "response" and conn.state == "connecting":
            if block.status_code != 200:
                conn.move("response_refused")
                self._events.append(ConnectionRefused(conn_id=conn.conn_id,
                                                      status_code=block.status_code,
                                                      reason=block.reason or ""))
                self._forget(conn)
                return
            conn.headers = block.headers
            conn.peer_is_ultrapeer = _true(block.headers.get("X-Ultrapeer"))
            if not self.is_ultrapeer and not conn.peer_is_ultrapeer:
                self._write_handshake(conn.conn_id, dict(kind="response", version="0.6",
                                                         status_code=503,
                                                         reason="Shielded leaf node",
                                                         headers=Headers()))
                self._closed(conn, 503, "leaf to leaf", by_peer=False, event="response_refused")
                return
            self._write_handshake(conn.conn_id, dict(kind="response", version="0.6",
                                                     status_code=200, reason="OK",
                                                     headers=Headers()))
            conn.move("response_ok")
            self._established_now(conn)
        elif block.kind == "response" and conn.state == "awaiting_final":
            if block.status_code != 200:
                self._closed(conn, block.status_code, block.reason or "", by_peer=True,
                             event="final_refused")
                return
            conn.move("final_ok")
            self._established_now(conn)
        else:
            raise ProtocolError(f"unexpected {block.kind} handshake in state {conn.state}")

    def _refusal(self, conn: _Connection) -> str | None:
        """ultra-peers §: why we refuse an incoming connection, or None."""
        if not self.is_ultrapeer:
            return "Shielded leaf node"
        peers = [c for c in self._established() if c is not conn]
        if conn.peer_is_ultrapeer and sum(c.peer_is_ultrapeer for c in peers) >= MAX_ULTRAPEERS:
            return "Too many ultrapeer connections"
        if not conn.peer_is_ultrapeer and \
                sum(not c.peer_is_ultrapeer for c in peers) >= MAX_LEAVES:
            return "Too many leaf connections"
        return None

    def _established_now(self, conn: _Connection) -> None:
        self._events.append(ConnectionEstablished(conn_id=conn.conn_id,
                                                  peer_is_ultrapeer=conn.peer_is_ultrapeer,
                                                  headers=conn.headers))
        if not self.is_ultrapeer and conn.peer_is_ultrapeer:
            # QRP: a leaf sends its route table, RESET then PATCH, TTL 1, hops 0.
            for message in self._route_table_messages():
                self._send(conn, Container(guid=self._new_guid(), type="route_table_update",
                                           ttl=1, hops=0, **message))

    def _route_table_messages(self) -> list[Container]:
        if self._qrp_messages is None:
            # LimeWire and gtk-gnutella also put each file's URN in the table.
            words = [w for f in self.shared for w in keywords(f.name) + [f.urn]]
            table = RouteTable.from_keywords(words, table_length=self.qrp_table_length)
            self._qrp_messages = table.update_messages()
        return self._qrp_messages

    # --- descriptors ------------------------------------------------------------------------

    def _on_descriptor(self, conn: _Connection, d: Any, now: float) -> None:
        if conn.state != "established":
            raise ProtocolError(f"descriptor in state {conn.state}")
        self.received[d.type] += 1
        if d.type == "bye":
            # bye §4: "Upon reading a Bye packet, a node should immediately close".
            self._closed(conn, d.code, d.message, by_peer=True, event="bye")
            return
        if d.ttl + d.hops > HARD_TTL_LIMIT:
            self._bye(conn, 403, "Excessively long-lived message (hops+TTL)")
            return
        handler = getattr(self, f"_on_{d.type}", None)
        if handler is not None:
            handler(conn, d, now)

    def _on_ping(self, conn: _Connection, d: Any, now: float) -> None:
        conn.pings.append(now)
        while conn.pings and conn.pings[0] < now - PING_WINDOW:
            conn.pings.popleft()
        if len(conn.pings) > MAX_PINGS_PER_WINDOW:
            self._bye(conn, 401, "Too many pings")
            return
        if not self.routes.add(d.guid, conn.conn_id):
            return  # duplicate
        pongs = [self._own_pong(d)]
        if d.ttl > 1:
            # ping-pong §: answer from the pong cache rather than broadcasting the ping.
            # ... leaving out pongs that came from the pinging connection itself.
            pongs += [p for source, p in list(self.pong_cache)[-PONGS_PER_PING:]
                      if source != conn.conn_id]
        for pong in pongs:
            self._send(conn, Container(pong, guid=d.guid, ttl=max(1, d.hops + 1), hops=0))

    def _own_pong(self, ping: Any) -> Container:
        ggep = [extension("VC", value=dict(vendor=VENDOR_CODE, version=1))]
        if self.is_ultrapeer:
            ggep.append(extension("UP", value=dict(version=1, leaf_slots=MAX_LEAVES,
                                                   ultrapeer_slots=MAX_ULTRAPEERS)))
        return Container(guid=ping.guid, type="pong", ttl=1, hops=0, port=self.listen[1],
                         ip_address=self.listen[0], files_shared=len(self.shared),
                         kilobytes_shared=sum(f.size for f in self.shared) // 1024,
                         extensions=[Container(kind="ggep", extensions=ggep, separator=None)])

    def _on_pong(self, conn: _Connection, d: Any, now: float) -> None:
        self.pong_cache.append((conn.conn_id, d))
        target = self.routes.get(d.guid)
        if target is not None and target is not _LOCAL:
            self._forward(target, d)

    def _on_query(self, conn: _Connection, d: Any, now: float) -> None:
        if not self.routes.add(d.guid, conn.conn_id):
            return  # duplicate GUID: dropped
        if d.ttl + d.hops > self.max_ttl:
            d.ttl = max(0, self.max_ttl - d.hops)  # trim to our horizon
        self._answer(conn, d)
        if not self.is_ultrapeer or d.ttl < 1:
            return
        forwarded = Container(d, ttl=d.ttl - 1, hops=d.hops + 1)
        for other in self._established():
            if other is conn:
                continue
            if other.peer_is_ultrapeer:
                if forwarded.ttl >= 1:
                    self._send(other, forwarded)
            elif self._leaf_wants(other, d):
                # ultrapeer_qrp §2.4: "if an Ultrapeer receives a query with TTL=1, the
                # Ultrapeer then decrements the TTL to 0, but still forwards that query to its
                # leaves" (only those "with hits in their routing tables").
                self._send(other, forwarded)

    def _leaf_wants(self, conn: _Connection, query: Any) -> bool:
        """ultrapeer_qrp §: a query goes to a leaf only when its route table matches."""
        if conn.peer_is_ultrapeer:
            return False
        if not self.qrp:
            return True
        urns = _urns(query)
        if urns:
            return any(conn.route_table.contains(u) for u in urns)
        return conn.route_table.matches(query.search_criteria)

    def _on_query_hit(self, conn: _Connection, d: Any, now: float) -> None:
        self.push_routes.add(d.trailer.servent_id, conn.conn_id)
        target = self.routes.get(d.guid)
        if target is _LOCAL:
            self._events.append(QueryHitReceived(conn_id=conn.conn_id, query_guid=d.guid,
                                                 descriptor=d))
        elif target is not None:
            self._forward(target, d)  # reverse path only; unknown GUIDs are dropped

    def _on_push(self, conn: _Connection, d: Any, now: float) -> None:
        if d.servent_id == self.guid:
            self._events.append(PushReceived(conn_id=conn.conn_id, descriptor=d))
            return
        target = self.push_routes.get(d.servent_id)
        if target is not None and target != conn.conn_id:
            self._forward(target, d)

    def _on_route_table_update(self, conn: _Connection, d: Any, now: float) -> None:
        if self.is_ultrapeer and not conn.peer_is_ultrapeer:
            conn.route_table.receive(d)

    def _forward(self, conn_id: Any, d: Any) -> None:
        conn = self.connections.get(conn_id)
        if conn is None or conn.state != "established" or d.ttl <= 1:
            return
        self._send(conn, Container(d, ttl=d.ttl - 1, hops=d.hops + 1))

    def _answer(self, conn: _Connection, query: Any) -> None:
        """HUGE §3 and the 0.4 rules: a QueryHit for the files matching every keyword or urn."""
        if self.firewalled and query.min_speed.mark and query.min_speed.firewalled:
            return  # min_speed §: "refrain from returning any results"
        matches = self.matching(query.search_criteria, _urns(query))
        if not matches:
            return
        results = [Container(file_index=f.index, file_size=f.size, file_name=f.name,
                             extensions=self._result_extensions(f, query))
                   for f in matches[:255]]
        hit = Container(guid=query.guid, type="query_hit", ttl=query.hops + 1, hops=0,
                        port=self.listen[1], ip_address=self.listen[0], speed=1000,
                        results=results,
                        trailer=Container(vendor_code=VENDOR_CODE,
                                          open_data=bytes([0x1C | int(self.firewalled), 0x1D]),
                                          private_data=b"", private_extensions=None, xml=None,
                                          servent_id=self.guid))
        self._send(conn, hit)

    @staticmethod
    def _result_extensions(f: SharedFile, query: Any) -> list[Container]:
        """HUGE §3's urn:sha1 text, and GGEP "H" (the binary SHA-1) when the query's flags ask
        for it (min_speed §: "GGEP H allowed"), as gtk-gnutella answers."""
        out = [Container(kind="urn", text=f.urn, separator=None)]
        if query.min_speed.mark and query.min_speed.ggep_h:
            out[0].separator = FILE_SEPARATOR  # HUGE §3: 0x1C between a urn and GGEP
            # GGEP §COBS: a result's block ends at NUL, so a payload holding 0x00 is encoded
            payload = bytes([1]) + f.sha1  # GGEP "H": 0x01 (SHA-1), then the digest
            out.append(Container(kind="ggep", separator=None, extensions=[
                extension("H", payload, cobs=0 in payload)]))
        return out

    def matching(self, criteria: str, urns: Iterable[str] = ()) -> list[SharedFile]:
        """Shared files matching every keyword of ``criteria``, or any of ``urns``."""
        out = []
        wanted = set(keywords(criteria))
        for urn in urns:
            if urn.lower().startswith("urn:sha1:"):
                try:
                    sha1 = base64.b32decode(urn[9:].upper())
                except ValueError:
                    continue
                if sha1 in self._by_sha1:
                    out.append(self._by_sha1[sha1])
        if wanted and not out:
            out = [f for f in self.shared if wanted <= set(keywords(f.name))]
        return out

    # --- plumbing ---------------------------------------------------------------------------

    def _new_guid(self) -> bytes:
        guid = bytearray(self.rng.getrandbits(8) for _ in range(16))
        guid[8], guid[15] = 0xFF, 0x00  # the 0.6 convention: byte 8 all ones, byte 15 zero
        return bytes(guid)

    def _new_connection(self, conn_id: Any, state: str, *, outgoing: bool,
                        remote_ip: str | None) -> None:
        if conn_id in self.connections and self.connections[conn_id].state != "closed":
            raise LocalProtocolError(f"connection {conn_id!r} already open")
        self.connections[conn_id] = _Connection(conn_id=conn_id, state=state, outgoing=outgoing,
                                                remote_ip=remote_ip)
        self._outgoing[conn_id] = bytearray()

    def _established(self) -> list[_Connection]:
        return [c for c in self.connections.values() if c.state == "established"]

    def _write_handshake(self, conn_id: Any, block: dict) -> None:
        self._outgoing.setdefault(conn_id, bytearray()).extend(Handshake.build(block))

    def _send(self, conn: _Connection, d: Any) -> None:
        self._outgoing.setdefault(conn.conn_id, bytearray()).extend(Descriptor.build(d))
        self.sent[d["type"]] += 1

    def _bye(self, conn: _Connection, code: int, reason: str, *, by_peer: bool = False) -> None:
        if conn.state == "established":
            # bye §3: "A Bye packet must be sent with TTL=1 [...] and hop=0".
            self._send(conn, Container(guid=self._new_guid(), type="bye", ttl=1, hops=0,
                                       code=code, message=f"{reason}\r\nServer: {USER_AGENT}"
                                       "\r\n\r\n"))
        self._closed(conn, code, reason, by_peer=by_peer, event="close")

    def _closed(self, conn: _Connection, code: int, reason: str, *, by_peer: bool,
                event: str) -> None:
        if event in CONNECTION_TRANSITIONS[conn.state]:
            conn.move(event)
        conn.state = "closed"
        self._events.append(ConnectionClosed(conn_id=conn.conn_id, code=code, reason=reason,
                                             by_peer=by_peer))
        self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        conn.state = "closed"
        self.routes.forget_connection(conn.conn_id)
        self.push_routes.forget_connection(conn.conn_id)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _urns(query: Any) -> list[str]:
    return [p.text for p in query.get("extensions") or () if p.kind == "urn"]


def pump(pairs: list[tuple[Servent, Any, Servent, Any]], *, now: float = 0.0,
         rounds: int = 50) -> int:
    """Move bytes between connected in-memory servents until all are quiet.

    ``pairs`` holds ``(a, a_conn_id, b, b_conn_id)``: ``a`` reaches ``b`` through its
    connection ``a_conn_id`` and ``b`` sees it as ``b_conn_id``. Returns the bytes moved.
    """
    links: dict[tuple[int, Any], tuple[Servent, Any]] = {}
    for a, a_id, b, b_id in pairs:
        links[(id(a), a_id)] = (b, b_id)
        links[(id(b), b_id)] = (a, a_id)
    servents = {id(s): s for a, _, b, _ in pairs for s in (a, b)}
    moved = 0
    for _ in range(rounds):
        batch = [(s, conn_id, data) for s in servents.values()
                 for conn_id, data in s.data_to_send()]
        if not batch:
            break
        for s, conn_id, data in batch:
            target = links.get((id(s), conn_id))
            if target is not None:
                moved += len(data)
                target[0].receive_data(target[1], data, now=now)
    return moved


def drain(servent: Servent) -> list[Any]:
    """Every pending event of ``servent``."""
    events = []
    while (event := servent.next_event()) is not NEED_DATA:
        events.append(event)
    return events
