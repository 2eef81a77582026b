"""Gnutella query floods at 100,000 servents: the servent's routing rules over arrays.

:mod:`p2pkit.gnutella.simulator` runs one real :class:`~p2pkit.gnutella.servent.Servent` per
node and moves every descriptor through the schemas: exact, and about 15 ms per node to build
(4,000 servents in a minute). This module computes the same figures for networks a hundred
times larger, from the same topology (the same seeded draws as
:func:`p2pkit.gnutella.simulator.build_network`, in :func:`build_topology`) and the rules
``Servent._on_query`` applies, stated here as the flood they produce:

* a query is sent with ``ttl`` and hops 0 to every connection of its origin (a leaf: its
  ultrapeers; an ultrapeer: its ultrapeers and the leaves whose QRP table matches);
* a servent drops a query whose GUID it has seen (servent §routing), answers the first copy
  when it shares a matching file, and, if it is an ultrapeer and the received TTL is at least
  1, forwards it with TTL - 1 and hops + 1 to every other ultrapeer (when TTL - 1 >= 1) and to
  every other leaf whose QRP table matches (ultrapeer_qrp §2.4: "if an Ultrapeer receives a
  query with TTL=1, the Ultrapeer then decrements the TTL to 0, but still forwards that query
  to its leaves");
* a QueryHit goes back along the reverse path of the first copy, one descriptor per link
  (servent §routing).

The streams of the servent simulator have no latency and run in send order, so the first copy
of a query reaches every node along a shortest path of the flood: level by level, which is how
:func:`flood` walks it. QRP tables are the leaves' own: the slots
:func:`p2pkit.gnutella.qrp.qrp_hash` gives every keyword and URN of their files (what
``RouteTable.from_keywords`` sets), so hash collisions forward a query just as they do
between real servents. ``tests/gnutella/test_array_flood.py`` checks the figures equal the
servent simulator's, query for query.

>>> result = simulate(nodes=2000, topology="ultrapeer", ttl=3, queries=5, seed=1)
>>> result.nodes, result.queries, 0 < result.reached <= 2000
(2000, 5, True)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella.qrp import keywords, qrp_hash
from p2pkit.gnutella.servent import SharedFile
from p2pkit.gnutella.simulator import (
    _RANK,
    _WEIGHTS,
    FILES_PER_NODE,
    VOCABULARY,
    WORDS_PER_FILE,
    SimulationResult,
    attach_leaves,
    link_ultrapeers,
)

__all__ = ["QRP_TABLE_BITS", "Topology", "build_topology", "flood", "simulate"]

#: The simulator's servents use ``qrp_table_length=1 << 13``.
QRP_TABLE_BITS = 13


@dataclass
class Topology:
    """Who links to whom, who shares what, and each leaf's QRP slots, as arrays."""

    nodes: int
    #: Nodes ``0 .. ultrapeers - 1`` are ultrapeers, the rest leaves.
    ultrapeers: int
    #: Ultrapeer-to-ultrapeer links, CSR: neighbours of u are
    #: ``up_links[up_start[u]:up_start[u + 1]]``.
    up_start: np.ndarray
    up_links: np.ndarray
    #: The leaves of each ultrapeer, CSR (``leaf_start``, ``leaf_links``), and the ultrapeers
    #: of each leaf (``leaf_ups[leaf - ultrapeers]``, ``leaf_links_per_leaf`` each).
    leaf_start: np.ndarray
    leaf_links: np.ndarray
    leaf_ups: np.ndarray
    #: For each node, the words of its files, and the words of each file (for the queries).
    words: list[frozenset[str]]
    file_words: list[list[tuple[str, ...]]]
    #: Per QRP slot, the leaves whose table has it set (CSR: ``slot_start``, ``slot_leaves``).
    slot_start: np.ndarray
    slot_leaves: np.ndarray
    #: Per vocabulary word, the nodes sharing it.
    holders: dict[str, np.ndarray]


