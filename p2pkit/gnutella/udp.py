"""Gnutella over UDP for the servent, sans-I/O: pings and pongs, out-of-band query hits, and
the UDP connect-back that tells a servent whether it is UDP-firewalled.

Specs (``specs/gnutella/``): udp_transceiver / GUESS (one descriptor per datagram, the same
header as over TCP); ping-pong § and GGEP (a UDP pong answers a ping with its GUID; as
gtk-gnutella 1.2 does, ours carries GGEP ``VC``, ``UP`` for an ultrapeer, ``DU`` its daily
uptime, and ``IPP``, cached pong addresses, when the ping asked with ``SCP``; gtk-gnutella's
``DHT``/``6`` are left out: no DHT, no IPv6 here); GUESS 0.2 as an ultrapeer (§5: ``GUE`` 0x02
in an ultrapeer's pongs; query_keys §2.x.2-§2.x.3: a TTL 1 ping with an empty ``QK`` gets a
pong carrying the querier's key, :mod:`p2pkit.gnutella.query_key`; GUESS §2.2: a UDP query
with a valid ``QK`` is acknowledged by a pong under its GUID and run, hits going back over UDP
"to the sender", the query going on to the leaves whose QRP tables match, "QK" and "SCP"
stripped (GUESS §10); a query without a valid key gets only a pong with a fresh one); out-of-band §B-§G
(a query marked with the min_speed ``oob_reply`` bit and the querier's IPv4 address in GUID
bytes 0-3 and port in bytes 13-14, little-endian; the responder sends ``LIME/12`` Reply Number
over UDP, the querier answers ``LIME/11`` Ack with the number of hits it wants, then the hits
come over UDP; "only [...] if the query is of sufficiently high hops (2 or more)");
msg/connect_back (``GTKG/7v2`` UDP Connect Back over TCP: the peer sends a UDP ping whose GUID
is the message's GUID to the port given; a servent that receives it is not UDP-firewalled).

The shape (DESIGN.md): a :class:`UdpEndpoint` is the servent's datagram core
(:meth:`receive_datagram`, :meth:`datagrams_to_send`, :meth:`next_event`, :meth:`get_timer`,
``handle_timer``); the
:class:`~p2pkit.gnutella.servent.Servent` owns it (``Servent(udp=True)``) and calls it when a TCP message concerns UDP (a GTKG/7 to answer, an
out-of-band query to answer). Every descriptor is parsed and built with
:data:`~p2pkit.gnutella.descriptors.Descriptor`.

Bounds, as the DHT node's: datagrams above :data:`MAX_DATAGRAM` are dropped unread; each source
IP address may send :data:`MAX_PER_SOURCE` datagrams per :data:`RATE_WINDOW` (the rest are
dropped), and at most :data:`MAX_SOURCES` addresses are tracked (least recently seen go first);
out-of-band answers waiting for their Ack (:data:`MAX_PENDING`, :data:`OOB_LIFETIME` seconds),
our out-of-band queries (:data:`MAX_OOB_QUERIES`) and connect-back GUIDs
(:data:`MAX_CONNECT_BACKS`) are bounded the same way.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from construct import Container

from p2pkit.core import NEED_DATA, Event, NeedData
from p2pkit.errors import ParseError, ProtocolError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import QueryHit
from p2pkit.gnutella.ggep import extension
from p2pkit.gnutella.query_key import QueryKeys

if TYPE_CHECKING:
    from p2pkit.gnutella.servent import Servent

__all__ = [
    "GUESS_VERSION",
    "MAX_CONNECT_BACKS",
    "MAX_DATAGRAM",
    "MAX_OOB_QUERIES",
    "MAX_PENDING",
    "MAX_PER_SOURCE",
    "MAX_SOURCES",
    "OOB_LIFETIME",
    "RATE_WINDOW",
    "UdpEndpoint",
    "oob_address",
    "oob_guid",
    "without_ggep",
]

Address = tuple[str, int]

#: Bytes of the largest datagram read (a descriptor header and a payload; query hits over UDP
#: stay well below, GUESS keeps datagrams small).
MAX_DATAGRAM = 16 * 1024
#: Datagrams one IP address may send per RATE_WINDOW seconds.
MAX_PER_SOURCE = 30
#: The window of MAX_PER_SOURCE, seconds.
RATE_WINDOW = 10.0
#: Source addresses whose rates are tracked at once (the least recently seen are forgotten).
MAX_SOURCES = 1024
#: out-of-band §C.3: "If no response is received in a timely fashion, the servent can forget
#: about the query": answers waiting for an Ack, and for how long.
MAX_PENDING = 256
#: Seconds an answer waits for its Ack (out-of-band §C.3).
OOB_LIFETIME = 30.0
#: Our own out-of-band queries remembered (for Reply Numbers and hits).
MAX_OOB_QUERIES = 64
#: Hits wanted for one of our queries (dynamic_query §2.5.3.1: 150 for a servent's own).
OOB_WANTED = 150
#: out-of-band §C.2: "If the payload is 255, that means [...] 255 or more".
MAX_COUNT = 255
#: Connect-back GUIDs we wait for (one per ultrapeer asked).
MAX_CONNECT_BACKS = 16
#: IPP endpoints put in a pong for a ping with SCP (gtk-gnutella sends 5 to 10).
PONG_IPP = 10
#: GUESS §5: "the current major revision number is 0 [...] the current minor revision number
#: is 2": the GUE byte, major and minor nibbles.
GUESS_VERSION = 0x02


def oob_guid(guid: bytes, address: Address) -> bytes:
    """out-of-band §B.2: ``guid`` with "Bytes 0 to 3 [...] the 4 octet bytes of the IP address.
    Bytes 13 and 14 are the little endian representation of the port."

    >>> oob_guid(bytes(16), ("127.0.0.1", 6346)).hex()
    '7f000001000000000000000000ca1800'
    """
    ip = ipaddress.IPv4Address(address[0]).packed
    return ip + guid[4:13] + address[1].to_bytes(2, "little") + guid[15:]


def oob_address(guid: bytes) -> Address:
    """The querier's address an out-of-band query's GUID carries (out-of-band §C.1)."""
    return str(ipaddress.IPv4Address(guid[:4])), int.from_bytes(guid[13:15], "little")


@dataclass
class _Pending:
    """Our hits for someone's out-of-band query, waiting for its Ack (out-of-band §C.3)."""

    address: Address
    hits: list[Container]
    expires: float


