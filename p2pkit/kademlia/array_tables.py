"""The routing tables of a whole network as arrays: k-buckets for a million nodes in memory.

The same table as :class:`p2pkit.kademlia.routing.RoutingTable` (Kademlia, Maymounkov and
Mazières 2002, §2.2 and §2.4; BEP 5 §Routing Table), stored compactly: one row of
``depth × k`` int32 node indices per node instead of a dict of ``NodeEntry`` objects (about
0.9 KB per node at a million nodes against ~42 KB for a full :class:`p2pkit.dht.node.Node`).

Layout. A table that splits only the bucket holding its own id (BEP 5: "no more nodes may be
added unless our own node ID falls within the range of the bucket. In that case, the bucket is
replaced by two new buckets") ends up with one bucket per common-prefix length ``j`` with the
own id (the ids that share the first ``j`` bits and differ at bit ``j``) down to the depth where
the own bucket stopped filling up. Row ``j < depth - 1`` of a node holds its bucket ``j``; the
last row holds the ids sharing at least ``depth - 1`` bits. ``-1`` marks a free slot.

Filling (:meth:`ArrayTables.fill`). BEP 5 fills a table by a lookup of the node's own id and
keeps it full by refreshing every bucket ("picking a random ID in the range of the bucket and
performing a find_nodes search on it"); once a network has run for a refresh period, every
bucket holds ``k`` nodes of its range, or every node of the range when it has fewer. ``fill``
draws that state directly: for each node and bucket, ``k`` distinct random nodes of the
bucket's range (found with a binary search in the sorted ids), all of them when fewer. Whether
that equals what the protocol builds is checked in ``tests/kademlia/test_array_tables.py``
against :class:`~p2pkit.kademlia.routing.RoutingTable` (the rows are a state that table can
hold) and against tables that real nodes built with bootstrap and refresh lookups.

Needs numpy (a dependency of p2pkit since issue 17).

>>> import numpy as np
>>> tables = ArrayTables.random(2000, k=8, id_bits=160, rng=np.random.default_rng(1))
>>> tables.fill(np.random.default_rng(2))
>>> int((tables.entries[0] >= 0).sum()) >= 8 * 7  # at least 7 full buckets
True
>>> [tables.distance(tables.id_of(0), tables.id_of(i)) < 2 ** 157 for i in tables.closest(0, tables.id_of(0), 3)]
[True, True, True]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from p2pkit.errors import LocalProtocolError
from p2pkit.kademlia.ids import distance, id_bytes

__all__ = ["ArrayTables", "bytes_per_node", "depth_for"]

#: Rows beyond ``log2(n / k)`` kept per node: buckets deeper than that hold k nodes only rarely.
EXTRA_DEPTH = 6


def depth_for(nodes: int, k: int) -> int:
    """Rows per table for a network of ``nodes``: ``log2(nodes / k)`` plus
    ``EXTRA_DEPTH``, at most 63 (the bucket ranges are computed on the top 64 id bits).

    >>> depth_for(1_000_000, 8)
    23
    """
    return min(63, max(2, math.ceil(math.log2(max(nodes / k, 2))) + EXTRA_DEPTH))


def bytes_per_node(nodes: int, k: int, id_bits: int) -> int:
    """Bytes the arrays take per node: the table row (int32), the id and its words."""
    return depth_for(nodes, k) * k * 4 + id_bytes(id_bits) + 8 * math.ceil(id_bits / 64)


def _distinct_offsets(count: np.ndarray, k: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per row, ``k`` distinct sorted offsets in ``[0, count)``: ``k`` draws in
    ``[0, count - k]`` sorted, plus ``0..k-1``; all of ``0..count-1`` when ``count <= k``
    (then ``valid`` marks the first ``count``)."""
    draws = rng.random((len(count), k))
    draws.sort(axis=1)
    span = np.maximum(count - k + 1, 1)[:, None]
    offsets = (draws * span).astype(np.int64) + np.arange(k)
    offsets = np.where(count[:, None] <= k, np.arange(k), offsets)
    return offsets, offsets < count[:, None]


