"""A sans-I/O Gnutella 0.6 servent: ultrapeer or leaf, handshakes, routing, QRP, Bye, timers.

Specs: handshaking_0.6 §3 (three-leg handshake), ultra-peers § (X-Ultrapeer; a leaf keeps
connections to ultrapeers only and is "shielded"; an ultrapeer refuses what it has no slot for
with 503), ping-pong § (pong caching: an ultrapeer answers pings from its cache instead of
broadcasting them), the Gnutella 0.4 routing rules restated there (a descriptor's TTL is
decremented and hops incremented at each hop; a descriptor whose GUID was seen is dropped;
pongs, query hits and pushes travel back along the path their ping, query or hit came by), QRP
and ultrapeer_qrp § (leaves send route tables; an ultrapeer forwards a query to a leaf only when
the leaf's table matches), bye §3-§4 and Appendix 2 (TTL=1, hops=0; the receiver closes; the
sender may defer its close for "some time"), HUGE §3 (queries by ``urn:sha1:``).

The shape (DESIGN.md, :mod:`p2pkit.core`): each connection is a :class:`Connection`, a
:class:`~p2pkit.core.StreamCore` that :meth:`Servent.connect` and :meth:`Servent.accept` return.
A driver feeds it ``conn.receive_data(data, now)`` (``b""`` is EOF), writes
``conn.data_to_send()``, reads ``conn.next_event()`` and keeps its timer (``conn.get_timer()``,
``conn.handle_timer(now)``). The :class:`Servent` is the router between its connections: a
descriptor read on one connection may queue bytes on others (a forwarded query, a pong routed
back), so after feeding one connection a driver writes what
:meth:`Servent.connections_with_data` lists. Events stay on the connection they happened on
(a hit for our query, a Push for us, a close): a servent has no events of its own, and
:meth:`Servent.get_timer`/:meth:`Servent.handle_timer` only gather the connections' timers for
drivers that keep one timer for all. Servent-wide operations (:meth:`Servent.query`,
:meth:`Servent.ping`, :meth:`Servent.push`) take ``now`` like everything else. Randomness
(GUIDs) comes from an injected ``random.Random``; the core never reads a clock.

Timers, per connection (constants below): :data:`HANDSHAKE_TIMEOUT` (a peer that does not
finish its handshake loses the connection and its slot), :data:`PING_INTERVAL` (a TTL 1 ping on
every established connection, to keep it alive and the pong cache fresh),
:data:`IDLE_TIMEOUT` (nothing received for that long: Bye 405) and :data:`BYE_LINGER` (after our
Bye, the close is forced).

Two servents over :class:`~p2pkit.core.StreamPair` (the in-memory transport):

>>> import random
>>> from p2pkit.core import StreamPair
>>> up = Servent(role="ultrapeer", rng=random.Random(1))
>>> leaf = Servent(role="leaf", rng=random.Random(2),
...                shared=[SharedFile(index=1, name="alpha_notes.txt", size=10, sha1=bytes(20))])
>>> pair = StreamPair(leaf.connect("up", 0.0), up.accept("leaf", 0.0))
>>> pair.write(0, pair.ends[0].data_to_send())  # GNUTELLA CONNECT/0.6
>>> leaf_events, up_events = pair.run()
>>> [type(e).__name__ for e in up_events], pair.ends[1].state
(['ConnectionEstablished'], 'ESTABLISHED')
>>> guid = up.query("alpha", 1.0)
>>> pair.write(1, pair.ends[1].data_to_send())
>>> _, [hit] = pair.run()
>>> type(hit).__name__, [r.file_name for r in hit.descriptor.results]
('QueryHit', ['alpha_notes.txt'])
>>> pair.ends[1].get_timer()  # the first keep-alive ping, PING_INTERVAL after the handshake
30.0

It stays one module: the servent is the router between its connections (routing tables, the
pong cache, QRP tables, query hits routed back), and every handler reads that shared state;
what is not routing has its own module (``connection_state``, ``events``, ``handshake``,
``descriptors``, ``qrp``, ``http``).
"""

from __future__ import annotations

import base64
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from construct import Container

from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, ProtocolError
from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella.deflate import Deflater, InflateGuard
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.dynamic_query import LEAF_RESULTS, OWN_RESULTS, Candidate, DynamicQuery
from p2pkit.gnutella.dynamic_query import MAX_TTL as DQ_MAX_TTL
from p2pkit.gnutella.events import (
    Bye,
    ConnectBackRequested,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionRefused,
    Push,
    QueryHit,
)
from p2pkit.gnutella.ggep import FILE_SEPARATOR, extension
from p2pkit.gnutella.handshake import Handshake
from p2pkit.gnutella.hsep import HSEP_VERSION, HsepTable
from p2pkit.gnutella.qrp import RouteTable, RouteTableReceiver, keywords
from p2pkit.gnutella.stream import DESCRIPTORS, FAILED, TLS, HandshakeFrame, StreamReader
from p2pkit.gnutella.tls import TLS_TOKEN, TlsLayer
from p2pkit.gnutella.udp import UdpEndpoint, oob_address, oob_guid, without_ggep
from p2pkit.gnutella.vendor import QUERY_STATUS_STOP
from p2pkit.http1 import Headers

__all__ = [
    "BYE_LINGER",
    "HANDSHAKE_TIMEOUT",
    "HARD_TTL_LIMIT",
    "IDLE_TIMEOUT",
    "MAX_CONNECTIONS_PER_ADDRESS",
    "MAX_HANDSHAKES",
    "MAX_ROUTES",
    "ROUTE_LIFETIME",
    "MAX_OWN_PINGS",
    "MAX_TTL",
    "OWN_PING_LIFETIME",
    "PING_INTERVAL",
    "Connection",
    "Servent",
    "SharedFile",
]

#: Queries and pings are trimmed so that ``ttl + hops`` stays within this (gtk-gnutella
#: advertises ``X-Max-TTL: 4``; the classic network used 7).
MAX_TTL = 7
#: bye §2 code 403: "relay messages deemed excessively long-lived [hop+TTL > max]": beyond
#: this the connection is dropped with a Bye.
HARD_TTL_LIMIT = 16
#: Bound on the routing table (GUID -> connection); the oldest entries go first.
MAX_ROUTES = 10_000
#: Seconds a route is kept: pongs and hits come back within seconds, so after this a route
#: only holds memory (and a closed connection's routes go at once anyway).
ROUTE_LIFETIME = 600.0
#: Our own pings remembered at once (a pong to one is ours, not to be forwarded; the ping itself,
#: should it come back, is a duplicate), and for how long: pongs come back within seconds. Apart
#: from the routes, so that the discovery ping of every connection a hostile churn completes
#: does not stay ROUTE_LIFETIME in the routing table (issue 13).
MAX_OWN_PINGS = 256
OWN_PING_LIFETIME = 30.0
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
#: Incoming connections still in their handshake at once; one more makes :meth:`Servent.accept`
#: close the idlest of them (as real clients evict the idlest unauthenticated connection). As
#: many as there are slots: with ``HANDSHAKE_TIMEOUT``, peers that connect and stay silent hold
#: at most this many sockets, each for at most that long, and never keep a real peer out.
MAX_HANDSHAKES = MAX_LEAVES + MAX_ULTRAPEERS
#: Incoming connections from one IP address at once (handshaking or established). One more
#: closes that address's idlest handshake, or is refused (``LimitExceeded``) when all of them
#: are established: one host cannot take the slots of many.
MAX_CONNECTIONS_PER_ADDRESS = 4
USER_AGENT = "p2pkit/0.1"
VENDOR_CODE = "P2PK"

#: Seconds a connection may spend in its three-leg handshake (handshaking_0.6 §3) before it is
#: dropped. The legs are three small blocks, one round trip each way; a peer that stays silent
#: longer than this only holds a socket and would, many times over, hold every slot.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds between the TTL 1 pings sent on every established connection. ping-pong § refreshes
#: pong caches by pinging neighbours (every 3 s in its example) and advises pinging older
#: clients "no more than once every 30 seconds or so"; a TTL 1 ping is answered from one hop
#: (the neighbour's own pong, which refreshes our cache) and also keeps the connection alive
#: (bye §2 code 406: "failed to reply to a ping with TTL=1").
PING_INTERVAL = 30.0
#: Seconds without receiving anything before the connection is closed with Bye 405 (bye §2:
#: "the node reached its inactivity timeout"). Two and a half ping intervals: a live peer
#: answers every ping with a pong, so this only ends connections to silent peers.
IDLE_TIMEOUT = 75.0
#: vendor_msg §3: "Vendor-Message: 0.1"; 0.2 (gtk-gnutella's) also reads 0x32 messages.
VENDOR_MESSAGE_VERSION = "0.2"
#: What this servent acts on, sent as Messages Supported (vendor_msg §4: "Each item
#: describes a particular vendor-specific message supported by the servent"). Only what is
#: implemented: hops flow, TCP connect-back (the driver connects), query status request and
#: response, push-proxy request and acknowledgement; with UDP also :data:`UDP_MESSAGES`.
SUPPORTED_MESSAGES = (("BEAR", 4, 1), ("BEAR", 7, 1), ("BEAR", 11, 1), ("BEAR", 12, 1),
                      ("LIME", 21, 1), ("LIME", 22, 2))
