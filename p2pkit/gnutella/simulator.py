"""Many servents in one process: what flooding, TTL, ultrapeers and QRP cost per query.

Specs: the routing rules of :mod:`p2pkit.gnutella.servent` (TTL decrement, duplicate GUID
suppression, reverse-path hits), ultra-peers § (leaves attach to a few ultrapeers, only
ultrapeers route) and ultrapeer_qrp § / QRP (an ultrapeer forwards a query to a leaf only when
the leaf's table matches). Every node is a real :class:`~p2pkit.gnutella.servent.Servent`; the
transport moves their bytes in memory, so each message is built and parsed by the schemas.

Topologies (seeded, deterministic):

* ``flat``: every node is an ultrapeer-role servent with no leaves, each linked to ``degree``
  random others: Gnutella 0.4's flat flood.
* ``ultrapeer``: ``ultrapeer_fraction`` of the nodes are ultrapeers linked among themselves
  (``degree`` each); every other node is a leaf attached to ``leaf_links`` ultrapeers.
  With ``qrp=False`` ultrapeers send every query to all their leaves.

>>> result = simulate(nodes=60, topology="ultrapeer", ttl=2, queries=3, seed=1)
>>> result.nodes, result.queries, result.messages_per_query > 0
(60, 3, True)
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass

from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella.servent import QueryHitReceived, Servent, SharedFile, drain

__all__ = ["SimulationResult", "simulate", "build_network"]

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


class _Transport:
    """In-memory links: FIFO delivery of whole writes, no loss (seeded by the topology)."""

    def __init__(self) -> None:
        self.links: dict[tuple[int, object], tuple[Servent, object]] = {}
        self.servents: list[Servent] = []

    def link(self, a: Servent, a_id: object, b: Servent, b_id: object) -> None:
        self.links[(id(a), a_id)] = (b, b_id)
        self.links[(id(b), b_id)] = (a, a_id)
        a.connect(a_id, now=0.0)
        b.accept(b_id, now=0.0)

    def run(self, *, now: float, rounds: int = 100) -> None:
        for _ in range(rounds):
            batch = [(s, conn_id, data) for s in self.servents
                     for conn_id, data in s.data_to_send()]
            if not batch:
                return
            for s, conn_id, data in batch:
                target = self.links.get((id(s), conn_id))
                if target is not None:
                    target[0].receive_data(target[1], data, now=now)


def _files(rng: random.Random, node: int) -> list[SharedFile]:
    files = []
    for i in range(FILES_PER_NODE):
        words = set(rng.choices(VOCABULARY, _WEIGHTS, k=WORDS_PER_FILE))
        name = "_".join(sorted(words)) + f"_{node}_{i}.txt"
        files.append(SharedFile(index=i + 1, name=name, size=1024,
                                sha1=hashlib.sha1(name.encode()).digest()))
    return files


def build_network(*, nodes: int, topology: str = "ultrapeer", qrp: bool = True,
                  degree: int = 6, ultrapeer_fraction: float = 0.1, leaf_links: int = 2,
                  max_ttl: int = 7, seed: int = 0) -> tuple[list[Servent], _Transport]:
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
    transport = _Transport()
    transport.servents = servents
    edges: set[tuple[int, int]] = set()
    for i in range(n_up):
        while sum(1 for e in edges if i in e) < degree:
            j = rng.randrange(n_up)
            if j != i and (min(i, j), max(i, j)) not in edges:
                edges.add((min(i, j), max(i, j)))
    for i, j in sorted(edges):
        transport.link(servents[i], j, servents[j], i)
    for leaf in range(n_up, nodes):
        for up in rng.sample(range(n_up), leaf_links):
            transport.link(servents[leaf], up, servents[up], leaf)
    transport.run(now=0.0)
    for s in servents:
        drain(s)
    return servents, transport


def simulate(*, nodes: int = 1000, topology: str = "ultrapeer", qrp: bool = True, ttl: int = 4,
             queries: int = 20, seed: int = 0, degree: int = 6, ultrapeer_fraction: float = 0.1,
             leaf_links: int = 2) -> SimulationResult:
    """Run ``queries`` queries from random nodes with ``ttl``; average the messages they cost.

    Queries ask for the rarest word of a file some random node shares (file names are their
    words sorted by popularity rank, then the node), so each has at least one answer in reach
    of a large enough TTL.
    """
    servents, transport = build_network(nodes=nodes, topology=topology, qrp=qrp, degree=degree,
                                        ultrapeer_fraction=ultrapeer_fraction,
                                        leaf_links=leaf_links, seed=seed)
    rng = random.Random(seed + 1)
    totals: Counter = Counter()
    answered = 0
    for q in range(queries):
        before = [(s.sent["query"], s.sent["query_hit"], s.received["query"]) for s in servents]
        target = rng.choice(servents)
        name = rng.choice(target.shared).name
        word = max(w for w in name.split("_") if w in _RANK)  # the rarest word of the name
        origin = rng.choice(servents)
        origin.query(word, now=float(q + 1), ttl=ttl)
        transport.run(now=float(q + 1))
        for s, (sq, sh, rq) in zip(servents, before, strict=True):
            totals["query"] += s.sent["query"] - sq
            totals["query_hit"] += s.sent["query_hit"] - sh
            totals["reached"] += s.received["query"] > rq
        if any(isinstance(e, QueryHitReceived) for e in drain(origin)):
            answered += 1
        for s in servents:
            drain(s)
    return SimulationResult(
        nodes=nodes, topology=topology, qrp=qrp, ttl=ttl, queries=queries,
        query_messages=totals["query"] / queries, hit_messages=totals["query_hit"] / queries,
        messages_per_query=(totals["query"] + totals["query_hit"]) / queries,
        reached=totals["reached"] / queries, answered=answered)
