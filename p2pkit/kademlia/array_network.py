"""Lookups over a million routing tables: the shared :class:`~p2pkit.kademlia.lookup.Lookup`
driven over :class:`~p2pkit.kademlia.array_tables.ArrayTables`, event by event.

The compact core of the DHT simulator, for sizes where a full :class:`p2pkit.dht.node.Node`
per peer (~40-60 KB each) does not fit in memory. Nothing of Kademlia is rewritten here: the
lookup is :class:`p2pkit.kademlia.lookup.Lookup` itself (Kademlia §2.3: ``alpha`` queries in
flight, the end when the ``k`` closest seen have answered, a timed-out query retried once as
BEP 5 suggests), seeded from the origin's table as the node seeds it; a queried node answers
with the ``k`` closest nodes of its table (BEP 5 §find_node: "the queried node [...] should
respond with [...] the K (8) closest good nodes in its own routing table"), which is
:meth:`ArrayTables.closest`, checked equal to :meth:`RoutingTable.closest`.

The network model is :class:`p2pkit.core.MemoryNetwork`'s: every datagram (query, answer) is
delayed by a latency drawn uniformly from ``latency`` and lost with probability ``loss``,
independently; a query unanswered after ``query_timeout`` seconds times out; a node that left
(``alive[v]`` false) answers nothing. Simulated time runs from event to event in a heap. What
this core leaves out, stated: it counts find_node queries and answers but not the ping with
which a queried node verifies an unknown querier, and tables do not change during the
measured lookups (the node core's origin learns from its answers; a difference the two-sample
tests in ``tests/dht/test_array_core.py`` do not detect).

>>> import numpy as np
>>> tables = ArrayTables.random(3000, k=8, id_bits=160, rng=np.random.default_rng(1))
>>> tables.fill(np.random.default_rng(2))
>>> net = ArrayNetwork(tables, alpha=3, seed=1)
>>> outcome = net.lookup(0, bytes(20))
>>> outcome.found, 1 <= outcome.hops <= 4
(True, True)
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

import numpy as np

from p2pkit.kademlia.array_tables import ArrayTables
from p2pkit.kademlia.lookup import Lookup

__all__ = ["ArrayNetwork", "LookupOutcome"]

_ANSWER = 0
_TIMEOUT = 1


@dataclass(frozen=True, kw_only=True)
class LookupOutcome:
    """One lookup: did its closest answer name the live node closest to the target?"""

    found: bool
    #: Path length to the closest node that answered (:attr:`Lookup.hops`).
    hops: int
    #: Queries sent, retries included (:attr:`Lookup.queries_sent`).
    queries: int
    #: Simulated seconds from the first query to the end.
    duration: float
    #: Datagrams sent (queries and answers, lost ones included).
    datagrams: int
    #: The nodes that answered, closest to the target first (at most ``k``).
    closest: tuple[int, ...] = ()


class ArrayNetwork:
    """The nodes of ``tables``, each alive or gone, on a seeded latency and loss model."""

    def __init__(self, tables: ArrayTables, *, alpha: int, seed: int,
                 latency: tuple[float, float] = (0.01, 0.1), loss: float = 0.0,
                 query_timeout: float = 1.0) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss is a fraction in [0, 1)")
        if latency[0] < 0 or latency[1] < latency[0]:
            raise ValueError("latency is (low, high) with 0 <= low <= high")
        if 2 * latency[1] >= query_timeout:
            raise ValueError("a round trip must fit in the query timeout")
        self.tables = tables
        self.alpha = alpha
        self.rng = random.Random(f"array network {seed}")
        self.latency = latency
        self.loss = loss
        self.query_timeout = query_timeout
        self.alive = np.ones(len(tables), dtype=bool)

    def remove(self, nodes: np.ndarray) -> None:
        """These nodes leave without a word (churn): nobody's table is told."""
        self.alive[nodes] = False

    def _delay(self) -> float:
        low, high = self.latency
        return low if low == high else self.rng.uniform(low, high)

    def lookup(self, origin: int, target: bytes, holders: np.ndarray | None = None
               ) -> LookupOutcome:
        """A find_node lookup for ``target`` started by node ``origin``.

        With ``holders`` (a boolean array over the nodes), a lookup for a record stored on
        them (kad-dht GET_PROVIDERS, libp2p-kad-dht.md §Content provider discovery: every
        queried node answers with the providers it holds and closer peers): it ends at the
        first answer from a holder; ``found`` says whether one answered, ``hops`` is the path
        length to it."""
        tables, k, rng, loss = self.tables, self.tables.k, self.rng, self.loss
        alive = self.alive
        lookup = Lookup(target, k=k, alpha=self.alpha, id_bits=tables.id_bits)
        for v in tables.closest(origin, target, k):
            lookup.add(tables.id_of(int(v)), ("", int(v)))
        heap: list[tuple[float, int, int, bytes, int]] = []
        now = 0.0
        sequence = 0
        datagrams = 0
        while True:
            for candidate in lookup.next_queries():
                v = candidate.addr[1]
                datagrams += 1
                sequence += 1
                answered = alive[v] and not (loss and rng.random() < loss)
                if answered:
                    there = self._delay()
                    datagrams += 1
                    answered = not (loss and rng.random() < loss)
                if answered:
                    heapq.heappush(heap, (now + there + self._delay(), sequence, _ANSWER,
                                          candidate.id, v))
                else:
                    heapq.heappush(heap, (now + self.query_timeout, sequence, _TIMEOUT,
                                          candidate.id, v))
            if lookup.finished or not heap:
                break
            now, _, kind, node_id, v = heapq.heappop(heap)
            if kind == _ANSWER and holders is not None and holders[v]:
                return LookupOutcome(found=True, hops=lookup.hop_of(node_id),
                                     queries=lookup.queries_sent, duration=now,
                                     datagrams=datagrams)
            if kind == _ANSWER:
                answer = [(tables.id_of(int(u)), ("", int(u)))
                          for u in tables.closest(v, target, k) if u != origin]
                lookup.responded(node_id, answer)
            else:
                lookup.failed(node_id, timeout=True)
        closest = lookup.closest()
        if holders is not None:
            found = False
        else:
            best = tables.closest_of(alive, target, exclude=origin)
            found = bool(closest) and closest[0].addr[1] == best
        return LookupOutcome(found=found, hops=lookup.hops, queries=lookup.queries_sent,
                             duration=now, datagrams=datagrams,
                             closest=tuple(c.addr[1] for c in closest))
