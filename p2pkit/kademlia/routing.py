"""The routing table: k-buckets over the XOR metric, with a replacement cache.

Kademlia (Maymounkov and Mazières 2002, §2.2, §2.4) as BEP 5 §Routing Table describes it for
the Mainline DHT, for any id length and bucket size (``id_bits`` and ``k`` are parameters:
Mainline 160 and 8, libp2p kad-dht 256 and 20, libp2p-ipfs/ipfs-kad-dht.md §Bucket Size).

BEP 5: "Every node maintains a routing table of known good nodes. [...] The routing table
covers the entire node ID space from 0 to 2^160. The routing table is subdivided into
"buckets" that each cover a portion of the space. An empty table has one bucket with an ID
space range of min=0, max=2^160. [...] Each bucket can only hold K nodes, currently eight,
before becoming "full." [...] When a bucket is full of known good nodes, no more nodes may be
added unless our own node ID falls within the range of the bucket. In that case, the bucket is
replaced by two new buckets each with half the range of the old bucket and the nodes from the
old bucket are distributed among the two new ones."

Node states: "A good node is a node has responded to one of our queries within the last 15
minutes. A node is also good if it has ever responded to one of our queries and has sent us a
query within the last 15 minutes. After 15 minutes of inactivity, a node becomes questionable.
Nodes become bad when they fail to respond to multiple queries in a row." (The liveness
constants below are BEP 5's; the Kademlia paper leaves them to the deployment.)

Time is passed in (``now``, seconds); the table never reads a clock.

>>> table = RoutingTable(bytes(20), k=8, id_bits=160)
>>> for i in range(1, 12):
...     _ = table.seen_response(bytes([i * 16]) + bytes(19), ("127.0.0.1", 6880 + i), now=0.0)
>>> len(table), len(table.buckets)  # the first bucket split because it held our own id
(11, 2)
>>> [n.addr[1] for n in table.closest(bytes(20), 3)]
[6881, 6882, 6883]
"""

from __future__ import annotations

import bisect
import random
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from p2pkit.kademlia.ids import check_id, id_bytes, random_id

__all__ = [
    "BAD",
    "BAD_AFTER_FAILURES",
    "GOOD",
    "QUESTIONABLE",
    "Bucket",
    "NodeEntry",
    "QUESTIONABLE_AFTER",
    "REFRESH_AFTER",
    "RoutingTable",
]

#: BEP 5: "After 15 minutes of inactivity, a node becomes questionable."
QUESTIONABLE_AFTER = 15 * 60.0
#: BEP 5: "Nodes become bad when they fail to respond to multiple queries in a row."
BAD_AFTER_FAILURES = 2
#: BEP 5: "Buckets that have not been changed in 15 minutes should be "refreshed.""
REFRESH_AFTER = 15 * 60.0
#: Up to this many candidates, :meth:`RoutingTable.closest` sorts them all rather than
#: walking buckets (sorting integers is cheaper than the walk for a small table).
FLAT_CLOSEST_MAX = 32

# A node's liveness (BEP 5 §Routing Table); derived from the time of its last answer and
# query and its failures by NodeEntry.state, so it has no transitions of its own.
GOOD = "good"
QUESTIONABLE = "questionable"
BAD = "bad"
Address = tuple[str, int]


@dataclass(eq=False)
class NodeEntry:
    """A known node: its id, address and what we know of its liveness."""

    id: bytes
    addr: Address
    last_response: float | None = None
    last_query: float | None = None
    failures: int = 0
    #: The id as an unsigned integer, for XOR distances (computed once).
    number: int = field(init=False, repr=False)
    #: True for an IPv6 address (BEP 32 keeps ``nodes6`` apart from ``nodes``).
    ipv6: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.number = int.from_bytes(self.id, "big")
        self.ipv6 = ":" in self.addr[0]

    def state(self, now: float) -> str:
        """``GOOD``, ``QUESTIONABLE`` or ``BAD`` by BEP 5's 15-minute rule."""
        if self.failures >= BAD_AFTER_FAILURES:
            return BAD
        if self.last_response is None:
            return QUESTIONABLE
        if now - self.last_response < QUESTIONABLE_AFTER:
            return GOOD
        if self.last_query is not None and now - self.last_query < QUESTIONABLE_AFTER:
            return GOOD
        return QUESTIONABLE

    @property
    def last_seen(self) -> float:
        return max(self.last_response or 0.0, self.last_query or 0.0)