#: With UDP (:mod:`p2pkit.gnutella.udp`): UDP connect-back, out-of-band Ack and Reply Number.
UDP_MESSAGES = (("GTKG", 7, 2), ("LIME", 11, 2), ("LIME", 12, 2))
#: An ultrapeer with UDP also proxies its leaves' queries out of band, and understands the
#: leaves' veto (out-of-band-v3 §"Ultrapeer Proxying", LIME/13v1).
OOB_PROXY_MESSAGES = (("LIME", 13, 1),)
#: Out-of-band proxied queries one leaf may have at once (the oldest is forgotten first; the
#: state goes with the leaf's connection).
MAX_OOB_PROXIED_PER_LEAF = 8
#: out-of-band-v3: the OOB version p2pkit proxies (v2); a leaf's LIME/13 byte at or above it
#: vetoes proxying.
OOB_PROXY_VERSION = 2
#: Features Supported (null/10v0): HSEP, version 1 (as gtk-gnutella says it).
SUPPORTED_FEATURES = (("HSEP", 1),)
#: HSEP §"Normal operation for ultrapeers": "Every now and then (every 30 seconds or so)".
HSEP_INTERVAL = 30.0
#: Seconds between two route tables sent to one ultrapeer when our leaves' tables changed
#: (ultrapeer_qrp §: the table towards ultrapeers is ours and our leaves').
QRP_UPDATE_INTERVAL = 30.0
#: Query GUIDs whose hit counts (ours) and status (our leaves') are remembered.
MAX_QUERY_STATUS = 1000
#: Dynamic queries one leaf may have running at once; one more ends its oldest (the state is
#: per leaf and goes with its connection).
MAX_DYNAMIC_QUERIES_PER_LEAF = 8
#: An ultrapeer's own dynamic queries running at once (the oldest ends first).
MAX_OWN_DYNAMIC_QUERIES = 16
#: dynamic_query §2.5.3.2.2: "X-Degree [...] the number of Ultrapeer connections this nodes
#: attempts to maintain"; §2.5.3.2.3 "X-Dynamic-Querying: 0.1".
DYNAMIC_QUERY_VERSION = "0.1"

#: Seconds between our Bye and the forced close (bye Appendix 2: "twice the typical round-trip
#: for an 'alive PING'", after which "a close() is forced nonetheless").
BYE_LINGER = 5.0


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


class Connection:
    """One Gnutella connection of a :class:`Servent`, sans-I/O (a :class:`StreamCore`).

    ``state`` is one of :mod:`p2pkit.gnutella.connection_state`'s states; ``conn_id`` is the
    driver's label for it, repeated in every event.
    """

    def __init__(self, servent: Servent, conn_id: Any, state: str, *, outgoing: bool,
                 remote_ip: str | None, now: float) -> None:
        self.servent = servent
        self.conn_id = conn_id
        self.state = state
        self.outgoing = outgoing
        self.remote_ip = remote_ip
        #: Limits on what the peer's deflated stream may inflate to (compression §3).
        self.inflate_guard = InflateGuard()
        self.reader = StreamReader(inflate_guard=self.inflate_guard,
                                   keep_upgraded=servent.tls)
        #: TLS on this link once both sides agreed (gnet-TLS-upgrade §2).
        self.tls: TlsLayer | None = None
        self.tls_offered = False  # we answered Upgrade: TLS/1.0 and Connection: Upgrade
        #: Our direction's compressor once our block said Content-Encoding: deflate.
        self.deflater: Deflater | None = None
        self.peer_is_ultrapeer = False
        self.headers = Headers()
        self.route_table = RouteTableReceiver()
        #: vendor_msg §4: the (vendor, selector) pairs the peer's Messages Supported listed,
        #: and the features of its Features Supported.
        self.peer_messages: set[tuple[str, int]] = set()
        self.peer_features: set[str] = set()
        #: vendor_msg §5: forward queries here only when their hops are below this.
        self.hops_flow: int | None = None
        self.connect_back_done = False
        self.udp_connect_back_done = False
        self.hsep = False  # HSEP/0.2 on both sides
        self.hsep_sent: list | None = None
        self.next_hsep = 0.0
        #: ultrapeer_qrp §: both ultrapeers said X-Ultrapeer-Query-Routing.
        self.up_qrp = False
        self.qrp_version = -1
        self.next_qrp = 0.0
        #: dynamic_query §2.2: the leaf's queries this ultrapeer runs, by GUID (oldest first).
        self.dynamic_queries: OrderedDict[bytes, tuple[DynamicQuery, Container]] = \
            OrderedDict()
        #: out-of-band-v3 §"OOB Proxy Veto": False once the leaf vetoed proxying (LIME/13v1).
        self.oob_proxy_allowed = True
        #: The leaf's queries we proxy out of band: original GUID -> the GUID we sent.
        self.oob_proxied: OrderedDict[bytes, bytes] = OrderedDict()
        self.pings: deque = deque()
        self.opened_at = now
        self.established_at = now
        self.last_received = now
        self.next_ping = 0.0
        self.closing_since = 0.0
        self._close_code = 0
        self._close_reason = ""
        self._out = bytearray()
        self._plain = bytearray()  # descriptors queued for the deflater (one batch)
        self._events: deque[Event] = deque()

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id!r} {self.state}>"

    # --- StreamCore -------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer (``b""``: it closed). Routing may queue bytes on other
        connections: see :meth:`Servent.connections_with_data`."""
        if self.state == cs.CLOSED:
            return
        if self.state == cs.CLOSING:  # we said Bye: nothing more is read (bye §3)
            if not data:
                self._end(cs.EOF, self._close_code, self._close_reason, by_peer=False)
            return
        self.last_received = now
        if not data:
            self._end(cs.EOF, 0, "connection closed", by_peer=True)
            return
        self.servent._receive(self, data, now)

    def next_event(self) -> Event | NeedData:
        """The next event of this connection, or :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    def send(self, event: Event, now: float) -> bytes:
        """Send :class:`~p2pkit.gnutella.events.Bye` (the only event an application sends on
        one connection; queries and pings go through the :class:`Servent`, which routes them).

        Returns everything queued for this connection, the Bye last (as :meth:`data_to_send`).
        Before the handshake is done no Bye can be sent: the connection is just closed.
        """
        if not isinstance(event, Bye):
            raise LocalProtocolError(f"a connection sends Bye, not {type(event).__name__}")
        if self.state not in (cs.CLOSING, cs.CLOSED):
            self.servent._bye(self, event.code, event.message, now)
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        """Bytes to write since the last call (answers, forwarded descriptors, timers).

        On a deflated link (compression §2) what was queued since the last call is one batch,
        compressed and ended with a synchronisation flush.
        """
        if self._plain:
            chunk = bytes(self._plain)
            self._plain.clear()
            if self.deflater is not None:
                chunk = self.deflater.batch(chunk)
            if self.tls is not None:  # gnet-TLS-upgrade: deflate (if any) inside TLS
                try:
                    self.tls.send(chunk)
                except LimitExceeded as e:  # held behind a TLS handshake that never ends
                    self._end(cs.TLS_FAILED, 400, e.reason, by_peer=False)
            else:
                self._out += chunk
        if self.tls is not None:
            self._out += self.tls.data_to_send()
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due: handshake timeout, next ping or idle timeout,
        or the end of the Bye linger; ``None`` once closed."""
        state = self.state
        if state == cs.ESTABLISHED:
            due = [self.next_ping, self.last_received + IDLE_TIMEOUT]
            if self.tls is not None and not self.tls.established:
                due.append(self.established_at + HANDSHAKE_TIMEOUT)
            if self.hsep:
                due.append(self.next_hsep)
            if self.up_qrp and self.qrp_version != self.servent._qrp_version:
                due.append(self.next_qrp)
            due += [q.next_at for q, _ in self.dynamic_queries.values()]
            return min(due)
        if state == cs.CLOSING:
            return self.closing_since + BYE_LINGER
        if state == cs.CLOSED:
            return None
        return self.opened_at + HANDSHAKE_TIMEOUT

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now`` (nothing when called early)."""
        state = self.state
        if state in cs.HANDSHAKE_STATES:
            if now >= self.opened_at + HANDSHAKE_TIMEOUT:
                self._end(cs.HANDSHAKE_TIMED_OUT, 405, "Handshake timeout", by_peer=False)
        elif state == cs.ESTABLISHED:
            if self.tls is not None and not self.tls.established and \
                    now >= self.established_at + HANDSHAKE_TIMEOUT:
                # a TLS handshake that does not end holds a socket and queued descriptors
                self._end(cs.TLS_FAILED, 405, "TLS handshake timeout", by_peer=False)
            elif now >= self.last_received + IDLE_TIMEOUT:
                self.servent._bye(self, 405, "Inactivity timeout", now)
            else:
                if now >= self.next_ping:
                    self.next_ping = now + PING_INTERVAL
                    self.servent._keep_alive(self, now)
                if self.hsep and now >= self.next_hsep:
                    self.next_hsep = now + HSEP_INTERVAL
                    self.servent._send_hsep(self)
                if self.up_qrp and self.qrp_version != self.servent._qrp_version \
                        and now >= self.next_qrp:
                    self.servent._send_up_table(self, now)
                if self.dynamic_queries:
                    self.servent._run_dynamic_queries(self.dynamic_queries, now)
        elif state == cs.CLOSING and now >= self.closing_since + BYE_LINGER:
            self._end(cs.LINGER_EXPIRED, self._close_code, self._close_reason, by_peer=False)

    # --- used by the servent ----------------------------------------------------------------

    def _move(self, happened: str) -> None:
        target = cs.next_state(self.state, happened)
        if target is None:
            raise ProtocolError(f"{happened} in state {self.state}")
        self.state = target

    def _write(self, data: bytes) -> None:
        if not self._out and not self._plain:
            self.servent._dirty[self] = None
        if self.deflater is not None or self.tls is not None:
            self._plain += data
        else:
            self._out += data

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _established(self, now: float) -> None:
        self.established_at = now
        self.next_ping = now + PING_INTERVAL
        self._emit(ConnectionEstablished(conn_id=self.conn_id,
                                         peer_is_ultrapeer=self.peer_is_ultrapeer,
                                         headers=self.headers, tls=self.tls is not None))

    def _closing(self, code: int, reason: str, now: float) -> None:
        self._move(cs.BYE_SENT)
        self.closing_since = now
        self._close_code, self._close_reason = code, reason
        self.servent._forget(self)

    def _end(self, happened: str, code: int, reason: str, *, by_peer: bool) -> None:
        was_closing = self.state == cs.CLOSING  # its routes went with our Bye
        self._move(happened)
        self._emit(ConnectionClosed(conn_id=self.conn_id, code=code, reason=reason,
                                    by_peer=by_peer))
        if not was_closing:
            self.servent._forget(self)


