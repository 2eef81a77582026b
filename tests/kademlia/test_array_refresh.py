"""ArrayTables.refresh: the routing-table refresh of a network where some nodes left
(libp2p-ipfs/ipfs-kad-dht.md §Routing Table Refresh): dead entries go, live ones stay where
they were, short buckets are topped up with live nodes of their range."""

from __future__ import annotations

import numpy as np
import pytest

from p2pkit.kademlia.array_tables import ArrayTables


def _cpl(a: bytes, b: bytes, bits: int) -> int:
    return bits - (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


def _live_in_range(tables: ArrayTables, alive: np.ndarray, node: int, row: int) -> int:
    own = tables.id_of(node)
    count = 0
    for other in np.flatnonzero(alive).tolist():
        if other == node:
            continue
        cpl = _cpl(own, tables.id_of(other), tables.id_bits)
        count += cpl == row if row < tables.depth - 1 else cpl >= row
    return count


@pytest.fixture
def network() -> tuple[ArrayTables, np.ndarray]:
    rng = np.random.default_rng(5)
    tables = ArrayTables.random(1500, k=20, id_bits=256, rng=rng)
    tables.fill(rng)
    alive = np.ones(len(tables), dtype=bool)
    alive[rng.choice(len(tables), size=500, replace=False)] = False
    return tables, alive


def test_refresh_drops_the_dead_keeps_the_live_and_tops_up(network):
    tables, alive = network
    before = tables.entries.copy()
    live = np.flatnonzero(alive)
    tables.refresh(live, alive, np.random.default_rng(1))
    for node in live[::53].tolist():
        for row in range(tables.depth):
            held = tables.entries[node, row]
            held = held[held >= 0]
            assert alive[held].all() and node not in held
            assert len(set(held.tolist())) == len(held)
            # as many as k, or every live node of the range
            assert len(held) == min(tables.k, _live_in_range(tables, alive, node, row))
            # the live entries it had stay, in their order, in front
            kept = [v for v in before[node, row].tolist() if v >= 0 and alive[v]]
            assert held[: len(kept)].tolist() == kept
            for other in held.tolist():
                cpl = _cpl(tables.id_of(node), tables.id_of(other), 256)
                assert cpl == row if row < tables.depth - 1 else cpl >= row


def test_dead_nodes_tables_are_left_alone_and_refused(network):
    tables, alive = network
    dead = int(np.flatnonzero(~alive)[0])
    row = tables.entries[dead].copy()
    tables.refresh(np.flatnonzero(alive), alive, np.random.default_rng(1))
    assert (tables.entries[dead] == row).all()
    with pytest.raises(ValueError):
        tables.refresh(np.array([dead]), alive, np.random.default_rng(1))


def test_restart_empties_then_fills_like_fill_on_the_live_nodes():
    rng = np.random.default_rng(9)
    tables = ArrayTables.random(800, k=8, id_bits=160, rng=rng)
    alive = np.ones(len(tables), dtype=bool)
    tables.refresh(np.arange(len(tables)), alive, rng, restart=True)
    full = ArrayTables(tables.ids, k=8, id_bits=160, depth=tables.depth)
    full.fill(np.random.default_rng(3))
    # the same bucket sizes as the fill (the members are random draws of the same ranges)
    assert ((tables.entries >= 0).sum(axis=2) == (full.entries >= 0).sum(axis=2)).all()
    tables.entries[0] = 5
    tables.refresh(np.array([0]), alive, rng, restart=True)
    assert (tables.entries[0] != 5).any() and 0 not in tables.table(0)


def test_nothing_to_refresh():
    tables = ArrayTables.random(50, k=4, id_bits=160, rng=np.random.default_rng(1))
    tables.refresh(np.array([], dtype=np.int64), np.ones(50, dtype=bool), np.random.default_rng(1))
    assert (tables.entries == -1).all()
