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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from p2pkit.core import DatagramEndpoint, Event, MemoryNetwork
from p2pkit.dht.node import ALPHA, ID_BITS, K, LookupCompleted, Node
from p2pkit.kademlia.array_network import ArrayNetwork, LookupOutcome
from p2pkit.kademlia.array_tables import ArrayTables, bytes_per_node
from p2pkit.kademlia.churn import REFRESH_WINDOW, SessionModel
from p2pkit.kademlia.ids import distance

__all__ = ["CORES", "DEPLOYMENTS", "LookupStats", "Network", "SimulationReport", "estimate_memory",
           "measure_array_lookups", "measure_lookups", "simulate"]

Address = tuple[str, int]
#: The two cores: a full sans-I/O :class:`~p2pkit.dht.node.Node` per peer over
#: :class:`~p2pkit.core.MemoryNetwork`, or the routing tables as arrays with the shared lookup
#: (:mod:`p2pkit.kademlia.array_network`).
CORES = ("node", "array")
#: Kademlia deployments the array core runs: (id bits, k, alpha). Mainline: BEP 5 (160-bit
#: ids, K = 8) with alpha = 3 as the node; libp2p/IPFS kad-dht: libp2p-ipfs/ipfs-kad-dht.md
#: §Kademlia Keyspace (m = 256), §Bucket Size (k = 20), libp2p-kad-dht.md §Alpha concurrency
#: parameter (alpha = 10).
DEPLOYMENTS = {"mainline": (ID_BITS, K, ALPHA), "ipfs": (256, 20, 10)}
#: Bytes per node of the node core with populated tables (measured: peak RSS 4.90 GB for
#: 100,000 nodes with the array tables they were filled from; docs/simulation-scale.md).
NODE_CORE_BYTES_PER_NODE = 48_000
#: Bytes of the interpreter, numpy and the modules before any node exists.
BASE_BYTES = 120_000_000


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

    def populate(self, tables: ArrayTables | None = None) -> ArrayTables:
        """Fill every routing table as bootstrap and bucket refreshes leave it in a network
        that has run for a while (BEP 5 §Routing Table): each bucket of each node gets ``k``
        random nodes of its range, or all of them when it has fewer
        (:meth:`p2pkit.kademlia.array_tables.ArrayTables.fill`; the tables' own bucket rules
        take them through ``seen_response``). Returns the filled arrays (``tables``, if given,
        must hold the nodes' ids in the order they were added), so that the array core can
        run on exactly the same tables.

        (Until issue 17 this offered each table its 16 neighbours in id order and 160 random
        nodes: at 40,000 nodes the buckets between those two reaches were left nearly empty,
        and only 94 % of lookups found the closest node.)"""
        members = list(self.nodes.items())
        if tables is None:
            ids = np.frombuffer(b"".join(node.id for _, node in members), dtype=np.uint8)
            tables = ArrayTables(ids.reshape(len(members), -1).copy(), k=members[0][1].k,
                                 id_bits=ID_BITS)
            tables.fill(np.random.default_rng(self.rng.getrandbits(64)))
        now = self.now
        for (_, node), row in zip(members, tables.entries, strict=True):
            seen = node.table.seen_response
            for other in row[row >= 0].tolist():
                addr, peer = members[other]
                seen(peer.id, addr, now)
        return tables

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
    """What :func:`measure_lookups` (or :func:`measure_array_lookups`) found."""

    nodes: int
    lookups: int
    #: Lookups whose closest answer was the live node closest to the target.
    success_rate: float
    mean_hops: float
    mean_queries: float
    log2_n: float
    datagrams: int
    #: Lookups per hop count (hops as :attr:`p2pkit.kademlia.lookup.Lookup.hops`).
    hop_histogram: dict[int, int]
    #: Mean simulated time of a lookup (seconds).
    mean_duration: float
    #: Process CPU time per lookup (seconds), the simulator's own cost (not compared: it is
    #: the only figure a seed does not fix).
    cpu_per_lookup: float = field(compare=False)