class _Routes:
    """GUID -> connection, bounded twice: at most ``limit`` entries (the oldest go first), and
    none older than ``lifetime`` seconds (:meth:`expire`; answers come back within seconds).
    Each target's GUIDs are indexed, so a closing connection's routes go in O(its routes),
    not a scan of the table."""

    def __init__(self, limit: int, lifetime: float = ROUTE_LIFETIME) -> None:
        self.limit = limit
        self.lifetime = lifetime
        #: guid -> (target, time added), oldest first.
        self._routes: OrderedDict[bytes, tuple[Any, float]] = OrderedDict()
        self._by_target: dict[Any, set[bytes]] = {}

    def add(self, guid: bytes, target: Any, now: float) -> bool:
        """Remember ``guid``; False if it was already known (a duplicate)."""
        if guid in self._routes:
            return False
        self._routes[guid] = (target, now)
        self._by_target.setdefault(target, set()).add(guid)
        if len(self._routes) > self.limit:
            self._drop(next(iter(self._routes)))
        return True

    def get(self, guid: bytes) -> Any:
        entry = self._routes.get(guid)
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._routes)

    def targets(self) -> list[Any]:
        """Every target that has a route now."""
        return list(self._by_target)

    def _drop(self, guid: bytes) -> None:
        target, _ = self._routes.pop(guid)
        guids = self._by_target[target]
        guids.discard(guid)
        if not guids:
            del self._by_target[target]

    def next_expiry(self) -> float | None:
        """When the oldest route expires, or None when there is none."""
        if not self._routes:
            return None
        return self._routes[next(iter(self._routes))][1] + self.lifetime

    def expire(self, now: float) -> None:
        """Forget every route older than ``lifetime``."""
        routes = self._routes
        while routes:
            guid = next(iter(routes))
            if routes[guid][1] + self.lifetime > now:
                return
            self._drop(guid)

    def forget_connection(self, conn: Connection) -> None:
        for guid in self._by_target.pop(conn, ()):
            del self._routes[guid]


_LOCAL = object()  # route target: this servent originated the descriptor


@dataclass(frozen=True)
class _UdpRoute:
    """Route target: a GUESS querier's UDP address (its hits go back there over UDP)."""

    address: tuple[str, int]


