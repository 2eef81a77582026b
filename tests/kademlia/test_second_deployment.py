"""A second deployment of :mod:`p2pkit.kademlia`: libp2p kad-dht's parameters on a toy wire.

libp2p-ipfs/ipfs-kad-dht.md §Kademlia Keyspace: "the IPFS Kademlia DHT uses a keyspace of length
m=256"; §Bucket Size: "The IPFS Kademlia DHT uses a bucket size of k = 20"; libp2p-kad-dht.md
§Alpha concurrency parameter: "a default value of 10". The routing table and the lookup are
the ones the Mainline node runs; the toy node below brings its own (deliberately trivial)
datagram format and runs on :class:`p2pkit.core.MemoryNetwork`. No KRPC, no bencode.
"""

from __future__ import annotations

import ast
import random
import socket
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

import p2pkit.kademlia
from p2pkit.core import NEED_DATA, DatagramCore, DatagramEndpoint, Event, MemoryNetwork, NeedData
from p2pkit.errors import LocalProtocolError
from p2pkit.kademlia.ids import distance
from p2pkit.kademlia.lookup import Lookup
from p2pkit.kademlia.routing import RoutingTable

ID_BITS, K, ALPHA = 256, 20, 10
ID_SIZE = ID_BITS // 8
TIMEOUT = 1.0
Address = tuple[str, int]


# ---- the toy deployment: wire "Q" t id target / "A" t id (id ip port)* ---------------------

def _contact(node_id: bytes, addr: Address) -> bytes:
    return node_id + socket.inet_aton(addr[0]) + addr[1].to_bytes(2, "big")


def _contacts(data: bytes) -> list[tuple[bytes, Address]]:
    size = ID_SIZE + 6
    return [(data[i:i + ID_SIZE],
             (socket.inet_ntoa(data[i + ID_SIZE:i + ID_SIZE + 4]),
              int.from_bytes(data[i + ID_SIZE + 4:i + size], "big")))
            for i in range(0, len(data) - size + 1, size)]


@dataclass(frozen=True, kw_only=True)
class FindNodeCompleted(Event):
    """A toy FIND_NODE lookup ended."""

    target: bytes
    closest: tuple[bytes, ...]
    hops: int
    queries: int


class ToyNode:
    """A :class:`~p2pkit.core.DatagramCore` on the Kademlia algorithm with a toy wire."""

    def __init__(self, node_id: bytes) -> None:
        self.id = node_id
        self.table = RoutingTable(node_id, k=K, id_bits=ID_BITS)
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        #: t -> (lookup, queried id or None for an address, address, deadline)
        self._pending: dict[bytes, tuple[Lookup, bytes | None, Address, float]] = {}
        self._next_t = 0

    def find_node(self, target: bytes, now: float, bootstrap: tuple[Address, ...] = ()) -> None:
        lookup = Lookup(target, k=K, alpha=ALPHA, id_bits=ID_BITS)
        lookup.seed(self.table, now)
        for addr in bootstrap:
            self._ask(lookup, None, addr, now)
            lookup.address_queried()
        self._advance(lookup, now)

    def _ask(self, lookup: Lookup, node_id: bytes | None, addr: Address, now: float) -> None:
        self._next_t += 1
        t = self._next_t.to_bytes(2, "big")
        self._pending[t] = (lookup, node_id, addr, now + TIMEOUT)
        self._out.append((b"Q" + t + self.id + lookup.target, addr))

    def _advance(self, lookup: Lookup, now: float) -> None:
        for candidate in lookup.next_queries():
            self._ask(lookup, candidate.id, candidate.addr, now)
        if lookup.finished and not any(p[0] is lookup for p in self._pending.values()):
            self._events.append(FindNodeCompleted(
                target=lookup.target, closest=tuple(c.id for c in lookup.closest()),
                hops=lookup.hops, queries=lookup.queries_sent))

    # the DatagramCore surface
    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        kind, t, sender = data[:1], data[1:3], data[3:3 + ID_SIZE]
        if kind == b"Q":
            target = data[3 + ID_SIZE:3 + 2 * ID_SIZE]
            near = self.table.closest(target, K, now=now)
            self._out.append((b"A" + t + self.id + b"".join(_contact(e.id, e.addr) for e in near),
                              addr))
            self.table.seen_response(sender, addr, now)  # a toy: a query proves liveness
            return
        pending = self._pending.pop(t, None)
        if kind != b"A" or pending is None or pending[2] != addr:
            return
        lookup, node_id, _, _ = pending
        self.table.seen_response(sender, addr, now)
        nodes = [(i, a) for i, a in _contacts(data[3 + ID_SIZE:]) if i != self.id]
        if node_id is None:
            lookup.address_answered(sender, addr, nodes)
        else:
            lookup.responded(node_id, nodes)
        self._advance(lookup, now)

    def next_event(self) -> Event | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return min((p[3] for p in self._pending.values()), default=None)

    def handle_timer(self, now: float) -> None:
        for t, (lookup, node_id, _, deadline) in list(self._pending.items()):
            if deadline <= now:
                del self._pending[t]
                if node_id is None:
                    lookup.address_failed()
                else:
                    self.table.failed(node_id, now)
                    lookup.failed(node_id, timeout=True)
                self._advance(lookup, now)