def _stats(nodes: int, count: int, outcomes: list[LookupOutcome], cpu: float) -> LookupStats:
    histogram: dict[int, int] = {}
    for o in outcomes:
        histogram[o.hops] = histogram.get(o.hops, 0) + 1
    return LookupStats(
        nodes=nodes, lookups=count, success_rate=sum(o.found for o in outcomes) / count,
        mean_hops=statistics.fmean(o.hops for o in outcomes) if outcomes else 0.0,
        mean_queries=statistics.fmean(o.queries for o in outcomes) if outcomes else 0.0,
        log2_n=math.log2(nodes), datagrams=sum(o.datagrams for o in outcomes),
        hop_histogram=dict(sorted(histogram.items())),
        mean_duration=statistics.fmean(o.duration for o in outcomes) if outcomes else 0.0,
        cpu_per_lookup=cpu / count)


def measure_lookups(net: Network, count: int,
                    progress: Callable[[int, int], None] | None = None) -> LookupStats:
    """Run ``count`` find_node lookups for random ids from random live nodes, one at a time,
    and compare each result with the true closest live node."""
    live = list(net.nodes.values())
    outcomes = []
    started = time.process_time()
    for i in range(count):
        origin = net.rng.choice(live)
        target = net.rng.randbytes(20)
        sent_before, began = net.sent, net.now
        op = origin.find_node(target, net.now)
        net.kick(origin)
        net.run()
        done = [e for e in net.events(origin) if isinstance(e, LookupCompleted) and e.operation == op]
        if done:
            result = done[0]
            best = min((n for n in live if n is not origin), key=lambda n: distance(n.id, target))
            outcomes.append(LookupOutcome(
                found=bool(result.nodes) and result.nodes[0].id == best.id, hops=result.hops,
                queries=result.queries, duration=net.now - began,
                datagrams=net.sent - sent_before))
        if progress is not None:
            progress(i + 1, count)
    return _stats(len(live), count, outcomes, time.process_time() - started)