@dataclass(eq=False)
class Bucket:
    """A range ``[low, high)`` of the id space with at most ``k`` nodes (least recently seen
    first) and a replacement cache of candidates for when one goes bad."""

    low: int
    high: int
    #: Bytes of an id (the table's ``id_bits`` / 8).
    size: int
    nodes: OrderedDict[bytes, NodeEntry] = field(default_factory=OrderedDict)
    replacements: OrderedDict[bytes, NodeEntry] = field(default_factory=OrderedDict)
    last_changed: float = 0.0

    def covers(self, node_id: int) -> bool:
        return self.low <= node_id < self.high

    def random_id(self, rng: random.Random) -> bytes:
        """BEP 5: refresh by "picking a random ID in the range of the bucket"."""
        return random_id(rng, self.size * 8, self.low, self.high)


class RoutingTable:
    """Buckets of up to ``k`` nodes covering the ``id_bits``-bit id space, split around our
    own id (``own_id`` is ``id_bits`` long)."""

    def __init__(self, own_id: bytes, *, k: int, id_bits: int) -> None:
        check_id(own_id, id_bits)
        if k < 1:
            raise ValueError("k is at least 1")
        self.own_id = own_id
        self._own = int.from_bytes(own_id, "big")
        self.k = k
        self.id_bits = id_bits
        self._size = id_bytes(id_bits)
        self.buckets: list[Bucket] = [Bucket(0, 1 << id_bits, self._size)]
        self._lows: list[int] = [0]
        #: Bumped whenever an entry joins or leaves the table or its failures change (what
        #: :meth:`closest` depends on); the flat lists it keeps are rebuilt after a change.
        self._changes = 0
        self._flat: dict[tuple[bool | None, bool], tuple[int, list[int], dict[int, NodeEntry]]]
        self._flat = {}

    def __len__(self) -> int:
        return sum(len(b.nodes) for b in self.buckets)

    def __iter__(self) -> Iterator[NodeEntry]:
        for bucket in self.buckets:
            yield from bucket.nodes.values()

    def __contains__(self, node_id: bytes) -> bool:
        return node_id in self.bucket_for(node_id).nodes

    def bucket_for(self, node_id: bytes) -> Bucket:
        i = bisect.bisect_right(self._lows, int.from_bytes(node_id, "big")) - 1
        return self.buckets[i]

    def get(self, node_id: bytes) -> NodeEntry | None:
        return self.bucket_for(node_id).nodes.get(node_id)

    def seen_response(self, node_id: bytes, addr: Address, now: float) -> NodeEntry | None:
        """The node answered one of our queries: it is good; insert it if there is room.

        Returns the entry when the node is in the table (else it went to the replacement
        cache, or was refused because it claims our id or another address).
        """
        return self._add(node_id, addr, now, responded=True)

    def seen_query(self, node_id: bytes, addr: Address, now: float) -> bool:
        """The node sent us a query. Returns True when it is unknown and its bucket has room:
        the caller should ping it, and insert it when it answers (spoofed sources never do)."""
        if node_id == self.own_id:
            return False
        bucket = self.bucket_for(node_id)
        entry = bucket.nodes.get(node_id)
        if entry is not None:
            if entry.addr == addr:
                entry.last_query = now
            return False
        return len(bucket.nodes) < self.k or bucket.covers(self._own) or any(
            e.state(now) == BAD for e in bucket.nodes.values())

    def failed(self, node_id: bytes, now: float) -> None:
        """A query to the node timed out; after repeated failures it is replaced."""
        bucket = self.bucket_for(node_id)
        entry = bucket.nodes.get(node_id)
        if entry is None:
            bucket.replacements.pop(node_id, None)
            return
        entry.failures += 1
        self._changes += 1
        if entry.state(now) == BAD and bucket.replacements:
            del bucket.nodes[node_id]
            _, candidate = bucket.replacements.popitem(last=True)  # most recently seen
            bucket.nodes[candidate.id] = candidate
            bucket.last_changed = now

    def remove(self, node_id: bytes) -> None:
        bucket = self.bucket_for(node_id)
        self._changes += 1
        bucket.nodes.pop(node_id, None)
        bucket.replacements.pop(node_id, None)

    def _add(self, node_id: bytes, addr: Address, now: float, responded: bool) -> NodeEntry | None:
        if node_id == self.own_id or len(node_id) != self._size:
            return None
        while True:
            bucket = self.bucket_for(node_id)
            entry = bucket.nodes.get(node_id)
            if entry is not None:
                if entry.addr != addr:
                    return None  # keep the first address: a node id is not moved by a datagram
                entry.last_response = now
                if entry.failures:
                    entry.failures = 0
                    self._changes += 1
                bucket.nodes.move_to_end(node_id)
                bucket.last_changed = now
                return entry
            entry = NodeEntry(node_id, addr, last_response=now)
            self._changes += 1  # (at worst needlessly, when it only joins the replacements)
            if len(bucket.nodes) < self.k:
                bucket.nodes[node_id] = entry
                bucket.replacements.pop(node_id, None)
                bucket.last_changed = now
                return entry
            if bucket.covers(self._own) and bucket.high - bucket.low > 1:
                self._split(bucket)
                continue
            for old_id, old in bucket.nodes.items():
                # BEP 5: "If any nodes in the bucket are known to have become bad, then one is
                # replaced by the new node."
                if old.failures >= BAD_AFTER_FAILURES:
                    del bucket.nodes[old_id]
                    bucket.nodes[node_id] = entry
                    bucket.last_changed = now
                    return entry
            bucket.replacements.pop(node_id, None)
            bucket.replacements[node_id] = entry
            while len(bucket.replacements) > self.k:
                bucket.replacements.popitem(last=False)
            return None

    def _split(self, bucket: Bucket) -> None:
        i = self.buckets.index(bucket)
        middle = (bucket.low + bucket.high) // 2
        lower = Bucket(bucket.low, middle, self._size)
        upper = Bucket(middle, bucket.high, self._size)
        for half in (lower, upper):
            half.last_changed = bucket.last_changed
        for source, attr in ((bucket.nodes, "nodes"), (bucket.replacements, "replacements")):
            for node_id, entry in source.items():
                half = lower if int.from_bytes(node_id, "big") < middle else upper
                getattr(half, attr)[node_id] = entry
        self.buckets[i:i + 1] = [lower, upper]
        self._lows[i:i + 1] = [lower.low, upper.low]

    def closest(self, target: bytes, count: int, *, include_bad: bool = False,
                now: float | None = None, ipv6: bool | None = None) -> list[NodeEntry]:
        """The ``count`` known nodes closest to ``target`` by XOR, closest first (bad ones left
        out when ``now`` is given; only one address family with ``ipv6``).

        A table of up to ``FLAT_CLOSEST_MAX`` such nodes sorts the ids of all of them
        (kept as integers between changes of the table). A larger one is walked bucket by
        bucket: every bucket is an aligned power-of-two range of ids, and XOR with the target
        maps an aligned range onto another one, so the distances of a bucket's nodes form one
        interval, starting at ``(target ^ low)`` with the low bits cleared, and the intervals
        of two buckets never overlap. Buckets are visited by that smallest distance and the
        walk stops as soon as ``count`` nodes are found.
        """
        t = int.from_bytes(target, "big")
        skip_bad = not include_bad and now is not None
        flat = self._flat.get((ipv6, skip_bad))
        if flat is None or flat[0] != self._changes:
            flat = self._flatten(ipv6, skip_bad)
        _, numbers, entries = flat
        if len(numbers) <= FLAT_CLOSEST_MAX:
            return [entries[n] for n in sorted(numbers, key=t.__xor__)[:count]]
        order = sorted(
            (((t ^ b.low) & -(b.high - b.low), i) for i, b in enumerate(self.buckets)
             if b.nodes))
        out: list[NodeEntry] = []
        buckets = self.buckets
        for _, i in order:
            found = [e for e in buckets[i].nodes.values()
                     if not (skip_bad and e.failures >= BAD_AFTER_FAILURES)
                     and (ipv6 is None or e.ipv6 is ipv6)]
            if not found:
                continue
            found.sort(key=lambda e: e.number ^ t)
            out += found[: count - len(out)]
            if len(out) >= count:
                break
        return out

    def _flatten(self, ipv6: bool | None, skip_bad: bool
                 ) -> tuple[int, list[int], dict[int, NodeEntry]]:
        entries = {e.number: e for e in self
                   if not (skip_bad and e.failures >= BAD_AFTER_FAILURES)
                   and (ipv6 is None or e.ipv6 is ipv6)}
        flat = (self._changes, list(entries), entries)
        self._flat[(ipv6, skip_bad)] = flat
        return flat

    def questionable(self, now: float) -> list[NodeEntry]:
        """Nodes to ping (BEP 5: "the least recently seen node is pinged"): questionable
        entries, least recently seen first."""
        out = [e for e in self if e.state(now) == QUESTIONABLE]
        out.sort(key=lambda e: e.last_seen)
        return out

    def stale_buckets(self, now: float) -> list[Bucket]:
        """Buckets unchanged for :data:`REFRESH_AFTER` seconds (to refresh with a lookup)."""
        return [b for b in self.buckets if now - b.last_changed >= REFRESH_AFTER]
