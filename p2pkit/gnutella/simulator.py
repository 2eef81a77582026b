"""Many servents in one process: what flooding, TTL, ultrapeers and QRP cost per query.

Specs: the routing rules of :mod:`p2pkit.gnutella.servent` (TTL decrement, duplicate GUID
suppression, reverse-path hits), ultra-peers § (leaves attach to a few ultrapeers, only
ultrapeers route) and ultrapeer_qrp § / QRP (an ultrapeer forwards a query to a leaf only when
the leaf's table matches). Every node is a real :class:`~p2pkit.gnutella.servent.Servent`;
:class:`Network` moves their bytes over the project's one in-memory transport,
:class:`~p2pkit.core.MemoryNetwork` (streams with no latency: each write arrives in order, and
equal times run in the order they were sent, so a run is a function of the seed), and runs
their timers on its clock; each message is built and parsed by the schemas.

Topologies (seeded, deterministic):

* ``flat``: every node is an ultrapeer-role servent with no leaves, each linked to ``degree``
  random others: Gnutella 0.4's flat flood.
* ``ultrapeer``: ``ultrapeer_fraction`` of the nodes are ultrapeers linked among themselves
  (``degree`` each); every other node is a leaf attached to ``leaf_links`` ultrapeers.
  With ``qrp=False`` ultrapeers send every query to all their leaves.

Both keep the servent's slot limits (:func:`link_ultrapeers`, :func:`attach_leaves`): no
ultrapeer gets more than ``MAX_ULTRAPEERS`` ultrapeer links or ``MAX_LEAVES`` leaves, as a real
one answers 503 beyond them and the connecting node tries another.

>>> result = simulate(nodes=60, topology="ultrapeer", ttl=2, queries=3, seed=1)
>>> result.nodes, result.queries, result.messages_per_query > 0
(60, 3, True)
"""

from __future__ import annotations

import gc
import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from p2pkit.core import NEED_DATA, Address, Event, MemoryNetwork
from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella.events import ConnectionClosed, QueryHit
from p2pkit.gnutella.servent import MAX_LEAVES, MAX_ULTRAPEERS, Connection, Servent, SharedFile

__all__ = ["Network", "SimulationResult", "attach_leaves", "build_network", "link_ultrapeers",
           "simulate"]

#: Words file names and queries are drawn from, with Zipf popularity (weight 1/rank).
VOCABULARY = [f"w{i:04d}" for i in range(2000)]
_WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
_RANK = {word: rank for rank, word in enumerate(VOCABULARY)}
FILES_PER_NODE = 5
WORDS_PER_FILE = 2


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    """Averages over the queries of one run (messages are Gnutella descriptors on links)."""

    nodes: int
    topology: str
    qrp: bool
    ttl: int
    queries: int
    #: Query descriptors sent per query (every hop of every copy).
    query_messages: float
    #: QueryHit descriptors sent per query (every hop back).
    hit_messages: float
    messages_per_query: float
    #: Nodes that received the query at least once, per query.
    reached: float
    #: Queries that got at least one hit back at their origin.
    answered: int


