"""Many DHT nodes in one process over an in-memory transport (Kademlia, BEP 5).

A driver, like the UDP server: it holds no protocol logic. It moves the datagrams that each
:class:`~p2pkit.dht.node.Node` emits to their destination after a seeded random latency,
drops a seeded fraction of them, and calls each node's timer; simulated time jumps from one
event to the next, so a 10,000-node network runs on a laptop.

>>> net = Network(seed=1)
>>> nodes = [net.add_node() for _ in range(20)]
>>> for node in nodes[1:]:
...     _ = node.bootstrap([net.address_of(nodes[0])], net.now)
...     net.kick(node)
>>> net.run()
>>> len([e for n in nodes[1:] for e in net.events(n)])
19
>>> for node in nodes[1:]:  # a second lookup of their own id fills the tables
...     _ = node.find_node(node.id, net.now)
...     net.kick(node)
>>> net.run()
>>> min(len(n.table) for n in nodes)
8
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pkit.dht.node import LookupDone, Node
from p2pkit.kademlia.routing import distance

__all__ = ["LookupStats", "Network", "SimulationReport", "measure_lookups", "simulate"]

Address = tuple[str, int]
#: Neighbours by id each node learns from :meth:`Network.populate` (besides random nodes).
POPULATE_NEIGHBOURS = 16
#: Random nodes each node learns from :meth:`Network.populate`.
POPULATE_RANDOM = 160


class Network:
    """Nodes, a queue of in-flight datagrams and timers, and a simulated clock."""

    def __init__(self, *, seed: int, latency: tuple[float, float] = (0.01, 0.1),
                 loss: float = 0.0, query_timeout: float = 1.0,
                 maintenance: bool = False) -> None:
        self.rng = random.Random(seed)
        self.latency = latency
        self.loss = loss
        self.query_timeout = query_timeout
        #: Whether nodes run BEP 5 maintenance (pings, bucket refreshes) every 60 s of
        #: simulated time; off by default so measurements count only the lookups.
        self.maintenance = maintenance
        self.now = 0.0
        self.nodes: dict[Address, Node] = {}
        self._addresses: dict[int, Address] = {}
        self._queue: list[tuple[float, int, Address, bytes | None, Address | None]] = []
        self._scheduled: dict[Address, float] = {}
        self._seq = 0
        self._events: dict[Address, list[Any]] = {}
        self._in_flight = 0
        #: Nodes that had queries pending when last touched.
        self._busy: set[Address] = set()
        #: Datagrams sent, delivered, lost in transit, and sent to nodes that are gone.
        self.sent = self.delivered = self.lost = self.undeliverable = 0

    def add_node(self, **options: Any) -> Node:
        """A new node at the next free 10.x.y.z:6881 address (BEP 42 exempts 10/8)."""
        n = len(self._addresses) + 1
        addr = (f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}", 6881)
        options.setdefault("query_timeout", self.query_timeout)
        if not self.maintenance:
            options.setdefault("maintenance_interval", None)
        node = Node(rng=random.Random(self.rng.getrandbits(64)), now=self.now, **options)
        self.nodes[addr] = node
        self._addresses[id(node)] = addr
        self._events[addr] = []
        self._schedule(addr)
        return node

    def address_of(self, node: Node) -> Address:
        return self._addresses[id(node)]

    def remove(self, node: Node) -> None:
        """The node leaves without a word (churn): datagrams to it vanish."""
        self.nodes.pop(self._addresses[id(node)], None)

    def populate(self) -> None:
        """Fill every routing table directly, as a long-running network would have: the
        closest ids around each node and random others (the table's bucket rules decide what
        stays). Saves the cost of N bootstrap lookups before measuring."""
        live = list(self.nodes.items())
        ordered = sorted(live, key=lambda item: item[1].id)
        for i, (_, node) in enumerate(ordered):
            lo, hi = max(0, i - POPULATE_NEIGHBOURS), i + POPULATE_NEIGHBOURS + 1
            known = ordered[lo:hi] + self.rng.sample(live, min(POPULATE_RANDOM, len(live)))
            for addr, other in known:
                if other is not node:
                    node.table.seen_response(other.id, addr, self.now)

    def events(self, node: Node) -> list[Any]:
        """Events the node produced so far (and forget them)."""
        addr = self._addresses[id(node)]
        out, self._events[addr] = self._events[addr], []
        return out

    def _push(self, at: float, dst: Address, data: bytes | None, src: Address | None) -> None:
        self._seq += 1
        if data is not None:
            self._in_flight += 1
        heapq.heappush(self._queue, (at, self._seq, dst, data, src))

    def _schedule(self, addr: Address) -> None:
        node = self.nodes.get(addr)
        if node is None:
            return
        at = node.get_timer()
        if at < self._scheduled.get(addr, math.inf):
            self._scheduled[addr] = at
            self._push(at, addr, None, None)

    def _drain(self, addr: Address) -> None:
        node = self.nodes.get(addr)
        if node is None:
            return
        for data, dst in node.datagrams_to_send(self.now):
            self.sent += 1
            if self.rng.random() < self.loss:
                self.lost += 1
                continue
            self._push(self.now + self.rng.uniform(*self.latency), dst, data, addr)
        while (event := node.next_event()) is not None:
            self._events[addr].append(event)
        if node.pending_queries:
            self._busy.add(addr)
        else:
            self._busy.discard(addr)
        self._schedule(addr)

    def kick(self, node: Node) -> None:
        """Send what ``node`` queued after a call made from outside (an operation start)."""
        self._drain(self._addresses[id(node)])

    def run(self, until: float | None = None,
            stop: Callable[[], bool] | None = None) -> None:
        """Process events in time order until none are left before ``until`` (or ``stop()``).
        Timers keep a network busy forever, so without ``until`` the run ends when no
        datagram is in flight and no query is pending. Operations started from outside must
        be passed to :meth:`kick` first."""
        while self._queue:
            at, _, dst, data, src = self._queue[0]
            if until is not None and at > until:
                break
            if until is None and data is None and self._quiet():
                break
            heapq.heappop(self._queue)
            if data is not None:
                self._in_flight -= 1
            self.now = max(self.now, at)
            node = self.nodes.get(dst)
            if data is None:
                if self._scheduled.get(dst) == at:
                    del self._scheduled[dst]
                if node is not None and node.get_timer() <= self.now:
                    node.handle_timer(self.now)
                    self._drain(dst)
                else:
                    self._schedule(dst)
                continue
            if node is None:
                self.undeliverable += 1
                continue
            self.delivered += 1
            node.receive_datagram(data, src, self.now)
            self._drain(dst)
            if stop is not None and stop():
                break
        if until is not None:
            self.now = max(self.now, until)

    def _quiet(self) -> bool:
        """No datagram in flight and no node waiting for an answer."""
        if self._in_flight:
            return False
        for addr in list(self._busy):
            node = self.nodes.get(addr)
            if node is not None and node.pending_queries:
                return False
            self._busy.discard(addr)
        return True


@dataclass(frozen=True, kw_only=True)
class LookupStats:
    """What :func:`measure_lookups` found."""

    nodes: int
    lookups: int
    #: Lookups whose closest answer was the live node closest to the target.
    success_rate: float
    mean_hops: float
    mean_queries: float
    log2_n: float
    datagrams: int


def measure_lookups(net: Network, count: int) -> LookupStats:
    """Run ``count`` find_node lookups for random ids from random live nodes, one at a time,
    and compare each result with the true closest live node."""
    live = list(net.nodes.values())
    hops, queries, found = [], [], 0
    sent_before = net.sent
    for _ in range(count):
        origin = net.rng.choice(live)
        target = net.rng.randbytes(20)
        op = origin.find_node(target, net.now)
        net.kick(origin)
        net.run()
        done = [e for e in net.events(origin) if isinstance(e, LookupDone) and e.operation == op]
        if not done:
            continue
        result = done[0]
        best = min((n for n in live if n is not origin), key=lambda n: distance(n.id, target))
        if result.nodes and result.nodes[0].id == best.id:
            found += 1
        hops.append(result.hops)
        queries.append(result.queries)
    return LookupStats(nodes=len(live), lookups=count, success_rate=found / count,
                       mean_hops=statistics.fmean(hops) if hops else 0.0,
                       mean_queries=statistics.fmean(queries) if queries else 0.0,
                       log2_n=math.log2(len(live)), datagrams=net.sent - sent_before)


@dataclass(frozen=True, kw_only=True)
class SimulationReport:
    """:func:`simulate`'s figures: before and after churn."""

    seed: int
    loss: float
    join: str
    build_seconds: float
    stable: LookupStats
    churned: LookupStats | None
    churn: float