def toy_network(n: int, *, seed: int, loss: float = 0.0
                ) -> tuple[MemoryNetwork, list[DatagramEndpoint], list[list[Event]]]:
    """``n`` toy nodes on one MemoryNetwork, each joined by a lookup of its own id through
    the first one (Kademlia §2.3 join); ``loss`` applies once all have joined."""
    rng = random.Random(seed)
    net = MemoryNetwork(seed=seed, latency=(0.01, 0.05))
    hosts, events = [], []
    for i in range(n):
        seen: list[Event] = []
        node = ToyNode(rng.randbytes(ID_SIZE))
        hosts.append(DatagramEndpoint(net, (f"10.1.{i >> 8}.{i & 0xFF}", 4001), node,
                                      seen.append))
        events.append(seen)
        if i:
            node.find_node(node.id, net.now, bootstrap=(hosts[0].addr,))
            hosts[i].pump()
            net.run()
    for seen in events:
        seen.clear()
    net.loss = loss
    return net, hosts, events


# ---- tests ---------------------------------------------------------------------------------

def test_the_toy_node_is_a_datagram_core():
    assert isinstance(ToyNode(bytes(ID_SIZE)), DatagramCore)


def test_a_256_bit_k20_table_splits_keeps_k_and_orders_by_xor():
    rng = random.Random(5)
    own = rng.randbytes(ID_SIZE)
    table = RoutingTable(own, k=K, id_bits=ID_BITS)
    ids = [rng.randbytes(ID_SIZE) for _ in range(600)]
    for i, nid in enumerate(ids):
        table.seen_response(nid, ("10.0.0.1", i), now=0.0)
    assert len(table.buckets) > 4 and all(len(b.nodes) <= K for b in table.buckets)
    assert sum(len(b.replacements) for b in table.buckets) > 0
    # buckets tile the 256-bit space
    assert table.buckets[0].low == 0 and table.buckets[-1].high == 1 << ID_BITS
    assert all(a.high == b.low for a, b in zip(table.buckets, table.buckets[1:]))
    target = rng.randbytes(ID_SIZE)
    kept = sorted((e.id for e in table), key=lambda x: distance(x, target))
    assert [e.id for e in table.closest(target, K)] == kept[:K]
    stale = table.buckets[-1]
    rid = stale.random_id(rng)
    assert len(rid) == ID_SIZE and stale.covers(int.from_bytes(rid, "big"))
    # a 160-bit id is not an id of this deployment
    assert table.seen_response(bytes(20), ("10.0.0.1", 1), now=0.0) is None
    with pytest.raises(LocalProtocolError):
        RoutingTable(bytes(20), k=K, id_bits=ID_BITS)
    with pytest.raises(LocalProtocolError):
        Lookup(bytes(20), k=K, alpha=ALPHA, id_bits=ID_BITS)


def test_lookups_converge_on_the_true_k_closest_over_memory_network():
    net, hosts, events = toy_network(120, seed=7)
    ids = [h.core.id for h in hosts]
    assert min(len(h.core.table) for h in hosts) >= K
    rng = random.Random(8)
    for _ in range(15):
        origin = rng.randrange(len(hosts))
        target = rng.randbytes(ID_SIZE)
        hosts[origin].core.find_node(target, net.now)
        hosts[origin].pump()
        net.run()
        [done] = events[origin]
        events[origin].clear()
        others = [i for i in ids if i != ids[origin]]
        assert list(done.closest) == sorted(others, key=lambda x: distance(x, target))[:K]
        assert done.queries >= K and done.hops >= 1
    assert net.lost == 0 and net.delivered == net.sent


def test_lookups_survive_loss_with_one_retry():
    net, hosts, events = toy_network(80, seed=3, loss=0.05)
    ids = [h.core.id for h in hosts]
    rng = random.Random(4)
    found = 0
    for _ in range(20):
        origin = rng.randrange(len(hosts))
        target = rng.randbytes(ID_SIZE)
        hosts[origin].core.find_node(target, net.now)
        hosts[origin].pump()
        net.run()
        [done] = events[origin]
        events[origin].clear()
        best = min((i for i in ids if i != ids[origin]), key=lambda x: distance(x, target))
        found += done.closest[0] == best
    assert net.lost > 0
    assert found >= 18


def test_kademlia_imports_nothing_of_a_deployment():
    package = Path(p2pkit.kademlia.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("p2pkit"):
                    assert name.split(".")[1] in ("kademlia", "errors"), (module.name, name)