def _csr(pairs_from: np.ndarray, pairs_to: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(pairs_from, kind="stable")
    start = np.zeros(size + 1, dtype=np.int64)
    np.add.at(start, pairs_from + 1, 1)
    return np.cumsum(start), pairs_to[order].astype(np.int32)


def build_topology(*, nodes: int, topology: str = "ultrapeer", degree: int = 6,
                   ultrapeer_fraction: float = 0.1, leaf_links: int = 2, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> Topology:
    """The network :func:`p2pkit.gnutella.simulator.build_network` builds for these
    arguments (the same draws from the same seeded generator), as arrays."""
    if topology not in ("flat", "ultrapeer"):
        raise LocalProtocolError(f"unknown topology {topology!r}")
    rng = random.Random(seed)
    n_up = nodes if topology == "flat" else max(degree + 1, int(nodes * ultrapeer_fraction))
    words: list[frozenset[str]] = []
    file_words: list[list[tuple[str, ...]]] = []
    slot_pairs: list[tuple[int, int]] = []
    bits = QRP_TABLE_BITS
    for i in range(nodes):
        rng.random()  # the servent's own generator seed
        mine = []
        for f in range(FILES_PER_NODE):
            chosen = tuple(sorted(set(rng.choices(VOCABULARY, _WEIGHTS, k=WORDS_PER_FILE))))
            mine.append(chosen)
            if i >= n_up:  # a leaf's QRP table: every keyword of the file name, and its URN
                name = "_".join(chosen) + f"_{i}_{f}.txt"
                shared = SharedFile(index=f + 1, name=name, size=1024,
                                    sha1=hashlib.sha1(name.encode()).digest())
                for word in keywords(name) + [shared.urn]:
                    slot_pairs.append((qrp_hash(word, bits), i))
        file_words.append(mine)
        words.append(frozenset(w for chosen in mine for w in chosen))
        if progress is not None and (i + 1) % 10_000 == 0:
            progress(i + 1, nodes)
    # the links of build_network: the same functions on the same generator
    edges = link_ultrapeers(rng, n_up, degree)
    leaf_ups = np.array(attach_leaves(rng, n_up, nodes - n_up, leaf_links),
                        dtype=np.int32).reshape(-1, leaf_links)
    pairs = np.array(edges, dtype=np.int64).reshape(-1, 2)
    up_start, up_links = _csr(np.concatenate([pairs[:, 0], pairs[:, 1]]),
                              np.concatenate([pairs[:, 1], pairs[:, 0]]), n_up)
    leaves = np.repeat(np.arange(n_up, nodes, dtype=np.int64), leaf_links)
    leaf_start, leaf_links_arr = _csr(leaf_ups.ravel().astype(np.int64), leaves, n_up)
    slots = np.array(sorted(set(slot_pairs)), dtype=np.int64).reshape(-1, 2)
    slot_start, slot_leaves = _csr(slots[:, 0], slots[:, 1], 1 << bits)
    holders: dict[str, list[int]] = {}
    for i, mine in enumerate(words):
        for w in mine:
            holders.setdefault(w, []).append(i)
    return Topology(nodes=nodes, ultrapeers=n_up, up_start=up_start, up_links=up_links,
                    leaf_start=leaf_start, leaf_links=leaf_links_arr, leaf_ups=leaf_ups,
                    words=words, file_words=file_words, slot_start=slot_start,
                    slot_leaves=slot_leaves,
                    holders={w: np.array(v, dtype=np.int32) for w, v in holders.items()})


@dataclass(frozen=True)
class FloodResult:
    """One query: descriptors sent, nodes reached, answers."""

    query_messages: int
    hit_messages: int
    reached: int
    answers: int


def _gather(start: np.ndarray, links: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """The CSR neighbours of ``nodes``: (index into ``nodes`` of each, neighbour)."""
    counts = start[nodes + 1] - start[nodes]
    owner = np.repeat(np.arange(len(nodes)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, links[np.repeat(start[nodes], counts) + offsets]


def flood(top: Topology, origin: int, word: str, ttl: int, *, qrp: bool = True) -> FloodResult:
    """The query for ``word`` from ``origin`` with ``ttl``, walked level by level."""
    n, n_up = top.nodes, top.ultrapeers
    wants = np.zeros(n, dtype=bool)
    if qrp:
        slot = qrp_hash(word, QRP_TABLE_BITS)
        wants[top.slot_leaves[top.slot_start[slot]:top.slot_start[slot + 1]]] = True
    else:
        wants[n_up:] = True
    level = np.full(n, -1, dtype=np.int32)
    received = np.zeros(n, dtype=bool)
    level[origin] = 0
    messages = 0
    # level 1: what the origin sends (ttl, hops 0)
    if origin >= n_up:
        first = top.leaf_ups[origin - n_up].astype(np.int64)
        sender = np.full(len(first), origin)
    else:
        ups = top.up_links[top.up_start[origin]:top.up_start[origin + 1]]
        lv = top.leaf_links[top.leaf_start[origin]:top.leaf_start[origin + 1]]
        first = np.concatenate([ups, lv[wants[lv]]]).astype(np.int64)
        sender = np.full(len(first), origin)
    recipients, senders = first, sender
    depth = 1
    while len(recipients):
        messages += len(recipients)
        received[recipients] = True
        fresh_mask = level[recipients] == -1
        # the first copy to each node (any of this level's: the counts do not depend on which)
        fresh, index = np.unique(recipients[fresh_mask], return_index=True)
        came_from = senders[fresh_mask][index]
        level[fresh] = depth
        got_ttl = ttl - (depth - 1)  # the TTL every copy of this level carries
        forwarding = fresh < n_up
        ups, froms = fresh[forwarding], came_from[forwarding]
        if not len(ups) or got_ttl < 1:
            break
        nxt, nxt_from = [], []
        if got_ttl - 1 >= 1:
            owner, nbr = _gather(top.up_start, top.up_links, ups)
            keep = nbr != froms[owner]
            nxt.append(nbr[keep])
            nxt_from.append(ups[owner][keep])
        owner, leaf = _gather(top.leaf_start, top.leaf_links, ups)
        keep = wants[leaf] & (leaf != froms[owner])
        nxt.append(leaf[keep])
        nxt_from.append(ups[owner][keep])
        recipients = np.concatenate(nxt).astype(np.int64)
        senders = np.concatenate(nxt_from).astype(np.int64)
        depth += 1
    holders = top.holders.get(word, np.empty(0, dtype=np.int32))
    answering = holders[(level[holders] > 0)]
    return FloodResult(query_messages=messages, hit_messages=int(level[answering].sum()),
                       reached=int(received.sum()), answers=len(answering))


def simulate(*, nodes: int = 1000, topology: str = "ultrapeer", qrp: bool = True, ttl: int = 4,
             queries: int = 20, seed: int = 0, degree: int = 6, ultrapeer_fraction: float = 0.1,
             leaf_links: int = 2, top: Topology | None = None) -> SimulationResult:
    """:func:`p2pkit.gnutella.simulator.simulate`'s figures (the same queries: the rarest
    word of a random node's random file, from a random origin), computed by :func:`flood`.
    Pass ``top`` to reuse a built topology for several TTLs."""
    if top is None:
        top = build_topology(nodes=nodes, topology=topology, degree=degree,
                             ultrapeer_fraction=ultrapeer_fraction, leaf_links=leaf_links,
                             seed=seed)
    rng = random.Random(seed + 1)
    totals = [0, 0, 0]
    answered = 0
    for _ in range(queries):
        target = rng.choice(range(top.nodes))
        chosen = rng.choice(top.file_words[target])
        word = max(w for w in chosen if w in _RANK)
        origin = rng.choice(range(top.nodes))
        result = flood(top, origin, word, ttl, qrp=qrp)
        totals[0] += result.query_messages
        totals[1] += result.hit_messages
        totals[2] += result.reached
        answered += result.answers > 0
    return SimulationResult(
        nodes=top.nodes, topology=topology, qrp=qrp, ttl=ttl, queries=queries,
        query_messages=totals[0] / queries, hit_messages=totals[1] / queries,
        messages_per_query=(totals[0] + totals[1]) / queries, reached=totals[2] / queries,
        answered=answered)