class UdpEndpoint:
    """The servent's UDP side (a datagram core; see the module docstring)."""

    def __init__(self, servent: Servent, *, started: float = 0.0) -> None:
        self.servent = servent
        self.started = started
        #: True once a peer's UDP connect-back ping reached us: unsolicited UDP arrives, we are
        #: not UDP-firewalled (out-of-band §A.2: "Servents can utilize the UDP ConnectBack").
        self.reachable = False
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        self._sources: OrderedDict[str, deque[float]] = OrderedDict()
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        #: Our out-of-band queries: GUID -> addresses we acked (hits only from those).
        self.oob_queries: OrderedDict[bytes, set[Address]] = OrderedDict()
        self._connect_backs: OrderedDict[bytes, None] = OrderedDict()
        #: GUESS query keys (an ultrapeer hands them out and checks them).
        self.query_keys = QueryKeys(servent.rng)
        #: GUESS queries run, and refused for a missing or invalid key.
        self.guess_queries = 0
        self.guess_refused = 0
        #: Datagrams dropped (too big, over the rate, unparsable), and received, by type.
        self.dropped = 0
        self.received: dict[str, int] = {}

    # --- the datagram core ------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram from ``addr``: rate-limited, parsed strictly, acted upon."""
        if len(data) > MAX_DATAGRAM or not self._admit(addr[0], now):
            self.dropped += 1
            return
        try:
            d = Descriptor.parse(data)
        except (ParseError, ProtocolError):
            self.dropped += 1
            return
        self.received[d.type] = self.received.get(d.type, 0) + 1
        if d.type == "ping":
            self._on_ping(d, addr, now)
        elif d.type == "pong":
            self.servent.pong_cache.append((("udp", addr), d))
        elif d.type == "query_hit":
            self._on_query_hit(d, addr, now)
        elif d.type == "query":
            self._on_query(d, addr, now)
        elif d.type == "vendor_message" and d.ttl == 1:  # vendor_msg §2: TTL 1, else dropped
            name = d.get("name")
            if name == "oob_reply_indication" and d.get("body") is not None:
                self._on_reply_number(d, addr)
            elif name == "oob_reply_ack" and d.get("body") is not None:
                self._on_ack(d, addr)

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Address]]:
        """(bytes, address) pairs queued since the last call."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | NeedData:
        """A :class:`~p2pkit.gnutella.events.QueryHit` that came over UDP, or NEED_DATA."""
        return self._events.popleft() if self._events else NEED_DATA

    def get_timer(self) -> float | None:
        """When the oldest waiting out-of-band answer expires."""
        if not self._pending:
            return None
        return next(iter(self._pending.values())).expires

    def handle_timer(self, now: float) -> None:
        while self._pending:
            guid, pending = next(iter(self._pending.items()))
            if pending.expires > now:
                return
            del self._pending[guid]

    # --- asked by the servent ---------------------------------------------------------------

    def expect_connect_back(self, guid: bytes) -> None:
        """We sent a GTKG/7 whose GUID is ``guid``: its ping proves we are reachable."""
        self._connect_backs[guid] = None
        while len(self._connect_backs) > MAX_CONNECT_BACKS:
            self._connect_backs.popitem(last=False)

    def ping(self, addr: Address, guid: bytes) -> None:
        """A UDP ping (msg/connect_back: the answer to a GTKG/7, under its GUID)."""
        self._send(addr, Container(guid=guid, type="ping", ttl=1, hops=0, extensions=[]))

    def send_hit(self, addr: Address, hit: Container) -> None:
        """GUESS §2.2: "it MUST send any query hits via UDP and over the same port"."""
        self._send(addr, hit)

    def oob_query(self, guid: bytes) -> None:
        """``guid`` is one of our queries marked for out-of-band hits."""
        self.oob_queries[guid] = set()
        while len(self.oob_queries) > MAX_OOB_QUERIES:
            self.oob_queries.popitem(last=False)

    def offer(self, hit: Container, now: float) -> None:
        """out-of-band §C.2: tell the querier (its address from the GUID) how many hits we
        have; they go when its Ack comes."""
        address = oob_address(hit.guid)
        if address[1] == 0 or hit.guid in self._pending:
            return
        self._pending[hit.guid] = _Pending(address, [hit], now + OOB_LIFETIME)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
        self._vendor(address, hit.guid, "LIME", 12, 2, hits=min(MAX_COUNT, len(hit.results)),
                     can_receive_unsolicited=int(self.reachable))

    # --- handlers ---------------------------------------------------------------------------

    def _admit(self, ip: str, now: float) -> bool:
        times = self._sources.pop(ip, None) or deque()
        self._sources[ip] = times  # the most recently seen last
        while times and times[0] <= now - RATE_WINDOW:
            times.popleft()
        if len(self._sources) > MAX_SOURCES:
            self._sources.popitem(last=False)
        if len(times) >= MAX_PER_SOURCE:
            return False
        times.append(now)
        return True

    def _on_ping(self, d: Any, addr: Address, now: float) -> None:
        if d.guid in self._connect_backs:  # msg/connect_back: the ping we asked a peer for
            del self._connect_backs[d.guid]
            if not self.reachable:
                self.reachable = True
                self.servent._udp_reachable()
        # query_keys §2.x.2: "Only TTL 1 pings sent over the UDP channel will be inspected for
        # the Query Key request" (GUESS ultrapeers hand keys out)
        wants_key = d.ttl == 1 and _ggep(d, "QK") is not None and self.servent.is_ultrapeer
        self._pong(d.guid, addr, now, ipp=_ggep(d, "SCP") is not None, query_key=wants_key)

    def _on_query(self, d: Any, addr: Address, now: float) -> None:
        """GUESS §2.2 and query_keys §2.x.3, as a GUESS ultrapeer (leaves drop UDP queries)."""
        servent = self.servent
        if not servent.is_ultrapeer:
            self.dropped += 1
            return
        key = _ggep(d, "QK")
        if key is None or not self.query_keys.valid(key, addr, now):
            # "If a Query arrives from a source with a invalid Query Key [...] then a valid
            # Query Key should be generated and delivered via UDP to the source in a TTL 1 pong"
            self.guess_refused += 1
            self._pong(d.guid, addr, now, query_key=True)
            return
        self.guess_queries += 1
        # §2.2.1: the acknowledging pong, "the same guid as the incoming query", with GUE
        # (ours: no other GUESS ultrapeer's pong is cached apart; "If the server has no other
        # GUESS Ultrapeer pongs, then the pong MUST be for the server itself")
        self._pong(d.guid, addr, now, ipp=_ggep(d, "SCP") is not None)
        servent.guess_query(d, addr, now)

    def _pong(self, guid: bytes, addr: Address, now: float, *, ipp: bool = False,
              query_key: bool = False) -> None:
        servent = self.servent
        ggep = [extension("VC", value=dict(vendor="P2PK", version=1))]
        if servent.is_ultrapeer:
            from p2pkit.gnutella.servent import MAX_LEAVES, MAX_ULTRAPEERS

            # GUESS §5: "Ultrapeers that support GUESS MUST advertise that fact" with "GUE"
            ggep.append(extension("GUE", value=GUESS_VERSION))
            ggep.append(extension("UP", value=dict(version=1, leaf_slots=MAX_LEAVES,
                                                   ultrapeer_slots=MAX_ULTRAPEERS)))
        # GGEP "DU": daily uptime in seconds (gtk-gnutella sends it in every UDP pong)
        ggep.append(extension("DU", value=max(0, int(min(now - self.started, 86400)))))
        if ipp:
            hosts = []
            for _, pong in reversed(servent.pong_cache):
                entry = dict(ip=pong.ip_address, port=pong.port)
                if pong.port and entry not in hosts and _ipv4(pong.ip_address):
                    hosts.append(entry)
                if len(hosts) == PONG_IPP:
                    break
            if hosts:  # GGEP "IPP": the cached pongs' addresses, for "SCP"
                ggep.append(extension("IPP", value=hosts))
        if query_key:  # query_keys §2.x.3: the key "as the n-byte payload [...] of a "QK""
            ggep.append(extension("QK", self.query_keys.key(addr, now)))
        self._send(addr, Container(
            guid=guid, type="pong", ttl=1, hops=0, port=servent.listen[1],
            ip_address=servent.listen[0], files_shared=len(servent.shared),
            kilobytes_shared=sum(f.size for f in servent.shared) // 1024,
            extensions=[Container(kind="ggep", extensions=ggep, separator=None)]))

    def _on_reply_number(self, d: Any, addr: Address) -> None:
        """out-of-band §D: Ack a Reply Number for a current query while hits are wanted."""
        acked = self.oob_queries.get(d.guid)
        if acked is None:
            return  # "old or unknown, just ignore the message"
        have = self.servent.query_hits.get(d.guid, 0)
        wanted = min(MAX_COUNT, OOB_WANTED - have, d.body.hits)
        if wanted <= 0 or len(acked) >= MAX_COUNT:
            return
        acked.add(addr)
        # "LimeWire does not support reception of LIME/11v1": v2, "completely identical"
        self._vendor(addr, d.guid, "LIME", 11, 2, wanted=wanted)

    def _on_ack(self, d: Any, addr: Address) -> None:
        """out-of-band §E: deliver "up to N Query Hits" for a current answer."""
        pending = self._pending.get(d.guid)
        if pending is None or pending.address[0] != addr[0]:
            return
        del self._pending[d.guid]
        for hit in pending.hits[: d.body.wanted]:
            self._send(addr, hit)

    def _on_query_hit(self, d: Any, addr: Address, now: float) -> None:
        """out-of-band §F: "consume them as normal" (only from servents we acked)."""
        acked = self.oob_queries.get(d.guid)
        if acked is None or addr not in acked:
            self.dropped += 1
            return
        acked.discard(addr)  # one delivery per Ack
        if self.servent.deliver_oob_proxied(d):  # a leaf's query we proxy
            return
        counts = self.servent.query_hits  # bounded by the servent: only known GUIDs updated
        if d.guid in counts:
            counts[d.guid] = min(counts[d.guid] + len(d.results), 0xFFFE)
        running = self.servent.dynamic_queries.get(d.guid)
        if running is not None:  # an ultrapeer's own dynamic query counts UDP hits too
            running[0].add_results(len(d.results))
        self._events.append(QueryHit(conn_id=("udp", addr), query_guid=d.guid, descriptor=d))

    # --- plumbing ---------------------------------------------------------------------------

    def _vendor(self, addr: Address, guid: bytes, vendor: str, selector: int, version: int,
                **body: Any) -> None:
        self._send(addr, Container(guid=guid, type="vendor_message", ttl=1, hops=0,
                                   vendor=vendor, selector=selector, version=version,
                                   payload=None, body=body))

    def _send(self, addr: Address, d: Container) -> None:
        self._out.append((Descriptor.build(d), addr))
        self.servent.sent[d["type"]] += 1


def _ggep(descriptor: Any, ext_id: str) -> bytes | None:
    """The payload of GGEP ``ext_id`` in a descriptor's extensions, or None when absent (an
    empty payload is b""): "SCP" in a ping, "support cached pongs" as gtk-gnutella's carry;
    "QK" in a ping (a key request) or a query (the key)."""
    for block in descriptor.get("extensions") or ():
        if block.get("kind") == "ggep":
            for e in block.extensions:
                if e.id == ext_id:
                    return bytes(e.payload or b"")
    return None


def without_ggep(extensions: Any, ids: set[str]) -> list[Any]:
    """``extensions`` with the GGEP ``ids`` taken out (a GGEP block left empty goes too)."""
    out = []
    for block in extensions or ():
        if block.get("kind") == "ggep":
            kept = [e for e in block.extensions if e.id not in ids]
            if not kept:
                continue
            block = Container(block, extensions=kept)
        out.append(block)
    return out


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True