def simulate(*, nodes: int, lookups: int, seed: int = 1, churn: float = 0.3,
             loss: float = 0.0, join: str = "populate",
             progress: Callable[[int, int], None] | None = None) -> SimulationReport:
    """Build a network of ``nodes`` (``join="populate"`` fills tables directly,
    ``join="protocol"`` makes each node bootstrap through the DHT itself), measure ``lookups``
    lookups, remove a ``churn`` fraction of nodes without telling anyone, measure again.

    >>> report = simulate(nodes=60, lookups=5, seed=2, join="protocol")
    >>> report.stable.success_rate, report.churned.nodes
    (1.0, 42)
    """
    import time

    started = time.perf_counter()
    net = Network(seed=seed, loss=loss)
    members = [net.add_node() for _ in range(nodes)]
    if join == "populate":
        net.populate()
    else:
        for i, node in enumerate(members[1:], 1):
            node.bootstrap([net.address_of(net.rng.choice(members[:i]))], net.now)
            net.kick(node)
            net.run()
            net.events(node)
            if progress is not None:
                progress(i, nodes)
    built = time.perf_counter() - started
    stable = measure_lookups(net, lookups)
    churned = None
    if churn > 0:
        for node in net.rng.sample(members, int(churn * nodes)):
            net.remove(node)
        churned = measure_lookups(net, lookups)
    return SimulationReport(seed=seed, loss=loss, join=join, build_seconds=built,
                            stable=stable, churned=churned, churn=churn)