class ArrayTables:
    """Routing tables of ``len(ids)`` nodes: ``entries[v]`` is node ``v``'s table
    (``depth × k`` node indices, ``-1`` for a free slot).

    ``ids`` is an ``(n, id_bits / 8)`` uint8 array of distinct ids (distinct in their first 64
    bits too, which is what :meth:`random` draws).
    """

    def __init__(self, ids: np.ndarray, *, k: int, id_bits: int, depth: int | None = None
                 ) -> None:
        size = id_bytes(id_bits)
        if ids.ndim != 2 or ids.shape[1] != size or ids.dtype != np.uint8:
            raise LocalProtocolError(f"ids are an (n, {size}) uint8 array")
        if k < 1:
            raise ValueError("k is at least 1")
        n = len(ids)
        self.k = k
        self.id_bits = id_bits
        self.ids = ids
        #: The ids as big-endian 64-bit words (the last one padded with zero bits): XOR of
        #: words compared word by word is the XOR metric.
        words = math.ceil(id_bits / 64)
        padded = np.zeros((n, words * 8), dtype=np.uint8)
        padded[:, :size] = ids
        self.words = padded.view(">u8").astype(np.uint64)
        del padded
        self.top = np.ascontiguousarray(self.words[:, 0])
        self.order = np.argsort(self.top, kind="stable").astype(np.int32)
        self.sorted_top = self.top[self.order]
        if n > 1 and bool((self.sorted_top[1:] == self.sorted_top[:-1]).any()):
            raise LocalProtocolError("ids must differ in their first 64 bits")
        self.depth = depth_for(n, k) if depth is None else depth
        self.entries = np.full((n, self.depth, k), -1, dtype=np.int32)

    @classmethod
    def random(cls, nodes: int, *, k: int, id_bits: int, rng: np.random.Generator,
               depth: int | None = None) -> ArrayTables:
        """``nodes`` random ids (Kademlia §2: "nodes choose random identifiers"), distinct in
        their first 64 bits, with empty tables."""
        size = id_bytes(id_bits)
        ids = rng.integers(0, 256, size=(nodes, size), dtype=np.uint8)
        while True:
            top = ids[:, :8].copy().view(">u8").ravel()
            _, first = np.unique(top, return_index=True)
            if len(first) == nodes:
                break
            again = np.setdiff1d(np.arange(nodes), first)
            ids[again] = rng.integers(0, 256, size=(len(again), size), dtype=np.uint8)
        return cls(ids, k=k, id_bits=id_bits, depth=depth)

    def __len__(self) -> int:
        return len(self.ids)

    def id_of(self, node: int) -> bytes:
        return self.ids[node].tobytes()

    @staticmethod
    def distance(a: bytes, b: bytes) -> int:
        return distance(a, b)

    def bucket_range(self, nodes: np.ndarray, row: int, sorted_top: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``nodes``, the positions ``[lo, hi)`` in the sorted ids (or in
        ``sorted_top``, a sorted subset of the ids' first words) of the nodes its table row
        ``row`` covers (itself included for the last row)."""
        sorted_top = self.sorted_top if sorted_top is None else sorted_top
        own = self.top[nodes]
        if row < self.depth - 1:  # the ids sharing ``row`` bits and differing at bit ``row``
            shift = 63 - row
            low = ((own >> np.uint64(shift)) ^ np.uint64(1)) << np.uint64(shift)
        else:  # the own bucket: the ids sharing at least ``row`` bits
            shift = 64 - row
            low = (own >> np.uint64(shift)) << np.uint64(shift) if row else np.zeros_like(own)
        mask = np.uint64((1 << shift) - 1)
        lo = np.searchsorted(sorted_top, low, side="left")
        hi = np.searchsorted(sorted_top, low | mask, side="right")
        return lo, hi

    def fill(self, rng: np.random.Generator, *, chunk: int = 1 << 18,
             progress: Callable[[int, int], None] | None = None) -> None:
        """Every bucket as bootstrap and refresh leave it: ``k`` distinct random nodes of its
        range, or all of them (see the module docstring). ``progress(done, total)`` is called
        after each chunk of nodes."""
        n, k = len(self), self.k
        rank = np.empty(n, dtype=np.int64)
        rank[self.order] = np.arange(n)
        for start in range(0, n, chunk):
            nodes = np.arange(start, min(n, start + chunk))
            for row in range(self.depth):
                lo, hi = self.bucket_range(nodes, row)
                own = row == self.depth - 1
                count = hi - lo - (1 if own else 0)
                offsets, valid = _distinct_offsets(count, k, rng)
                if own:  # skip the node itself
                    offsets = offsets + (lo[:, None] + offsets >= rank[nodes][:, None])
                picked = self.order[np.minimum(lo[:, None] + offsets, n - 1)]
                self.entries[nodes, row] = np.where(valid, picked, -1)
            if progress is not None:
                progress(min(n, start + chunk), n)

    def refresh(self, nodes: np.ndarray, alive: np.ndarray, rng: np.random.Generator, *,
                restart: bool = False) -> None:
        """The routing-table refresh of ``nodes`` (all in ``alive``) in a network where only
        ``alive`` nodes answer: entries that left are removed (they fail the ping of stale
        entries), then every bucket short of ``k`` is topped up with random live nodes of its
        range it does not hold yet, which is what the refresh's FIND_NODE for a random id in
        the bucket brings (libp2p-ipfs/ipfs-kad-dht.md §Routing Table Refresh, as
        :mod:`p2pkit.ipfs.kad_refresh` does it; BEP 5 §Routing Table refreshes the same way).
        Live entries stay where they are. ``restart``: the tables start empty (a node that
        comes back online bootstraps with a lookup of its own id and bucket refreshes)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        if not len(nodes):
            return
        if not bool(alive[nodes].all()):
            raise ValueError("only live nodes refresh their tables")
        if restart:
            self.entries[nodes] = -1
        k = self.k
        live = alive[self.order]
        live_order = self.order[live]
        live_top = self.sorted_top[live]
        rank = np.full(len(self), -1, dtype=np.int64)
        rank[live_order] = np.arange(len(live_order))
        for row in range(self.depth):
            current = self.entries[nodes, row]
            used = current >= 0
            held = used.copy()
            held[used] = alive[current[used]]
            lo, hi = self.bucket_range(nodes, row, live_top)
            own = row == self.depth - 1
            count = hi - lo - (1 if own else 0)
            have = held.sum(axis=1)
            # only rows with an entry that left, or short of what their range offers, change
            todo = np.flatnonzero((have < used.sum(axis=1)) | (have < np.minimum(count, k)))
            if not len(todo):
                continue
            current = np.where(held[todo], current[todo], -1)
            lo, count, have = lo[todo], count[todo], have[todo]
            offsets, valid = _distinct_offsets(count, k, rng)
            if own:  # skip the node itself
                offsets = offsets + (lo[:, None] + offsets >= rank[nodes[todo]][:, None])
            picked = live_order[np.minimum(lo[:, None] + offsets, max(len(live_order) - 1, 0))]
            fresh = valid & ~(picked[:, :, None] == current[:, None, :]).any(axis=2)
            fresh &= np.cumsum(fresh, axis=1) <= (k - have)[:, None]
            merged = np.concatenate([current, np.where(fresh, picked, -1)], axis=1)
            first = np.argsort(merged < 0, axis=1, kind="stable")[:, :k]
            self.entries[nodes[todo], row] = np.take_along_axis(merged, first, axis=1)

    def table(self, node: int) -> np.ndarray:
        """Node indices in ``node``'s table."""
        row = self.entries[node].ravel()
        return row[row >= 0]

    def closest(self, node: int, target: bytes, count: int) -> np.ndarray:
        """The ``count`` nodes of ``node``'s table closest to ``target`` by XOR, closest first
        (what :meth:`RoutingTable.closest` answers for the same table)."""
        known = self.table(node)
        return known[self.order_by_distance(known, target)[:count]]

    def order_by_distance(self, nodes: np.ndarray, target: bytes) -> np.ndarray:
        """Argsort of ``nodes`` by XOR distance to ``target`` (exact over all id bits)."""
        t = self.target_words(target)
        d = self.words[nodes] ^ t
        return np.lexsort(d.T[::-1])

    def target_words(self, target: bytes) -> np.ndarray:
        size = id_bytes(self.id_bits)
        padded = target + bytes(self.words.shape[1] * 8 - size)
        return np.frombuffer(padded, dtype=">u8").astype(np.uint64)

    def closest_of(self, alive: np.ndarray | None, target: bytes, exclude: int = -1) -> int:
        """The node closest to ``target`` among all (or the ``alive`` ones), not ``exclude``:
        ids differ in their first 64 bits, so the first word decides."""
        d = self.top ^ self.target_words(target)[0]
        if alive is not None:
            d = np.where(alive, d, np.uint64(2**64 - 1))
        if exclude >= 0:
            d[exclude] = np.uint64(2**64 - 1)
        return int(np.argmin(d))