class Servent:
    """One Gnutella servent's protocol logic: the router between its :class:`Connection`\\ s."""

    def __init__(self, *, role: str = "leaf", rng: random.Random | None = None,
                 shared: Iterable[SharedFile] = (), guid: bytes | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 6346), max_ttl: int = MAX_TTL,
                 max_routes: int = MAX_ROUTES, firewalled: bool = False, qrp: bool = True,
                 qrp_table_length: int = 1 << 16, deflate: bool = False,
                 tls: bool = False, ultrapeer_qrp: bool = False,
                 vendor_messages: bool = False, hsep: bool = False,
                 dynamic_query: bool = False, udp: bool = False,
                 started: float = 0.0) -> None:
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
        #: compression §3: compress what we send when the peer says Accept-Encoding: deflate
        #: (False: we still inflate, as the peer may compress).
        self.deflate = deflate
        #: gnet-TLS-upgrade §2: offer ``Upgrade: TLS/1.0`` when connecting, accept it when
        #: offered.
        self.tls = tls
        #: ultrapeer_qrp §: exchange route tables with ultrapeers and route last-hop queries
        #: by them (off in the simulator, whose figures are flooding's).
        self.ultrapeer_qrp = ultrapeer_qrp
        #: vendor_msg §3-§4: say Vendor-Message, send Messages/Features Supported, act on
        #: ``SUPPORTED_MESSAGES`` (unknown vendor messages are always dropped quietly).
        self.vendor_messages = vendor_messages
        #: HSEP 0.2 (X-Features: HSEP/0.2) with peers that say it too.
        self.hsep_enabled = hsep
        #: dynamic_query §2.2: an ultrapeer runs its leaves' queries as dynamic queries
        #: (:mod:`p2pkit.gnutella.dynamic_query`) instead of flooding them to its ultrapeers.
        self.dynamic_query = dynamic_query
        #: Out-of-band proxied queries: the GUID we sent -> (the leaf, its original GUID).
        self.oob_proxies: dict[bytes, tuple[Connection, bytes]] = {}
        #: An ultrapeer's own dynamic queries (§2.2: "performing searches for themselves").
        self.dynamic_queries: OrderedDict[bytes, tuple[DynamicQuery, Container]] = \
            OrderedDict()
        self._qrp_messages: list[Container] | None = None
        self.shared = list(shared)
        #: Every connection by the driver's id, closed ones included until :meth:`remove`.
        self.connections: dict[Any, Connection] = {}
        self.routes = _Routes(max_routes)  # ping and query GUIDs -> where they came from
        self.own_pings = _Routes(MAX_OWN_PINGS, OWN_PING_LIFETIME)  # GUIDs of our pings
        self.push_routes = _Routes(max_routes)  # servent GUIDs (from hits) -> connection
        self.pong_cache: deque = deque(maxlen=MAX_CACHED_PONGS)
        #: Descriptors sent and received, by type (the simulator's measure).
        self.sent: Counter = Counter()
        self.received: Counter = Counter()
        self._dirty: dict[Connection, None] = {}
        self._by_sha1 = {f.sha1: f for f in self.shared}
        #: HSEP: our OWN triple, the global table and one row per HSEP connection.
        self.hsep = HsepTable(own=(1, len(self.shared),
                                   sum(f.size for f in self.shared) // 1024))
        #: TCP connect-back (msg/connect_back): True once someone reached our port.
        self.reachable = False
        #: push_proxy §3: the push proxies our ultrapeers acknowledged, by connection.
        self.push_proxies: dict[Any, tuple[str, int]] = {}
        #: push_proxy §3: the leaves we are push proxy for, by servent id (one per leaf).
        self.proxied: dict[bytes, Connection] = {}
        #: Hits received for our own queries (BEAR/12 reports them), and what our leaves
        #: reported for theirs (leaf_guided_queries §: 0xFFFF means "terminated").
        self.query_hits: OrderedDict[bytes, int] = OrderedDict()
        self.query_status: OrderedDict[bytes, int] = OrderedDict()
        #: Gnutella over UDP on our port (out-of-band hits, UDP pings, UDP connect-back).
        self.udp: UdpEndpoint | None = UdpEndpoint(self, started=started) if udp else None
        self._qrp_version = 0  # bumped when a leaf's table changes (our UP table with it)
        self._up_qrp_messages: tuple[int, list[Container]] | None = None

    # --- driver API -------------------------------------------------------------------------

    @property
    def is_ultrapeer(self) -> bool:
        return self.role == "ultrapeer"

    def connect(self, conn_id: Any, now: float, *, remote_ip: str | None = None) -> Connection:
        """We opened ``conn_id``: queue ``GNUTELLA CONNECT/0.6`` and our headers.

        ``remote_ip`` (the address the driver dialled) goes out as ``Remote-IP``, as
        gtk-gnutella does, so that the peer learns its public address.
        """
        conn = self._new_connection(conn_id, cs.CONNECTING, outgoing=True, remote_ip=remote_ip,
                                    now=now)
        self._write_handshake(conn, dict(kind="connect", version="0.6",
                                         headers=self._headers(remote_ip, upgrade=self.tls)))
        return conn

    def accept(self, conn_id: Any, now: float, *, remote_ip: str | None = None) -> Connection:
        """``conn_id`` connected to us (from ``remote_ip``): wait for its ``GNUTELLA CONNECT``.

        When :data:`MAX_HANDSHAKES` incoming handshakes are already under way, the idlest of
        them (nothing received for longest) is closed first: its ``ConnectionClosed`` (code
        503) tells the driver to close its socket. The same for
        :data:`MAX_CONNECTIONS_PER_ADDRESS` connections from ``remote_ip``, except that when
        they are all established, :class:`~p2pkit.errors.LimitExceeded` refuses the new one.
        """
        if remote_ip is not None:
            same = [c for c in self.connections.values() if not c.outgoing
                    and c.remote_ip == remote_ip and c.state != cs.CLOSED]
            if len(same) >= MAX_CONNECTIONS_PER_ADDRESS:
                waiting = [c for c in same if c.state in cs.HANDSHAKE_STATES]
                if not waiting:
                    raise LimitExceeded(f"{len(same)} connections from {remote_ip}",
                                        protocol="gnutella")
                idlest = min(waiting, key=lambda c: (c.last_received, c.opened_at))
                idlest._end(cs.ABORTED, 503, f"Evicted: {len(same)} connections from "
                            f"{remote_ip}", by_peer=False)
        if len(self.connections) >= MAX_HANDSHAKES:
            waiting = [c for c in self.connections.values()
                       if not c.outgoing and c.state in cs.HANDSHAKE_STATES]
            if len(waiting) >= MAX_HANDSHAKES:
                idlest = min(waiting, key=lambda c: (c.last_received, c.opened_at))
                idlest._end(cs.ABORTED, 503, f"Evicted: {MAX_HANDSHAKES} handshakes under way",
                            by_peer=False)
        return self._new_connection(conn_id, cs.ACCEPTING, outgoing=False, remote_ip=remote_ip,
                                    now=now)

    def connections_with_data(self) -> list[Connection]:
        """Connections with bytes queued since the last call (write ``conn.data_to_send()``)."""
        dirty = [c for c in self._dirty
                 if c._out or c._plain or (c.tls is not None and c.tls.pending)]
        self._dirty.clear()
        return dirty

    def get_timer(self) -> float | None:
        """The earliest timer of any open connection or route expiry, or ``None``."""
        timers = [t for c in self.connections.values() if (t := c.get_timer()) is not None]
        if self.udp is not None and (t := self.udp.get_timer()) is not None:
            timers.append(t)
        timers += [q.next_at for q, _ in self.dynamic_queries.values()]
        timers += [t for r in (self.routes, self.push_routes, self.own_pings)
                   if (t := r.next_expiry()) is not None]
        return min(timers, default=None)

    def handle_timer(self, now: float) -> None:
        """Run every connection's timer that is due at ``now``, and age out old routes."""
        self.routes.expire(now)
        self.push_routes.expire(now)
        self.own_pings.expire(now)
        if self.udp is not None:
            self.udp.handle_timer(now)
        if self.dynamic_queries:
            self._run_dynamic_queries(self.dynamic_queries, now)
        for conn in list(self.connections.values()):
            when = conn.get_timer()
            if when is not None and when <= now:
                conn.handle_timer(now)

    def remove(self, conn_id: Any) -> None:
        """Forget a closed connection (a long-running driver calls it after closing)."""
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state == cs.CLOSED:
            del self.connections[conn_id]
            self._dirty.pop(conn, None)
            for proxied in conn.oob_proxied.values():
                self.oob_proxies.pop(proxied, None)
            conn.oob_proxied.clear()

    def close(self, conn_id: Any, now: float, *, code: int = 201,
              reason: str = "User manual removal") -> None:
        """Say Bye on ``conn_id`` (bye §3: "the last thing on the network") and close it."""
        Bye(code=code, message=reason)  # validated as the event would be
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state not in (cs.CLOSING, cs.CLOSED):
            self._bye(conn, code, reason, now)

    def query(self, text: str, now: float, *, ttl: int | None = None,
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
        # out-of-band §B: hits by UDP once a UDP connect-back showed unsolicited UDP arrives
        oob = self.udp is not None and self.udp.reachable and _is_ipv4(self.listen[0])
        if oob:
            guid = oob_guid(guid, self.listen)
            assert self.udp is not None
            self.udp.oob_query(guid)
        query = Container(guid=guid, type="query", ttl=ttl, hops=0,
                          min_speed=dict(mark=True, ggep_h=True, oob_reply=oob),
                          search_criteria=text, extensions=extensions)
        self.routes.add(guid, _LOCAL, now)
        dynamic = self.dynamic_query and self.is_ultrapeer
        for conn in self._established():
            if conn.hops_flow is not None and conn.hops_flow == 0:
                continue  # vendor_msg §5: "A threshold of 0 therefore requests that NO queries"
            if conn.peer_is_ultrapeer and not dynamic and self._ultrapeer_wants(conn, query) \
                    or self._leaf_wants(conn, query):
                self._send(conn, query)
        _bounded_set(self.query_hits, guid, 0)
        if dynamic:  # dynamic_query §2.2: our ultrapeers get it a few at a time
            while len(self.dynamic_queries) >= MAX_OWN_DYNAMIC_QUERIES:
                self.dynamic_queries.popitem(last=False)
            self.dynamic_queries[guid] = (
                DynamicQuery(desired=OWN_RESULTS, started=now, next_at=now), query)
            self._run_dynamic_queries(self.dynamic_queries, now)
        return guid

    def ping(self, now: float, *, ttl: int = 1, conn_id: Any = None) -> bytes:
        """Ping every established connection, or only ``conn_id`` (ping-pong §: TTL 1 is a
        keep-alive probe)."""
        guid = self._new_guid()
        self.own_pings.add(guid, _LOCAL, now)
        ping = Container(guid=guid, type="ping", ttl=ttl, hops=0, extensions=[])
        for conn in self._established():
            if conn_id is None or conn.conn_id == conn_id:
                self._send(conn, ping)
        return guid

    def push(self, servent_id: bytes, file_index: int, now: float) -> bool:
        """Ask the firewalled servent ``servent_id`` to connect to us (route of its hit)."""
        conn = self.push_routes.get(servent_id)
        if conn is None or conn.state != cs.ESTABLISHED:
            return False
        self._send(conn, Container(guid=self._new_guid(), type="push", ttl=self.max_ttl,
                                   hops=0, servent_id=servent_id, file_index=file_index,
                                   ip_address=self.listen[0], port=self.listen[1],
                                   extensions=[]))
        return True

    # --- reading ----------------------------------------------------------------------------

    def _receive(self, conn: Connection, data: bytes, now: float) -> None:
        """Frame ``data`` and act on each frame; whatever the peer got wrong (a frame too big,
        bytes that do not parse, a descriptor or QRP message the protocol forbids) ends this
        connection only, with the Bye code and reason of that mistake. On a TLS link the bytes
        are decrypted first; a TLS failure closes the connection (no Bye can pass)."""
        if conn.tls is not None and conn.reader.state != TLS:
            try:
                data = conn.tls.receive(data)
            except ParseError as e:
                conn._end(cs.TLS_FAILED, 400, e.reason, by_peer=False)
                return
            if conn.tls.pending:
                self._dirty[conn] = None
            if not data:
                return
        conn.inflate_guard.now = now
        try:
            frames = conn.reader.feed(data)
        except (ParseError, ProtocolError) as e:
            self._refuse_input(conn, e, now)
            return
        for frame in frames:
            if conn.state in (cs.CLOSING, cs.CLOSED):  # a Bye or a refusal ended it
                return
            try:
                if isinstance(frame, HandshakeFrame):
                    self._on_handshake(conn, frame.handshake, now)
                else:
                    self._on_descriptor(conn, frame.descriptor, now)
            except (ParseError, ProtocolError) as e:
                self._refuse_input(conn, e, now)
                return
        if conn.reader.state == FAILED:  # a bad frame after good ones in the same read
            try:
                conn.reader.feed(b"")
            except ParseError as e:
                self._refuse_input(conn, e, now)
            return
        if conn.reader.state == TLS and conn.tls is not None and conn.state == cs.ESTABLISHED:
            leftover = conn.reader.take_upgrade()  # the first TLS records, if already here
            self._dirty[conn] = None  # the TLS client's hello
            if leftover:
                self._receive(conn, leftover, now)
            return
        if conn.state == cs.ESTABLISHED and conn.reader.state != DESCRIPTORS:
            self._bye(conn, 501, "Unsupported link encoding", now)

    def _refuse_input(self, conn: Connection, error: Exception, now: float) -> None:
        """Bye (or close, during the handshake) for what the peer sent wrong."""
        if conn.state in (cs.CLOSING, cs.CLOSED):
            return
        if isinstance(error, LimitExceeded):
            self._bye(conn, 400, f"Too big: {error.reason}", now)
        elif isinstance(error, ParseError):
            self._bye(conn, 501, f"Protocol desynchronization: {error.reason}", now)
        else:
            self._bye(conn, 400, f"Protocol error: {error}", now)

    # --- handshake --------------------------------------------------------------------------

    def _headers(self, remote_ip: str | None = None, *, refusal: bool = False,
                 content_encoding: bool = False, upgrade: bool = False,
                 connection_upgrade: bool = False) -> Headers:
        """Our handshake headers: the names and order gtk-gnutella 1.2.3 uses, minus what this
        servent does not implement (gtk-gnutella's tokens; X-Degree only with dynamic querying)."""
        items = [("Listen-IP", f"{self.listen[0]}:{self.listen[1]}")]
        if remote_ip:
            items.append(("Remote-IP", remote_ip))
        items.append(("User-Agent", USER_AGENT))
        if not refusal:
            items += [("Pong-Caching", "0.1"), ("Bye-Packet", "0.1"), ("GGEP", "0.5"),
                      ("GUID", self.guid.hex())]
            if self.vendor_messages:
                items.append(("Vendor-Message", VENDOR_MESSAGE_VERSION))
            items += [("X-Query-Routing", "0.1"),
                      # compression §3: "the side supporting decompression will say" this;
                      # the reader inflates a peer's deflated stream (it sends plain bytes)
                      ("Accept-Encoding", "deflate")]
            if content_encoding:  # compression §3: "the other side acknowledges by sending"
                items.append(("Content-Encoding", "deflate"))
            if upgrade:  # gnet-TLS-upgrade §2: offered when connecting, chosen when answering
                items.append(("Upgrade", TLS_TOKEN))
            if connection_upgrade:
                items.append(("Connection", "Upgrade"))
        items.append(("X-Ultrapeer", "True" if self.is_ultrapeer else "False"))
        if not refusal:
            if self.is_ultrapeer:
                items.append(("X-Ultrapeer-Needed", "False"))
                if self.dynamic_query:  # dynamic_query §2.5.3.2.2-3
                    items += [("X-Degree", str(MAX_ULTRAPEERS)),
                              ("X-Dynamic-Querying", DYNAMIC_QUERY_VERSION)]
                if self.ultrapeer_qrp:  # ultrapeer_qrp §: tables between ultrapeers
                    items.append(("X-Ultrapeer-Query-Routing", "0.1"))
            items.append(("X-Max-TTL", str(self.max_ttl)))
            if self.hsep_enabled:
                items.append(("X-Features", f"HSEP/{HSEP_VERSION}"))  # HSEP §"Handshaking"
        return Headers(items)

    def _on_handshake(self, conn: Connection, block: Any, now: float) -> None:
        state = conn.state
        if block.kind == "connect" and state == cs.ACCEPTING:
            conn.headers = block.headers
            conn.peer_is_ultrapeer = _true(block.headers.get("X-Ultrapeer"))
            refusal = self._refusal(conn)
            if refusal is not None:
                self._write_handshake(conn, dict(
                    kind="response", version="0.6", status_code=503, reason=refusal,
                    headers=self._headers(conn.remote_ip, refusal=True)))
                conn._end(cs.CONNECT_REFUSED, 503, refusal, by_peer=False)
                return
            deflate = self._will_deflate(block.headers)
            # gnet-TLS-upgrade §2: "The servent which receives the handshake and is willing to
            # upgrade will send back" Upgrade and Connection: Upgrade; it does not switch yet.
            conn.tls_offered = self.tls and TLS_TOKEN.lower() in [
                t.lower() for t in block.headers.tokens("Upgrade")]
            self._write_handshake(conn, dict(kind="response", version="0.6", status_code=200,
                                             reason="OK", headers=self._headers(
                                                 conn.remote_ip, content_encoding=deflate,
                                                 upgrade=conn.tls_offered,
                                                 connection_upgrade=conn.tls_offered)))
            if deflate:  # compression §3: our bytes after this block are one zlib stream
                conn.deflater = Deflater()
            conn._move(cs.CONNECT_ACCEPTED)
        elif block.kind == "response" and state == cs.CONNECTING:
            if block.status_code != 200:
                conn._emit(ConnectionRefused(conn_id=conn.conn_id,
                                             status_code=block.status_code,
                                             reason=block.reason or ""))
                conn._end(cs.RESPONSE_REFUSED, block.status_code, block.reason or "",
                          by_peer=True)
                return
            conn.headers = block.headers
            conn.peer_is_ultrapeer = _true(block.headers.get("X-Ultrapeer"))
            if not self.is_ultrapeer and not conn.peer_is_ultrapeer:
                self._write_handshake(conn, dict(kind="response", version="0.6",
                                                 status_code=503, reason="Shielded leaf node",
                                                 headers=Headers()))
                conn._end(cs.RESPONSE_REFUSED, 503, "leaf to leaf", by_peer=False)
                return
            deflate = self._will_deflate(block.headers)
            final = [("Content-Encoding", "deflate")] if deflate else []
            # gnet-TLS-upgrade §2: the connecting servent "needs to acknowledge that the
            # protocol listed in the Upgrade header in the reply is satisfactory"
            tls = self.tls and _upgrade(block.headers) and TLS_TOKEN.lower() in [
                t.lower() for t in block.headers.tokens("Upgrade")]
            if tls:
                final.append(("Connection", "Upgrade"))
            self._write_handshake(conn, dict(kind="response", version="0.6", status_code=200,
                                             reason="OK", headers=Headers(final)))
            if deflate:
                conn.deflater = Deflater()
            if tls:  # "At the end of its header reply, it will switch the protocol to TLS"
                conn.tls = TlsLayer(server_side=False)
            conn._move(cs.RESPONSE_OK)
            self._established_now(conn, now)
        elif block.kind == "response" and state == cs.AWAITING_FINAL:
            if block.status_code != 200:
                conn._end(cs.FINAL_REFUSED, block.status_code, block.reason or "",
                          by_peer=True)
                return
            if conn.tls_offered and _upgrade(block.headers):
                conn.tls = TlsLayer(server_side=True)  # the connecting side switches now
            conn._move(cs.FINAL_OK)
            self._established_now(conn, now)
        else:
            raise ProtocolError(f"unexpected {block.kind} handshake in state {state}")

    def _will_deflate(self, peer_headers: Headers) -> bool:
        """compression §3: "The servant just picks the compression scheme it supports amongst
        the ones advertised by the remote end in the Accept-Encoding line"."""
        return self.deflate and "deflate" in [
            t.lower() for t in peer_headers.tokens("Accept-Encoding")]

    def _refusal(self, conn: Connection) -> str | None:
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

    def _established_now(self, conn: Connection, now: float) -> None:
        conn._established(now)
        peer = conn.headers
        if self.vendor_messages and peer.get("Vendor-Message"):
            # vendor_msg §4: "it MUST send it a "Messages Supported" message"
            supported = SUPPORTED_MESSAGES + (UDP_MESSAGES if self.udp is not None else ())
            if self.udp is not None and self.is_ultrapeer:
                supported += OOB_PROXY_MESSAGES
            self._send_vendor(conn, "\0\0\0\0", 0, 0, messages=[
                dict(vendor=v, selector=s, version=n) for v, s, n in supported])
            self._send_vendor(conn, "\0\0\0\0", 10, 0, features=[
                dict(feature=f, version=n) for f, n in SUPPORTED_FEATURES])
        if self.hsep_enabled and f"hsep/{HSEP_VERSION}" in [
                t.lower() for t in peer.tokens("X-Features")]:
            # HSEP §"Handshaking": initialise the row; "The first HSEP message should be
            # sent as soon as possible"
            conn.hsep = True
            self.hsep.add(conn.conn_id)
            conn.next_hsep = now + HSEP_INTERVAL
            self._send_hsep(conn)
        if self.ultrapeer_qrp and self.is_ultrapeer and conn.peer_is_ultrapeer and peer.get(
                "X-Ultrapeer-Query-Routing"):
            conn.up_qrp = True
            self._send_up_table(conn, now)
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

    def _on_descriptor(self, conn: Connection, d: Any, now: float) -> None:
        if conn.state != cs.ESTABLISHED:
            raise ProtocolError(f"descriptor in state {conn.state}")
        self.received[d.type] += 1
        if d.type == "bye":
            # bye §4: "Upon reading a Bye packet, a node should immediately close".
            conn._end(cs.BYE_RECEIVED, d.code, d.message, by_peer=True)
            return
        if d.ttl + d.hops > HARD_TTL_LIMIT:
            self._bye(conn, 403, "Excessively long-lived message (hops+TTL)", now)
            return
        handler = getattr(self, f"_on_{d.type}", None)
        if handler is not None:
            handler(conn, d, now)

    def _on_ping(self, conn: Connection, d: Any, now: float) -> None:
        conn.pings.append(now)
        while conn.pings and conn.pings[0] < now - PING_WINDOW:
            conn.pings.popleft()
        if len(conn.pings) > MAX_PINGS_PER_WINDOW:
            self._bye(conn, 401, "Too many pings", now)
            return
        if self.own_pings.get(d.guid) is not None or not self.routes.add(d.guid, conn, now):
            return  # duplicate (or our own ping come back)
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

    def _on_pong(self, conn: Connection, d: Any, now: float) -> None:
        self.pong_cache.append((conn.conn_id, d))  # the id: no closed connection kept alive
        target = self.routes.get(d.guid)
        if target is not None and target is not _LOCAL:
            self._forward(target, d)

    def _on_query(self, conn: Connection, d: Any, now: float) -> None:
        if not self.routes.add(d.guid, conn, now):
            return  # duplicate GUID: dropped
        if d.ttl + d.hops > self.max_ttl:
            d.ttl = max(0, self.max_ttl - d.hops)  # trim to our horizon
        self._answer(conn, d, now)
        if not self.is_ultrapeer or d.ttl < 1:
            return
        if self._proxies_out_of_band(conn, d):
            d = self._oob_proxy(conn, d, now)
        dynamic = self.dynamic_query and not conn.peer_is_ultrapeer
        forwarded = Container(d, ttl=d.ttl - 1, hops=d.hops + 1)
        if dynamic:
            self._start_dynamic_query(conn, forwarded, now)
        for other in self._established():
            if other is conn or dynamic and other.peer_is_ultrapeer:
                continue
            if other.hops_flow is not None and forwarded.hops >= other.hops_flow:
                continue  # vendor_msg §5: "Only queries whose hops are STRICTLY lesser"
            if other.peer_is_ultrapeer:
                if forwarded.ttl >= 1 and self._ultrapeer_wants(other, forwarded):
                    self._send(other, forwarded)
            elif self._leaf_wants(other, d):
                # ultrapeer_qrp §2.4: "if an Ultrapeer receives a query with TTL=1, the
                # Ultrapeer then decrements the TTL to 0, but still forwards that query to its
                # leaves" (only those "with hits in their routing tables").
                self._send(other, forwarded)

    def guess_query(self, d: Any, addr: tuple[str, int], now: float) -> None:
        """GUESS §2.2.2, a query that came over UDP with a valid key (the
        :class:`~p2pkit.gnutella.udp.UdpEndpoint` checked it): "the query should be executed as
        normal (sent via QRP to leaves and evaluated on the local client)" (query_keys §2.x.3);
        "Ultrapeers also MUST start forwarding TTL=1 queries received over UDP to leaves";
        hits "via UDP", "sent back to the sender". "QK" and "SCP" are stripped before the
        query goes to leaves (GUESS §10: "SHOULD strip"). Not forwarded to ultrapeers."""
        if self.udp is None or not self.routes.add(d.guid, _UdpRoute(addr), now):
            return  # duplicate GUID: dropped
        stripped = Container(d, extensions=without_ggep(d.get("extensions"), {"QK", "SCP"}))
        udp = self.udp
        self._answer(None, stripped, now, reply=lambda hit: udp.send_hit(addr, hit))
        forwarded = Container(stripped, ttl=max(0, d.ttl - 1), hops=d.hops + 1)
        for leaf in self._established():
            if leaf.hops_flow is not None and forwarded.hops >= leaf.hops_flow:
                continue
            if self._leaf_wants(leaf, d):
                self._send(leaf, forwarded)

    # --- out-of-band proxying (out-of-band-v3 §"Ultrapeer Proxying") -------------------------

    def _proxies_out_of_band(self, leaf: Connection, d: Any) -> bool:
        """An ultrapeer reachable over UDP takes the hits of a leaf's query that does not ask
        for out-of-band hits itself (the leaf cannot receive them), unless the leaf vetoed it
        (LIME/13v1) or the query says "NP" (out-of-band-v3: "should not OOB proxy")."""
        return (self.udp is not None and self.udp.reachable and _is_ipv4(self.listen[0])
                and not leaf.peer_is_ultrapeer and leaf.oob_proxy_allowed and d.hops == 0
                and d.min_speed.mark and not d.min_speed.oob_reply
                and not any(block.get("kind") == "ggep" and
                            any(e.id == "NP" for e in block.extensions)
                            for block in d.get("extensions") or ()))

    def _oob_proxy(self, leaf: Connection, d: Any, now: float) -> Any:
        """The leaf's query under a GUID naming our address (out-of-band §B.2) with the
        ``oob_reply`` bit: Reply Numbers come to us, we Ack, and the hits that come over UDP
        (or over TCP, from servents too close to answer out of band) go to the leaf under its
        own GUID."""
        proxied = oob_guid(d.guid, self.listen)
        if proxied == d.guid or not self.routes.add(proxied, leaf, now):
            return d
        while len(leaf.oob_proxied) >= MAX_OOB_PROXIED_PER_LEAF:
            _, old = leaf.oob_proxied.popitem(last=False)
            self.oob_proxies.pop(old, None)
        leaf.oob_proxied[d.guid] = proxied
        self.oob_proxies[proxied] = (leaf, d.guid)
        assert self.udp is not None
        self.udp.oob_query(proxied)
        return Container(d, guid=proxied, min_speed=Container(d.min_speed, oob_reply=True))

    def deliver_oob_proxied(self, d: Any) -> bool:
        """A hit that came over UDP for a query we proxy: to the leaf under its GUID; False
        when ``d`` is for no proxied query."""
        entry = self.oob_proxies.get(d.guid)
        if entry is None:
            return False
        leaf, original = entry
        running = leaf.dynamic_queries.get(d.guid)
        if running is not None:  # dynamic_query §2.5.2.1: the proxied hits count too
            running[0].add_results(len(d.results))
        if leaf.state == cs.ESTABLISHED:
            self._send(leaf, Container(d, guid=original, ttl=max(1, d.ttl - 1), hops=d.hops + 1))
        return True

    def _on_oob_proxy_control(self, conn: Connection, d: Any, now: float) -> None:
        """out-of-band-v3 §"OOB Proxy Veto": "If that byte is missing, it is to be interpreted
        that all proxying is vetoed. If the value of the byte is 0, then all OOB proxying is
        allowed"; a byte names "the highest version [...] that should not be proxied"."""
        if self.is_ultrapeer and not conn.peer_is_ultrapeer:
            version = d.body.version
            conn.oob_proxy_allowed = version is not None and version < OOB_PROXY_VERSION

    # --- dynamic querying (dynamic_query §2) ------------------------------------------------

    def _start_dynamic_query(self, leaf: Connection, query: Container, now: float) -> None:
        """dynamic_query §2.2: "Upon receiving a query from a leaf, the Ultrapeer ignores the
        TTL of that query and begins a dynamic query" (the probe goes at once)."""
        while len(leaf.dynamic_queries) >= MAX_DYNAMIC_QUERIES_PER_LEAF:
            leaf.dynamic_queries.popitem(last=False)
        leaf.dynamic_queries[query.guid] = (
            DynamicQuery(desired=LEAF_RESULTS, started=now, next_at=now), query)
        self._run_dynamic_queries(leaf.dynamic_queries, now)

    def _dq_candidates(self, query: Container) -> list[Candidate]:
        """The ultrapeer connections a dynamic query may go down: those whose route table
        (ultrapeer_qrp) matches first (dynamic_query §2.5.1: "the dynamic querier MAY choose to
        check those route tables for hits"), with their X-Degree and X-Max-TTL."""
        out = []
        for conn in self._established():
            if not conn.peer_is_ultrapeer or conn.hops_flow is not None and \
                    query.hops >= conn.hops_flow:
                continue
            degree = _header_int(conn.headers.get("X-Degree"), 2, 1000)
            max_ttl = _header_int(conn.headers.get("X-Max-TTL"), 1, DQ_MAX_TTL)
            matches = conn.up_qrp and conn.route_table.complete and \
                self._ultrapeer_wants(conn, Container(query, ttl=1))
            out.append((not matches, Candidate(conn.conn_id, degree or 6,
                                               max_ttl or DQ_MAX_TTL)))
        return [c for _, c in sorted(out, key=lambda x: x[0])]

    def _run_dynamic_queries(self, queries: OrderedDict, now: float) -> None:
        """Send what dynamic ``queries`` (a leaf's, or our own) have due at ``now``; forget
        those ended."""
        for guid, (dq, query) in list(queries.items()):
            if dq.ended is None and now >= dq.next_at:
                for conn_id, ttl in dq.step(now, self._dq_candidates(query)):
                    self._send(self.connections[conn_id], Container(query, ttl=ttl))
            if dq.ended is not None:
                del queries[guid]

    def _ultrapeer_wants(self, conn: Connection, query: Any) -> bool:
        """ultrapeer_qrp §: a query on its last hop (TTL 1) goes to an ultrapeer only when
        that ultrapeer's table (its own files and its leaves') matches."""
        if not conn.up_qrp or query.ttl > 1 or not self.qrp:
            return True
        urns = _urns(query)
        if urns:
            return any(conn.route_table.contains(u) for u in urns)
        return conn.route_table.matches(query.search_criteria)

    def _leaf_wants(self, conn: Connection, query: Any) -> bool:
        """ultrapeer_qrp §: a query goes to a leaf only when its route table matches."""
        if conn.peer_is_ultrapeer:
            return False
        if not self.qrp:
            return True
        urns = _urns(query)
        if urns:
            return any(conn.route_table.contains(u) for u in urns)
        return conn.route_table.matches(query.search_criteria)

    def _on_query_hit(self, conn: Connection, d: Any, now: float) -> None:
        self.push_routes.add(d.trailer.servent_id, conn, now)
        target = self.routes.get(d.guid)
        if target is _LOCAL:
            conn._emit(QueryHit(conn_id=conn.conn_id, query_guid=d.guid, descriptor=d))
            hits = min(QUERY_STATUS_STOP - 1, self.query_hits.get(d.guid, 0) + len(d.results))
            _bounded_set(self.query_hits, d.guid, hits)
            if d.guid in self.dynamic_queries:  # dynamic_query §2.5.2.1: r, our own query
                self.dynamic_queries[d.guid][0].add_results(len(d.results))
            if not self.is_ultrapeer and ("BEAR", 12) in conn.peer_messages:
                # leaf_guided_queries §: "Query Status Responses can be sent unsolicited"
                self._send_vendor(conn, "BEAR", 12, 1, guid=d.guid, body=dict(hits=hits))
        elif isinstance(target, _UdpRoute):
            if self.udp is not None:  # GUESS §2.2: a leaf's hit for a GUESS query, over UDP
                self.udp.send_hit(target.address, Container(d, hops=d.hops + 1))
        elif target is not None:
            running = target.dynamic_queries.get(d.guid) if target is not conn else None
            if running is not None:  # dynamic_query §2.5.2.1: "r = the number of results"
                running[0].add_results(len(d.results))
            proxied = self.oob_proxies.get(d.guid)
            if proxied is not None:  # a hit for a query we proxy: the leaf's own GUID
                d = Container(d, guid=proxied[1])
            self._forward(target, d)  # reverse path only; unknown GUIDs are dropped

    def _on_push(self, conn: Connection, d: Any, now: float) -> None:
        if d.servent_id == self.guid:
            conn._emit(Push(conn_id=conn.conn_id, descriptor=d))
            return
        target = self.push_routes.get(d.servent_id)
        if target is not None and target is not conn:
            self._forward(target, d)

    def _on_route_table_update(self, conn: Connection, d: Any, now: float) -> None:
        if self.is_ultrapeer and not conn.peer_is_ultrapeer:
            conn.route_table.receive(d)
            if conn.route_table.complete and d.variant == "patch":
                self._qrp_version += 1  # our table towards ultrapeers changes with it
        elif self.is_ultrapeer and conn.up_qrp:
            conn.route_table.receive(d)  # ultrapeer_qrp §: last-hop routing to it

    # --- vendor messages (vendor_msg §2-§5) and HSEP ----------------------------------------

    def _on_vendor_message(self, conn: Connection, d: Any, now: float) -> None:
        """vendor_msg §2: "Unknown messages types, or messages sent with something other than
        TTL=1 and hops=0 MUST be dropped without prejudice"."""
        if d.ttl != 1 or d.hops != 0 or not self.vendor_messages:
            return
        handler = getattr(self, f"_on_{d.get('name')}", None)
        if handler is not None and (d.get("body") is not None or "messages" in d
                                    or "features" in d):
            handler(conn, d, now)

    _on_standard_vendor_message = _on_vendor_message

    def _on_messages_supported(self, conn: Connection, d: Any, now: float) -> None:
        conn.peer_messages = {(m.vendor, m.selector) for m in d.messages}
        theirs = conn.peer_messages
        if not self.reachable and ("BEAR", 7) in theirs:
            # msg/connect_back: "sent by servents that still think they are firewalled"
            self._send_vendor(conn, "BEAR", 7, 1, body=dict(port=self.listen[1]))
        if self.udp is not None and not self.udp.reachable and ("GTKG", 7) in theirs:
            # msg/connect_back, GTKG/7v2: the peer pings our UDP port under this GUID
            guid = self._new_guid()
            self.udp.expect_connect_back(guid)
            self._send_vendor(conn, "GTKG", 7, 2, guid=guid, body=dict(port=self.listen[1]))
        if not self.is_ultrapeer and conn.peer_is_ultrapeer:
            if self.udp is not None and self.udp.reachable and ("LIME", 13) in theirs:
                # out-of-band-v3: we take out-of-band hits ourselves, no proxying
                self._send_vendor(conn, "LIME", 13, 1, body=dict(version=None))
            if (self.firewalled or not self.reachable) and ("LIME", 21) in theirs:
                # push_proxy §3.1: "VM GUID: 16 byte ServentId of the FS"
                self._send_vendor(conn, "LIME", 21, 1, guid=self.guid, body={})
            if not self.shared and ("BEAR", 4) in theirs:
                # vendor_msg §5: a leaf sharing nothing asks for no queries (hops 0)
                self._send_vendor(conn, "BEAR", 4, 1, body=dict(hops=0))

    def _on_features_supported(self, conn: Connection, d: Any, now: float) -> None:
        conn.peer_features = {f.feature for f in d.features}

    def _on_hops_flow(self, conn: Connection, d: Any, now: float) -> None:
        conn.hops_flow = d.body.hops

    def _on_tcp_connect_back(self, conn: Connection, d: Any, now: float) -> None:
        if conn.remote_ip and not conn.connect_back_done and d.body.port:
            conn.connect_back_done = True  # once per connection: no connection flood
            conn._emit(ConnectBackRequested(conn_id=conn.conn_id, ip_address=conn.remote_ip,
                                            port=d.body.port))

    def _udp_reachable(self) -> None:
        """A UDP connect-back reached us: we take out-of-band hits ourselves, so our
        ultrapeers are told not to proxy our queries (out-of-band-v3 §"OOB Proxy Veto",
        LIME/13v1 without its byte: "all proxying is vetoed")."""
        if self.is_ultrapeer:
            return
        for conn in self._established():
            if conn.peer_is_ultrapeer and ("LIME", 13) in conn.peer_messages:
                self._send_vendor(conn, "LIME", 13, 1, body=dict(version=None))

    def _on_udp_connect_back(self, conn: Connection, d: Any, now: float) -> None:
        """msg/connect_back, GTKG/7: a UDP ping to the peer's port under the GUID it chose
        (v2: the message's; v1: the body's), once per connection."""
        if self.udp is not None and conn.remote_ip and not conn.udp_connect_back_done and \
                d.body.port:
            conn.udp_connect_back_done = True
            self.udp.ping((conn.remote_ip, d.body.port), d.body.get("guid") or d.guid)

    def _on_push_proxy_request(self, conn: Connection, d: Any, now: float) -> None:
        if self.is_ultrapeer and not conn.peer_is_ultrapeer:
            # push_proxy §3: we relay Pushes for this servent ID (the VM GUID) to this leaf
            self.push_routes.add(d.guid, conn, now)
            for guid in [g for g, c in self.proxied.items() if c is conn]:
                del self.proxied[guid]  # one servent id per leaf: the table stays bounded
            self.proxied[d.guid] = conn
            self._send_vendor(conn, "LIME", 22, 2, guid=d.guid, body=dict(
                ip_address=self.listen[0], port=self.listen[1]))

    def _on_push_proxy_acknowledgement(self, conn: Connection, d: Any, now: float) -> None:
        if conn.peer_is_ultrapeer and d.guid == self.guid:
            ip = d.body.get("ip_address") or conn.remote_ip
            if ip:
                self.push_proxies[conn.conn_id] = (ip, d.body.port)

    def _on_query_status_request(self, conn: Connection, d: Any, now: float) -> None:
        """leaf_guided_queries §: the hits our filters let through for the query (its GUID
        is the message's), 0xFFFF for a query we no longer run."""
        if not self.is_ultrapeer and conn.peer_is_ultrapeer:
            hits = self.query_hits.get(d.guid, QUERY_STATUS_STOP)
            self._send_vendor(conn, "BEAR", 12, 1, guid=d.guid, body=dict(hits=hits))

    def _on_query_status_response(self, conn: Connection, d: Any, now: float) -> None:
        if self.is_ultrapeer and not conn.peer_is_ultrapeer:
            _bounded_set(self.query_status, d.guid, d.body.hits)
            running = conn.dynamic_queries.get(conn.oob_proxied.get(d.guid, d.guid))
            if running is not None:  # leaf_guided_queries §: the leaf's own count decides
                dq = running[0]
                if d.body.hits == QUERY_STATUS_STOP:
                    dq.stop()
                else:
                    dq.add_results(max(0, d.body.hits - dq.results))

    def proxy_push(self, servent_id: bytes, node: tuple[str, int], now: float) -> bool:
        """push_proxy §5: a downloader asked us over HTTP to push the leaf ``servent_id``:
        "the PP constructs a Gnutella Push packet (FileIndex=0) and directly sends this to the
        FS"; False (the driver answers 410) when that leaf is not connected to us."""
        conn = self.proxied.get(servent_id)
        if conn is None or conn.state != cs.ESTABLISHED:
            return False
        self._send(conn, Container(guid=self._new_guid(), type="push", ttl=1, hops=0,
                                   servent_id=servent_id, file_index=0, ip_address=node[0],
                                   port=node[1], extensions=[]))
        return True

    def query_status_request(self, conn_id: Any, query_guid: bytes, now: float) -> bool:
        """Ask a leaf how many hits its query ``query_guid`` got (BEAR/11v1); False when the
        leaf did not list BEAR/11 in its Messages Supported."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.state != cs.ESTABLISHED or ("BEAR", 11) not in \
                conn.peer_messages:
            return False
        self._send_vendor(conn, "BEAR", 11, 1, guid=query_guid, body={})
        return True

    def connect_back_received(self) -> None:
        """The driver accepted a connect-back (``"\\n\\n"``): our port is reachable."""
        self.reachable = True

    def _send_vendor(self, conn: Connection, vendor: str, selector: int, version: int, *,
                     guid: bytes | None = None, **fields: Any) -> None:
        """vendor_msg §2: "This specification (version 0.1) only defines messages sent with
        TTL=1 and hops=0"."""
        self._send(conn, Container(guid=guid or self._new_guid(), type="vendor_message", ttl=1,
                                   hops=0, vendor=vendor, selector=selector, version=version,
                                   payload=None, **fields))

    def _on_hsep(self, conn: Connection, d: Any, now: float) -> None:
        if conn.hsep:
            self.hsep.receive(conn.conn_id, [(t.nodes, t.files, t.kibibytes) for t in d.triples],
                              from_leaf=self.is_ultrapeer and not conn.peer_is_ultrapeer)

    def _send_hsep(self, conn: Connection) -> None:
        """HSEP §"Normal operation": our triples for ``conn``, unless unchanged since the last
        ones ("a vendor must include this optimization"). A leaf sends its OWN triple."""
        others = sum(1 for c in self._established() if not c.hsep)
        self.hsep.other = (others, 0, 0)  # HSEP: "OTHER := (n, 0, 0)"
        triples = self.hsep.triples_for(conn.conn_id, leaf=not self.is_ultrapeer)
        if triples == conn.hsep_sent:
            return
        conn.hsep_sent = triples
        self._send(conn, Container(guid=self._new_guid(), type="hsep", ttl=1, hops=0, triples=[
            dict(nodes=n, files=f, kibibytes=k) for n, f, k in triples]))

    def _send_up_table(self, conn: Connection, now: float) -> None:
        """ultrapeer_qrp §: our route table towards an ultrapeer: our files' keywords and
        every leaf's complete table merged, RESET then PATCH."""
        version = self._qrp_version
        if self._up_qrp_messages is None or self._up_qrp_messages[0] != version:
            words = [w for f in self.shared for w in keywords(f.name) + [f.urn]]
            table = RouteTable.from_keywords(words, table_length=self.qrp_table_length)
            for leaf in self._established():
                if not leaf.peer_is_ultrapeer and leaf.route_table.complete:
                    assert leaf.route_table.table is not None
                    table.merge(leaf.route_table.table)
            self._up_qrp_messages = (version, table.update_messages())
        for message in self._up_qrp_messages[1]:
            self._send(conn, Container(guid=self._new_guid(), type="route_table_update",
                                       ttl=1, hops=0, **message))
        conn.qrp_version = version
        conn.next_qrp = now + QRP_UPDATE_INTERVAL

    def _forward(self, conn: Connection, d: Any) -> None:
        if conn.state != cs.ESTABLISHED or d.ttl <= 1:
            return
        self._send(conn, Container(d, ttl=d.ttl - 1, hops=d.hops + 1))

    def _answer(self, conn: Connection | None, query: Any, now: float, *,
                reply: Any = None) -> None:
        """HUGE §3 and the 0.4 rules: a QueryHit for the files matching every keyword or urn,
        sent on ``conn`` (or handed to ``reply``: a GUESS query's hits go over UDP)."""
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
                                          private_data=b"",
                                          private_extensions=self._push_proxy_extensions(),
                                          xml=None, servent_id=self.guid))
        if reply is not None:
            reply(hit)
            return
        assert conn is not None
        if self.udp is not None and query.min_speed.mark and query.min_speed.oob_reply and \
                query.hops >= 2 and oob_address(query.guid)[1]:
            # out-of-band §C and §G.1: hits for a query of 2 hops or more go by UDP, after
            # a Reply Number and the querier's Ack
            self.udp.offer(hit, now)
            return
        self._send(conn, hit)

    def _push_proxy_extensions(self) -> list[Container] | None:
        """push_proxy §4.1: a firewalled servent with push proxies "attaches a new GGEP
        extension" ``PUSH`` to its hits, "an array of IP/Ports" (in the QHD private area, as
        gtk-gnutella puts its GGEP there)."""
        if not self.firewalled or not self.push_proxies:
            return None
        proxies = [dict(ip=ip, port=port) for ip, port in list(self.push_proxies.values())[:4]]
        return [Container(kind="ggep", separator=None,
                          extensions=[extension("PUSH", value=proxies)])]

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
                        remote_ip: str | None, now: float) -> Connection:
        old = self.connections.get(conn_id)
        if old is not None and old.state != cs.CLOSED:
            raise LocalProtocolError(f"connection {conn_id!r} already open")
        conn = Connection(self, conn_id, state, outgoing=outgoing, remote_ip=remote_ip, now=now)
        self.connections[conn_id] = conn
        return conn

    def _established(self) -> list[Connection]:
        return [c for c in self.connections.values() if c.state == cs.ESTABLISHED]

    def _write_handshake(self, conn: Connection, block: dict) -> None:
        conn._write(Handshake.build(block))

    def _send(self, conn: Connection, d: Any) -> None:
        conn._write(Descriptor.build(d))
        self.sent[d["type"]] += 1

    def _keep_alive(self, conn: Connection, now: float) -> None:
        """PING_INTERVAL elapsed on ``conn``: a TTL 1 ping, answered by the neighbour's pong."""
        guid = self._new_guid()
        self.own_pings.add(guid, _LOCAL, now)
        self._send(conn, Container(guid=guid, type="ping", ttl=1, hops=0, extensions=[]))

    def _bye(self, conn: Connection, code: int, reason: str, now: float) -> None:
        if conn.state == cs.ESTABLISHED:
            # bye §3: "A Bye packet must be sent with TTL=1 [...] and hop=0".
            self._send(conn, Container(guid=self._new_guid(), type="bye", ttl=1, hops=0,
                                       code=code, message=f"{reason}\r\nServer: {USER_AGENT}"
                                       "\r\n\r\n"))
            conn._closing(code, reason, now)
        elif conn.state in cs.HANDSHAKE_STATES:
            conn._end(cs.ABORTED, code, reason, by_peer=False)

    def _forget(self, conn: Connection) -> None:
        """The connection is closing: its routes and its QRP table (up to
        ``MAX_TABLE_LENGTH`` bytes) go now, not when the driver removes it."""
        self.routes.forget_connection(conn)
        self.push_routes.forget_connection(conn)
        self.hsep.remove(conn.conn_id)  # HSEP §"Disconnecting"
        self.push_proxies.pop(conn.conn_id, None)
        for guid in [g for g, c in self.proxied.items() if c is conn]:
            del self.proxied[guid]
        if not conn.peer_is_ultrapeer and conn.route_table.complete:
            self._qrp_version += 1  # the leaf's keywords leave our ultrapeer table
        conn.route_table = RouteTableReceiver()
        conn.pings.clear()
        conn.dynamic_queries.clear()


def _bounded_set(table: OrderedDict, key: Any, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_QUERY_STATUS:
        table.popitem(last=False)


def _upgrade(headers: Headers) -> bool:
    """gnet-TLS-upgrade §2: ``Connection: Upgrade`` (case-insensitive)."""
    return "upgrade" in [t.lower() for t in headers.tokens("Connection")]


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def _header_int(value: str | None, low: int, high: int) -> int | None:
    """A handshake header's number clamped to ``low..high``; None when absent or not one."""
    try:
        return min(high, max(low, int((value or "").strip())))
    except ValueError:
        return None


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _urns(query: Any) -> list[str]:
    return [p.text for p in query.get("extensions") or () if p.kind == "urn"]
