"""The server side of libp2p's Kademlia DHT (``/ipfs/kad/1.0.0``) on the shared routing table.

ipfs-kad-dht.md: the keyspace is 256 bits, "the Kademlia node identifier is computed as the
digest of the SHA2-256 hash function of the binary representation of the Peer ID" and a CID's
identifier is the SHA2-256 of its multihash (§Kademlia Keyspace, §Content Kademlia Identifier);
"k = 20" (§Bucket Size). §Server behavior: answer with "the k closest DHT Servers [...] stored in
its Routing Table", not including itself nor the requester. §Content Provider Advertisement:
before storing a provider record, "verify that key is set, and doesn't exceed 80 bytes" and
"discard providerPeers whose Peer ID is not matching the sender's Peer ID"; "if verification
fails, the server MUST close the stream without sending a response"; records live 48 h
(§Provide Validity) and provider addresses 24 h (§Provider Addresses TTL). §RPC Messages: each
message is prefixed by its varint length and "implementations MUST handle additional RPC
request messages on an incoming stream".

The routing table and the XOR metric are :mod:`p2pkit.kademlia`'s (the same code the Mainline
DHT uses, with 256-bit ids and k = 20). Values (``PUT_VALUE``/``GET_VALUE``, libp2p kad-dht
§RPC messages) go through :mod:`p2pkit.ipfs.dht_records`: ``/pk/`` and ``/ipns/`` records are
validated before they are stored ("DHT Servers MUST verify the validity of each record before
accepting it", ipfs-kad-dht §Value Storage and Retrieval), other namespaces refused; a
``PUT_VALUE`` whose ``key`` differs from its record's is refused too.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox
from p2pkit.errors import LimitExceeded, ParseError, RemoteProtocolError
from p2pkit.ipfs.dht_records import RecordStore
from p2pkit.ipfs.kad_dht_messages import KadMessageFrame
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.kademlia.routing import RoutingTable

__all__ = ["ID_BITS", "K", "PROTOCOL_ID", "KadDhtServer", "KadStream", "RequestRefused",
           "frame_length", "kademlia_id", "provider_key_valid"]

PROTOCOL_ID = "/ipfs/kad/1.0.0"
#: "a keyspace of length m=256".
ID_BITS = 256
#: §Bucket Size: k = 20.
K = 20
#: "Verify that key is set, and doesn't exceed 80 bytes in size".
MAX_PROVIDER_KEY = 80
#: §Provide Validity: "a Provide Validity of 48h".
PROVIDE_VALIDITY = 48 * 3600.0
#: §Provider Addresses TTL: "persist the multiaddresses of providers for 24h".
PROVIDER_ADDRS_TTL = 24 * 3600.0
#: Provider keys kept (the oldest is dropped beyond), and providers kept per key.
MAX_PROVIDER_KEYS = 100_000
MAX_PROVIDERS_PER_KEY = 64
#: Addresses kept per provider or peer.
MAX_ADDRS = 16


def kademlia_id(key: bytes) -> bytes:
    """The 256-bit Kademlia identifier of a peer id's or a multihash's bytes: SHA2-256.

    >>> from p2pkit.ipfs.peer_id import PeerId
    >>> pid = PeerId.from_text("12D3KooWLU2znyJMtDiHArqAGbZn8CgUGp92kxDBtefftEEaHSZS")
    >>> kademlia_id(pid.multihash).hex()[:16]  # ipfs-kad-dht.md §Kademlia Keyspace
    'e43d28f0996557c0'
    """
    return hashlib.sha256(key).digest()


def provider_key_valid(key: bytes) -> bool:
    """libp2p kad-dht §RPC messages, ADD_PROVIDER: "The target node verifies `key` is a valid
    CID". A whole CID or its multihash (what go-libp2p-kad-dht and js-libp2p put there) is
    accepted; anything else is not recorded."""
    from p2pkit.ipfs.cid import Cid
    from p2pkit.ipfs.multihash import Multihash

    for parse in (Multihash.parse, Cid.from_bytes):
        try:
            parse(key)
            return True
        except ParseError:
            continue
    return False


@dataclass
class _Provider:
    addrs: list[bytes]
    stored: float


@dataclass(frozen=True, kw_only=True)
class RequestRefused(Event):
    """A request the server did not answer; the stream must be closed (or reset)."""

    reason: str


@dataclass
class KadDhtServer:
    """The DHT server's state and its answers, sans-I/O: a routing table of DHT servers, the
    provider records, and :meth:`handle` for one request."""

    own: PeerId
    k: int = K
    table: RoutingTable = field(init=False)
    #: Kademlia id -> (peer id bytes, its multiaddrs (bytes)).
    peers: dict[bytes, tuple[bytes, list[bytes]]] = field(default_factory=dict)
    #: multihash (the provider key) -> peer id bytes -> provider.
    providers: OrderedDict[bytes, dict[bytes, _Provider]] = field(default_factory=OrderedDict)
    #: ``/pk/`` and ``/ipns/`` records (PUT_VALUE/GET_VALUE).
    values: RecordStore = field(default_factory=RecordStore)
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = RoutingTable(kademlia_id(self.own.multihash), k=self.k, id_bits=ID_BITS)

    # -- the routing table -------------------------------------------------------------------

    def add_server(self, peer: PeerId, addrs: Sequence[Multiaddr], now: float) -> bool:
        """A peer that answered as a DHT server (ipfs-kad-dht §Client and Server Mode: only
        servers enter the table). Returns whether it is in the table."""
        tcp = None
        for addr in addrs:
            ip = next((v for n, v in addr if n in ("ip4", "ip6")), None)
            if ip is not None and any(n == "tcp" for n, _ in addr):
                tcp = (str(ip), addr.value_for("tcp"))
                break
        if tcp is None:
            return False
        kid = kademlia_id(peer.multihash)
        entry = self.table.seen_response(kid, tcp, now)
        if entry is None:
            return False
        self.peers[kid] = (peer.multihash, [bytes(a) for a in addrs[:MAX_ADDRS]])
        return True

    def closest(self, key: bytes, count: int, *, exclude: Sequence[bytes] = ()) -> list[dict]:
        """``Peer`` entries of the ``count`` closest servers to ``key``'s Kademlia id, without
        ``exclude`` (peer id bytes; §Server behavior: "SHOULD NOT include itself, nor the
        requester")."""
        skip = {kademlia_id(p) for p in exclude}
        out = []
        for entry in self.table.closest(kademlia_id(key), count + len(skip)):
            if entry.id in skip or entry.id not in self.peers:
                continue
            pid, addrs = self.peers[entry.id]
            out.append({"id": pid, "addrs": addrs, "connection": "NOT_CONNECTED"})
            if len(out) == count:
                break
        return out

    # -- requests ----------------------------------------------------------------------------

    def handle(self, request: Any, sender: PeerId, now: float) -> dict | None:
        """The answer to ``request`` (a parsed ``Message``) from ``sender``, or ``None`` when
        the stream must be closed without an answer."""
        kind = request.type
        self.stats[str(kind)] = self.stats.get(str(kind), 0) + 1
        key = request.key
        requester = [sender.multihash]
        if kind == "PING":
            return {"type": "PING"}
        if kind == "FIND_NODE":
            # the key is a peer id (FindPeer) or any key (GetClosestPeers)
            return {"type": "FIND_NODE", "key": key,
                    "closerPeers": self.closest(key, self.k, exclude=requester)}
        if kind == "GET_PROVIDERS":
            return {"type": "GET_PROVIDERS", "key": key,
                    "providerPeers": self._providers_of(key, now),
                    "closerPeers": self.closest(key, self.k, exclude=requester)}
        if kind == "ADD_PROVIDER":
            return self._add_provider(request, sender, now)
        if kind == "GET_VALUE":
            # "record is set to the value for the given key (if found in the datastore)"
            answer = {"type": "GET_VALUE", "key": key,
                      "closerPeers": self.closest(key, self.k, exclude=requester)}
            value = self.values.get(key, now) if key else None
            if value is not None:
                answer["record"] = {"key": key, "value": value,
                                    "timeReceived": self.values.received(key)}
            return answer
        if kind == "PUT_VALUE":
            return self._put_value(request, now)
        return None  # unknown types: close the stream

    def _put_value(self, request: Any, now: float) -> dict | None:
        """§PUT_VALUE: "key on Message is set to equal key of the Record. The target node
        validates record, and if it is valid, it stores it in the datastore and as a response
        echoes the request"; an invalid record closes the stream unanswered."""
        record = request.record
        if record is None or not request.key or record.key != request.key:
            return None
        try:
            self.values.put(record.key, record.value, now)
        except ParseError:
            self.stats["rejected_values"] = self.stats.get("rejected_values", 0) + 1
            return None
        return {"type": "PUT_VALUE", "key": request.key,
                "record": {"key": record.key, "value": record.value}}

    def _add_provider(self, request: Any, sender: PeerId, now: float) -> dict | None:
        key = request.key
        if not key or len(key) > MAX_PROVIDER_KEY or not provider_key_valid(key):
            return None  # "The target node verifies `key` is a valid CID"
        mine = [p for p in request.providerPeers if p.id == sender.multihash]
        if not mine:
            return None
        self.add_provider(key, sender, [a for p in mine for a in p.addrs], now)
        # "It responds by echoing the request to confirm success"
        return {"type": "ADD_PROVIDER", "key": key,
                "providerPeers": [{"id": p.id, "addrs": list(p.addrs)} for p in mine]}

    def add_provider(self, key: bytes, provider: PeerId, addrs: Sequence[bytes],
                     now: float) -> None:
        """Store (or refresh) ``provider`` for ``key`` (a multihash), with its multiaddrs
        (bytes); our own content is provided this way too."""
        if not key or len(key) > MAX_PROVIDER_KEY:
            raise LimitExceeded(f"provider key of {len(key)} bytes (1 to {MAX_PROVIDER_KEY})",
                                protocol="kad-dht")
        self._expire(now)
        records = self.providers.get(key)
        if records is None:
            if len(self.providers) >= MAX_PROVIDER_KEYS:
                self.providers.popitem(last=False)
            records = self.providers[key] = {}
        if provider.multihash not in records and len(records) >= MAX_PROVIDERS_PER_KEY:
            oldest = min(records, key=lambda p: records[p].stored)
            del records[oldest]
        records[provider.multihash] = _Provider(addrs=list(addrs)[:MAX_ADDRS], stored=now)
        self.providers.move_to_end(key)

    def _providers_of(self, key: bytes, now: float) -> list[dict]:
        records = self.providers.get(key, {})
        out = []
        for pid, provider in list(records.items()):
            age = now - provider.stored
            if age >= PROVIDE_VALIDITY:
                del records[pid]
                continue
            addrs = provider.addrs if age < PROVIDER_ADDRS_TTL else []
            out.append({"id": pid, "addrs": addrs, "connection": "NOT_CONNECTED"})
        return out

    def _expire(self, now: float) -> None:
        """Drop provider keys whose records all expired, oldest keys first."""
        while self.providers:
            key, records = next(iter(self.providers.items()))
            if any(now - p.stored < PROVIDE_VALIDITY for p in records.values()):
                return
            del self.providers[key]


class KadStream(Outbox):
    """One inbound ``/ipfs/kad/1.0.0`` stream: length-prefixed requests in, answers out
    (several requests per stream are handled, §RPC Messages)."""

    def __init__(self, server: KadDhtServer, sender: PeerId) -> None:
        self.server = server
        self.sender = sender
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self.closed = False

    def receive_data(self, data: bytes, now: float) -> None:
        if self.closed:
            return
        self._buffer += data
        while self._buffer and not self.closed:
            try:
                length = frame_length(self._buffer)
            except ParseError as e:  # LimitExceeded included
                raise RemoteProtocolError(f"kad-dht: {e}") from None
            if length is None or len(self._buffer) < length:
                return
            try:
                request = KadMessageFrame.parse(bytes(self._buffer[:length]))
            except ParseError as e:
                raise RemoteProtocolError(f"kad-dht: {e}") from None
            del self._buffer[:length]
            answer = self.server.handle(request, self.sender, now)
            if answer is None:
                self.closed = True
                self._events.append(RequestRefused(reason=f"{request.type} not answered"))
                return
            self._out += KadMessageFrame.build(answer)

    def next_event(self) -> Event | NeedData:
        return self._events.popleft() if self._events else NEED_DATA



def frame_length(buffer: bytearray) -> int | None:
    """Bytes of the request frame at the start of ``buffer``; None while incomplete."""
    from p2pkit.ipfs.kad_dht_messages import MAX_KAD_MESSAGE_LENGTH
    from p2pkit.ipfs.protobuf import delimited_frame_length

    return delimited_frame_length(buffer, MAX_KAD_MESSAGE_LENGTH)