def measure_array_lookups(net: ArrayNetwork, count: int, rng: random.Random,
                          progress: Callable[[int, int], None] | None = None) -> LookupStats:
    """:func:`measure_lookups` on the array core: ``count`` lookups for random ids from
    random live nodes."""
    live = np.flatnonzero(net.alive)
    outcomes = []
    started = time.process_time()
    for i in range(count):
        origin = int(live[rng.randrange(len(live))])
        outcomes.append(net.lookup(origin, rng.randbytes(net.tables.id_bits // 8)))
        if progress is not None:
            progress(i + 1, count)
    return _stats(len(live), count, outcomes, time.process_time() - started)


def estimate_memory(nodes: int, core: str, deployment: str = "mainline") -> int:
    """Bytes a simulation of ``nodes`` needs on ``core`` (an estimate, from measurements)."""
    if core == "node":
        return BASE_BYTES + nodes * NODE_CORE_BYTES_PER_NODE
    id_bits, k, _ = DEPLOYMENTS[deployment]
    # the arrays, plus the fill's working arrays (one chunk) and the sort of the ids
    return BASE_BYTES + nodes * (bytes_per_node(nodes, k, id_bits) + 40) + 300_000_000


@dataclass(frozen=True, kw_only=True)
class SimulationReport:
    """:func:`simulate`'s figures: before and after churn."""

    seed: int
    loss: float
    join: str
    core: str
    deployment: str
    build_seconds: float
    stable: LookupStats
    churned: LookupStats | None
    #: The fraction of nodes removed.
    churn: float
    #: How the leaving nodes were chosen: ``"fraction"`` (at random) or the session model.
    churn_model: str


def _leaving(nodes: int, seed: int, churn: float, sessions: SessionModel | None,
             window: float) -> np.ndarray:
    """Indices of the nodes that leave: a ``churn`` fraction at random, or those whose
    session ends within ``window`` under ``sessions``."""
    rng = np.random.default_rng([seed, 17])
    if sessions is not None:
        return np.flatnonzero(sessions.departures(nodes, rng, window=window))
    return np.sort(rng.choice(nodes, size=int(churn * nodes), replace=False))


def simulate(*, nodes: int, lookups: int, seed: int = 1, churn: float = 0.3,
             loss: float = 0.0, join: str = "populate", core: str = "node",
             sessions: SessionModel | None = None, window: float = REFRESH_WINDOW,
             deployment: str = "mainline", progress: Callable[[str, int, int], None] | None = None) -> SimulationReport:
    """Build a network of ``nodes`` (``join="populate"`` fills tables as bootstrap and
    refresh leave them, ``join="protocol"`` makes each node bootstrap through the DHT itself,
    node core only), measure ``lookups`` lookups, remove nodes without telling anyone (a
    ``churn`` fraction, or with ``sessions`` those whose session ends within ``window``
    seconds), measure again. ``core`` is ``"node"`` (a :class:`~p2pkit.dht.node.Node` each)
    or ``"array"`` (:mod:`p2pkit.kademlia.array_network`), which also runs the other
    :data:`DEPLOYMENTS` (``"ipfs"``: 256-bit ids, k = 20, alpha = 10).
    ``progress(phase, done, total)``.

    >>> report = simulate(nodes=60, lookups=5, seed=2, join="protocol")
    >>> report.stable.success_rate, report.churned.nodes
    (1.0, 42)
    >>> simulate(nodes=3000, lookups=20, seed=2, core="array").stable.success_rate
    1.0
    """
    if core not in CORES:
        raise ValueError(f"core is one of {', '.join(CORES)}")
    if join == "protocol" and core != "node":
        raise ValueError("join='protocol' runs on the node core only")
    if deployment not in DEPLOYMENTS or (core == "node" and deployment != "mainline"):
        raise ValueError("the node core is Mainline's; the array core runs "
                         + ", ".join(DEPLOYMENTS))
    if nodes < 2 or lookups < 1 or not 0 <= churn < 1 or not 0 <= loss < 1:
        raise ValueError("nodes >= 2, lookups >= 1, churn and loss in [0, 1)")

    def report(phase: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(phase, done, total))

    started = time.perf_counter()
    leaving = _leaving(nodes, seed, churn, sessions, window)
    if nodes - len(leaving) < 2:
        raise ValueError(f"the churn leaves {nodes - len(leaving)} of {nodes} nodes: a lookup"
                         " needs at least 2")
    if core == "array":
        id_bits, k, alpha = DEPLOYMENTS[deployment]
        rng = np.random.default_rng([seed, 1])
        tables = ArrayTables.random(nodes, k=k, id_bits=id_bits, rng=rng)
        tables.fill(rng, progress=report("building"))
        net = ArrayNetwork(tables, alpha=alpha, seed=seed, loss=loss)
        built = time.perf_counter() - started
        pick = random.Random(f"lookups {seed}")
        stable = measure_array_lookups(net, lookups, pick, report("stable lookups"))
        churned = None
        if len(leaving):
            net.remove(leaving)
            churned = measure_array_lookups(net, lookups, pick, report("lookups after churn"))
    else:
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
                    progress("joining", i, nodes - 1)
        built = time.perf_counter() - started
        stable = measure_lookups(net, lookups, report("stable lookups"))
        churned = None
        if len(leaving):
            for i in leaving.tolist():
                net.remove(members[i])
            churned = measure_lookups(net, lookups, report("lookups after churn"))
        net.close()
    return SimulationReport(seed=seed, loss=loss, join=join, core=core, deployment=deployment,
                            build_seconds=built,
                            stable=stable, churned=churned, churn=len(leaving) / nodes,
                            churn_model="fraction" if sessions is None else
                            f"weibull shape {sessions.shape:g}, median {sessions.median:g} s,"
                            f" window {window:g} s")