class Network:
    """Servents whose connections are joined by reliable streams of a
    :class:`~p2pkit.core.MemoryNetwork` (the driver of the simulator and of the tests).

    Each write of a connection travels as one stream write; a delivery goes to the peer
    connection's ``receive_data``, then everything its servent queued (forwarded descriptors,
    answers) is written, its events are collected in :attr:`events` and its timer is scheduled
    on the network's clock. A connection that reports ``ConnectionClosed`` has its stream
    closed: the peer receives end of stream, as from a socket.

    >>> net = Network(MemoryNetwork(seed=0))
    >>> up = Servent(role="ultrapeer", rng=random.Random(1))
    >>> leaf = Servent(role="leaf", rng=random.Random(2))
    >>> _ = net.link(leaf, "up", up, "leaf")
    >>> net.run(until=0.0)
    >>> [type(e).__name__ for e in net.take_events(up)], up.connections["leaf"].state
    (['ConnectionEstablished'], 'ESTABLISHED')
    >>> net.run(until=leaf.connections["up"].get_timer())  # PING_INTERVAL: keep-alive pings
    >>> leaf.sent["ping"], up.sent["pong"], net.net.now
    (1, 1, 30.0)
    """

    def __init__(self, net: MemoryNetwork) -> None:
        self.net = net
        #: Events each servent's connections reported, in order (see :meth:`take_events`).
        self.events: dict[Servent, list[Event]] = {}
        self._routes: dict[Connection, tuple[Address, Address, Callable[[bytes, float], None]]] = {}
        self._timers: dict[Connection, float] = {}
        self._port = 0

    def _address(self, servent: Servent) -> Address:
        self._port += 1
        return (servent.listen[0], self._port)

    def link(self, a: Servent, a_id: Any, b: Servent, b_id: Any) -> tuple[Connection, Connection]:
        """``a`` connects to ``b`` (``a`` knows the link as ``a_id``, ``b`` as ``b_id``)."""
        now = self.net.now
        ca = a.connect(a_id, now)
        cb = b.accept(b_id, now)
        addr_a, addr_b = self._address(a), self._address(b)
        self._routes[ca] = (addr_a, addr_b, partial(self._deliver, cb))
        self._routes[cb] = (addr_b, addr_a, partial(self._deliver, ca))
        self.events.setdefault(a, [])
        self.events.setdefault(b, [])
        self.flush(a)
        self._schedule(cb)
        return ca, cb

    def flush(self, servent: Servent) -> None:
        """Write what ``servent`` queued on its connections (call after driving it from outside:
        a query, a ping, a close)."""
        send = self.net.send_stream
        for conn in servent.connections_with_data():
            src, dst, deliver = self._routes[conn]
            send(src, dst, conn.data_to_send(), deliver)
            self._schedule(conn)

    def take_events(self, servent: Servent) -> list[Event]:
        """The events ``servent``'s connections reported since the last call."""
        events = self.events.get(servent, [])
        self.events[servent] = []
        return events

    def run(self, *, until: float) -> None:
        """Deliver what is in flight and run timers up to ``until`` on the network's clock
        (periodic pings never let the network fall quiet, so there is always an end)."""
        self.net.run(until=until)

    def close(self) -> None:
        """Drop every link, timer and delivery still pending: nothing of the run stays alive in
        reference cycles (connections and the network point at each other)."""
        self._routes.clear()
        self._timers.clear()
        self.events.clear()
        self.net.discard_pending()

    def inject(self, conn: Connection, data: bytes) -> None:
        """Bytes arrive on ``conn`` from outside the network (a test playing a hostile peer);
        handled as a delivery: what its servent answers or forwards is written."""
        self._deliver(conn, data, self.net.now)

    def _deliver(self, conn: Connection, data: bytes, now: float) -> None:
        conn.receive_data(data, now)
        self._after(conn)

    def _after(self, conn: Connection) -> None:
        servent = conn.servent
        self.flush(servent)
        events = None
        while (event := conn.next_event()) is not NEED_DATA:
            if events is None:
                events = self.events.setdefault(servent, [])
            events.append(event)
            if isinstance(event, ConnectionClosed):
                src, dst, deliver = self._routes[conn]
                self.net.send_stream(src, dst, b"", deliver)  # the stream ends
        self._schedule(conn)

    def _schedule(self, conn: Connection) -> None:
        when = conn.get_timer()
        if when is None:
            return
        scheduled = self._timers.get(conn)
        if scheduled is not None and scheduled <= when:
            return  # that earlier call reschedules
        self._timers[conn] = when
        self.net.call_at(when, partial(self._on_timer, conn, when))

    def _on_timer(self, conn: Connection, when: float) -> None:
        if self._timers.get(conn) != when:
            return  # superseded by an earlier timer
        del self._timers[conn]
        due = conn.get_timer()
        if due is not None and due > self.net.now:  # moved later since (traffic, handshake)
            self._schedule(conn)
            return
        conn.handle_timer(self.net.now)
        self._after(conn)


def _files(rng: random.Random, node: int) -> list[SharedFile]:
    files = []
    for i in range(FILES_PER_NODE):
        words = set(rng.choices(VOCABULARY, _WEIGHTS, k=WORDS_PER_FILE))
        name = "_".join(sorted(words)) + f"_{node}_{i}.txt"
        files.append(SharedFile(index=i + 1, name=name, size=1024,
                                sha1=hashlib.sha1(name.encode()).digest()))
    return files


