"""Many DHT nodes in one process over the in-memory transport (Kademlia, BEP 5).

A driver, like the UDP server: it holds no protocol logic. Each
:class:`~p2pkit.dht.node.Node` is attached to one :class:`p2pkit.core.MemoryNetwork` (the
project's one seeded in-memory transport) as a :class:`p2pkit.core.DatagramEndpoint`: the
network delivers its datagrams after a seeded random latency, drops a seeded fraction of them,
and runs each node's timer; simulated time jumps from one event to the next, so a 10,000-node
network runs on a laptop.

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

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pkit.core import DatagramEndpoint, Event, MemoryNetwork
from p2pkit.dht.node import LookupCompleted, Node
from p2pkit.kademlia.ids import distance

__all__ = ["LookupStats", "Network", "SimulationReport", "measure_lookups", "simulate"]

Address = tuple[str, int]
#: Neighbours by id each node learns from :meth:`Network.populate` (besides random nodes).
POPULATE_NEIGHBOURS = 16
#: Random nodes each node learns from :meth:`Network.populate`.
POPULATE_RANDOM = 160


class _Attached(DatagramEndpoint):
    """A node on the network, remembering whether it waits for answers (see ``Network._quiet``)."""

    def __init__(self, net: MemoryNetwork, addr: Address, core: Node, busy: set[Address],
                 events: list[Event]) -> None:
        self._busy = busy
        super().__init__(net, addr, core, events.append)

    def pumped(self) -> None:
        if self.core.pending_queries:
            self._busy.add(self.addr)
        else:
            self._busy.discard(self.addr)


class Network:
    """Nodes on a :class:`~p2pkit.core.MemoryNetwork`, with a simulated clock."""

    def __init__(self, *, seed: int, latency: tuple[float, float] = (0.01, 0.1),
                 loss: float = 0.0, query_timeout: float = 1.0,
                 maintenance: bool = False) -> None:
        #: Node seeds, populate and the measured lookups draw from this generator.
        self.rng = random.Random(seed)
        #: The transport, with its own generator (latency, loss) derived from ``seed``.
        self.transport = MemoryNetwork(seed=random.Random(f"transport {seed}").getrandbits(64),
                                       latency=latency, loss=loss)
        self.latency = latency
        self.loss = loss
        self.query_timeout = query_timeout
        #: Whether nodes run BEP 5 maintenance (pings, bucket refreshes) every 60 s of
        #: simulated time; off by default so measurements count only the lookups.
        self.maintenance = maintenance
        self.nodes: dict[Address, Node] = {}
        self._attached: dict[int, _Attached] = {}
        self._events: dict[Address, list[Event]] = {}
        #: Nodes that had queries pending when last touched.
        self._busy: set[Address] = set()

    @property
    def now(self) -> float:
        """The simulated clock (seconds)."""
        return self.transport.now

    # Datagrams sent, delivered, lost in transit, and sent to nodes that are gone.
    @property
    def sent(self) -> int:
        return self.transport.sent

    @property
    def delivered(self) -> int:
        return self.transport.delivered

    @property
    def lost(self) -> int:
        return self.transport.lost

    @property
    def undeliverable(self) -> int:
        return self.transport.undeliverable

    def add_node(self, **options: Any) -> Node:
        """A new node at the next free 10.x.y.z:6881 address (BEP 42 exempts 10/8)."""
        n = len(self._attached) + 1
        addr = (f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}", 6881)
        options.setdefault("query_timeout", self.query_timeout)
        if not self.maintenance:
            options.setdefault("maintenance_interval", None)
        node = Node(rng=random.Random(self.rng.getrandbits(64)), now=self.now, **options)
        self.nodes[addr] = node
        events: list[Event] = []
        self._events[addr] = events
        self._attached[id(node)] = _Attached(self.transport, addr, node, self._busy, events)
        return node

    def address_of(self, node: Node) -> Address:
        return self._attached[id(node)].addr

    def remove(self, node: Node) -> None:
        """The node leaves without a word (churn): datagrams to it vanish."""
        attached = self._attached[id(node)]
        attached.close()
        self._busy.discard(attached.addr)
        self.nodes.pop(attached.addr, None)

    def populate(self) -> None:
        """Fill every routing table directly, as a long-running network would have: the
        closest ids around each node and random others (the table's bucket rules decide what
        stays). Saves the cost of N bootstrap lookups before measuring."""
        live = list(self.nodes.items())
        ordered = sorted(live, key=lambda item: item[1].id)
        now = self.now
        for i, (_, node) in enumerate(ordered):
            lo, hi = max(0, i - POPULATE_NEIGHBOURS), i + POPULATE_NEIGHBOURS + 1
            known = ordered[lo:hi] + self.rng.sample(live, min(POPULATE_RANDOM, len(live)))
            seen = node.table.seen_response
            for addr, other in known:
                if other is not node:
                    seen(other.id, addr, now)

    def events(self, node: Node) -> list[Event]:
        """Events the node produced so far (and forget them)."""
        events = self._events[self._attached[id(node)].addr]
        out = list(events)
        events.clear()
        return out

    def kick(self, node: Node) -> None:
        """Send what ``node`` queued after a call made from outside (an operation start)."""
        self._attached[id(node)].pump()

    def run(self, until: float | None = None,
            stop: Callable[[], bool] | None = None) -> None:
        """Deliver datagrams and run timers in time order until none are left before
        ``until`` (or ``stop()``). Timers keep a network busy forever, so without ``until``
        the run ends when no datagram is in flight and no query is pending. Operations
        started from outside must be passed to :meth:`kick` first."""
        if until is None:
            done = self._quiet if stop is None else (lambda: stop() or self._quiet())
        else:
            done = stop
        self.transport.run(until=until, stop=done)

    def close(self) -> None:
        """Detach every node and forget what is in flight, so that dropping the network frees
        it at once (its callbacks otherwise hold it in reference cycles until the cyclic
        garbage collector runs: about a second for 10,000 populated nodes)."""
        for attached in self._attached.values():
            attached.close()
        self.transport.discard_pending()
        self.nodes.clear()
        self._busy.clear()

    def _quiet(self) -> bool:
        """No datagram in flight and no node waiting for an answer."""
        if self.transport.in_flight:
            return False
        busy = self._busy
        if busy:
            nodes = self.nodes
            for addr in list(busy):
                node = nodes.get(addr)
                if node is not None and node.pending_queries:
                    return False
                busy.discard(addr)
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
        done = [e for e in net.events(origin) if isinstance(e, LookupCompleted) and e.operation == op]
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
    net.close()
    return SimulationReport(seed=seed, loss=loss, join=join, build_seconds=built,
                            stable=stable, churned=churned, churn=churn)