def link_ultrapeers(rng: random.Random, ultrapeers: int, degree: int,
                    max_links: int = MAX_ULTRAPEERS) -> list[tuple[int, int]]:
    """The ultrapeer mesh: each ultrapeer in turn opens links to random others until it has
    ``degree``; an ultrapeer that already holds ``max_links`` refuses (ultra-peers §: "503"
    when full), so no ultrapeer exceeds the servent's ``MAX_ULTRAPEERS``. When nobody can
    take another link, the last ultrapeers keep fewer than ``degree``.

    >>> edges = link_ultrapeers(random.Random(1), 50, 6)
    >>> links = Counter(i for edge in edges for i in edge)
    >>> min(links.values()) >= 6 and max(links.values()) <= MAX_ULTRAPEERS
    True
    """
    if not 0 <= degree <= max_links or (ultrapeers > 1 and degree >= ultrapeers):
        raise LocalProtocolError(f"an ultrapeer degree of {degree} cannot be met with "
                                 f"{ultrapeers} ultrapeers of at most {max_links} links")
    edges: set[tuple[int, int]] = set()
    links = [0] * ultrapeers
    for i in range(ultrapeers):
        misses = 0
        while links[i] < degree:
            j = rng.randrange(ultrapeers)
            if j == i or links[j] >= max_links or (min(i, j), max(i, j)) in edges:
                misses += 1
                if misses < 64:
                    continue
                # many refusals in a row: look at who can still take a link; nobody left
                # means this ultrapeer stays with fewer links, as a real one would
                open_peers = [k for k in range(ultrapeers) if k != i and links[k] < max_links
                              and (min(i, k), max(i, k)) not in edges]
                if not open_peers:
                    break
                j = rng.choice(open_peers)
            misses = 0
            edges.add((min(i, j), max(i, j)))
            links[i] += 1
            links[j] += 1
    return sorted(edges)


def attach_leaves(rng: random.Random, ultrapeers: int, leaves: int, leaf_links: int,
                  max_leaves: int = MAX_LEAVES) -> list[list[int]]:
    """The ultrapeers each leaf connects to: ``leaf_links`` distinct ones drawn among those
    with a free leaf slot (ultra-peers §: a full ultrapeer answers 503 and the leaf tries
    another), so none holds more than ``max_leaves`` (the servent's ``MAX_LEAVES``).

    Until an ultrapeer fills, the draws are ``rng.sample(range(ultrapeers), leaf_links)``.

    >>> chosen = attach_leaves(random.Random(1), 10, 280, 1)
    >>> max(Counter(u for ups in chosen for u in ups).values())
    30
    """
    if leaf_links > ultrapeers or leaves * leaf_links > ultrapeers * max_leaves:
        raise LocalProtocolError(f"{leaves} leaves of {leaf_links} links do not fit in "
                                 f"{ultrapeers} ultrapeers of {max_leaves} leaf slots")
    free = list(range(ultrapeers))
    where = list(range(ultrapeers))
    held = [0] * ultrapeers
    chosen: list[list[int]] = []
    for _ in range(leaves):
        if len(free) < leaf_links:  # capacity is left, but on fewer ultrapeers than links
            raise LocalProtocolError(f"fewer than {leaf_links} ultrapeers have a free slot")
        ups = rng.sample(free, leaf_links)
        for up in ups:
            held[up] += 1
            if held[up] == max_leaves:  # full: swap it out of the free list
                last = free.pop()
                if last != up:
                    free[where[up]] = last
                    where[last] = where[up]
        chosen.append(ups)
    return chosen


def build_network(*, nodes: int, topology: str = "ultrapeer", qrp: bool = True,
                  degree: int = 6, ultrapeer_fraction: float = 0.1, leaf_links: int = 2,
                  max_ttl: int = 7, seed: int = 0) -> tuple[list[Servent], Network]:
    """Servents linked as ``topology`` says, handshakes and QRP tables exchanged."""
    if topology not in ("flat", "ultrapeer"):
        raise LocalProtocolError(f"unknown topology {topology!r}")
    rng = random.Random(seed)
    n_up = nodes if topology == "flat" else max(degree + 1, int(nodes * ultrapeer_fraction))
    servents = []
    for i in range(nodes):
        role = "ultrapeer" if i < n_up else "leaf"
        servents.append(Servent(role=role, rng=random.Random(rng.random()), shared=_files(rng, i),
                                listen=(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 6346),
                                max_ttl=max_ttl, qrp=qrp, qrp_table_length=1 << 13))
    network = Network(MemoryNetwork(seed=seed))
    for i, j in link_ultrapeers(rng, n_up, degree):
        network.link(servents[i], j, servents[j], i)
    for leaf, ups in enumerate(attach_leaves(rng, n_up, nodes - n_up, leaf_links), n_up):
        for up in ups:
            network.link(servents[leaf], up, servents[up], leaf)
    network.run(until=0.0)
    for s in servents:
        network.take_events(s)
    return servents, network


def simulate(*, nodes: int = 1000, topology: str = "ultrapeer", qrp: bool = True, ttl: int = 4,
             queries: int = 20, seed: int = 0, degree: int = 6, ultrapeer_fraction: float = 0.1,
             leaf_links: int = 2) -> SimulationResult:
    """Run ``queries`` queries from random nodes with ``ttl``; average the messages they cost.

    Queries ask for the rarest word of a file some random node shares (file names are their
    words sorted by popularity rank, then the node), so each has at least one answer in reach
    of a large enough TTL.
    """
    result = _simulate(nodes=nodes, topology=topology, qrp=qrp, ttl=ttl, queries=queries,
                       seed=seed, degree=degree, ultrapeer_fraction=ultrapeer_fraction,
                       leaf_links=leaf_links)
    gc.collect()  # the run's servents and connections refer to each other: free them now
    return result


def _simulate(*, nodes: int, topology: str, qrp: bool, ttl: int, queries: int, seed: int,
              degree: int, ultrapeer_fraction: float, leaf_links: int) -> SimulationResult:
    # The network is one large structure built at once and alive for the whole run: the cyclic
    # garbage collector would walk it again and again for nothing. It is paused while the
    # network is built, and the built network is frozen out of its sight while queries run.
    collecting = gc.isenabled()
    gc.disable()
    try:
        servents, network = build_network(nodes=nodes, topology=topology, qrp=qrp,
                                          degree=degree, ultrapeer_fraction=ultrapeer_fraction,
                                          leaf_links=leaf_links, seed=seed)
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    try:
        return _run_queries(servents, network, nodes=nodes, topology=topology, qrp=qrp,
                            ttl=ttl, queries=queries, seed=seed)
    finally:
        gc.unfreeze()
        network.close()


def _run_queries(servents: list[Servent], network: Network, *, nodes: int, topology: str,
                 qrp: bool, ttl: int, queries: int, seed: int) -> SimulationResult:
    rng = random.Random(seed + 1)
    totals: Counter = Counter()
    answered = 0
    for q in range(queries):
        before = [(s.sent["query"], s.sent["query_hit"], s.received["query"]) for s in servents]
        target = rng.choice(servents)
        name = rng.choice(target.shared).name
        word = max(w for w in name.split("_") if w in _RANK)  # the rarest word of the name
        origin = rng.choice(servents)
        now = float(q + 1)
        network.run(until=now)  # the clock reaches the query's time (timers included)
        origin.query(word, now, ttl=ttl)
        network.flush(origin)
        network.run(until=now)
        for s, (sq, sh, rq) in zip(servents, before, strict=True):
            totals["query"] += s.sent["query"] - sq
            totals["query_hit"] += s.sent["query_hit"] - sh
            totals["reached"] += s.received["query"] > rq
        if any(isinstance(e, QueryHit) for e in network.take_events(origin)):
            answered += 1
        for s in servents:
            network.take_events(s)
    return SimulationResult(
        nodes=nodes, topology=topology, qrp=qrp, ttl=ttl, queries=queries,
        query_messages=totals["query"] / queries, hit_messages=totals["query_hit"] / queries,
        messages_per_query=(totals["query"] + totals["query_hit"]) / queries,
        reached=totals["reached"] / queries, answered=answered)
