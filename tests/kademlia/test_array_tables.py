"""ArrayTables: the arrays are a state RoutingTable holds, answer as it does, and are filled as
bootstrap and refresh lookups of real nodes fill a table."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.dht.simulator import Network
from p2pkit.errors import LocalProtocolError
from p2pkit.kademlia.array_tables import ArrayTables, depth_for
from p2pkit.kademlia.routing import RoutingTable


@pytest.fixture(scope="module")
def filled() -> ArrayTables:
    rng = np.random.default_rng(7)
    tables = ArrayTables.random(3000, k=8, id_bits=160, rng=rng)
    tables.fill(rng, chunk=1000)  # several chunks
    return tables


def _range_size(tables: ArrayTables, node: int, row: int) -> int:
    lo, hi = tables.bucket_range(np.array([node]), row)
    return int(hi[0] - lo[0]) - (1 if row == tables.depth - 1 else 0)


def _cpl(a: bytes, b: bytes) -> int:
    return 160 - (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


def test_every_row_holds_k_nodes_of_its_range_or_all_of_them(filled):
    for node in range(0, len(filled), 37):
        own = filled.id_of(node)
        for row in range(filled.depth):
            entries = filled.entries[node, row]
            held = entries[entries >= 0]
            assert len(set(held.tolist())) == len(held)  # distinct
            assert node not in held
            assert len(held) == min(filled.k, _range_size(filled, node, row))
            for other in held.tolist():
                cpl = _cpl(own, filled.id_of(other))
                assert cpl == row if row < filled.depth - 1 else cpl >= row


def test_rows_are_a_routing_table_state_and_closest_agrees(filled):
    rng = random.Random(3)
    for node in range(0, len(filled), 101):
        table = RoutingTable(filled.id_of(node), k=8, id_bits=160)
        held = filled.table(node)
        for other in held.tolist():
            assert table.seen_response(filled.id_of(other), ("", other), 0.0) is not None
        assert len(table) == len(held)  # the bucket rules keep every entry
        for _ in range(5):
            target = rng.randbytes(20)
            expected = [e.addr[1] for e in table.closest(target, 8)]
            assert filled.closest(node, target, 8).tolist() == expected


def test_closest_of_is_the_true_closest(filled):
    rng = random.Random(4)
    alive = np.ones(len(filled), dtype=bool)
    alive[::3] = False
    for _ in range(20):
        target = rng.randbytes(20)
        best = min((v for v in range(len(filled)) if alive[v] and v != 5),
                   key=lambda v: int.from_bytes(filled.id_of(v), "big")
                   ^ int.from_bytes(target, "big"))
        assert filled.closest_of(alive, target, exclude=5) == best


def test_ids_must_be_distinct_in_their_first_64_bits():
    ids = np.zeros((2, 20), dtype=np.uint8)
    ids[1, 19] = 1
    with pytest.raises(LocalProtocolError):
        ArrayTables(ids, k=8, id_bits=160)
    with pytest.raises(LocalProtocolError):
        ArrayTables(np.zeros((2, 19), dtype=np.uint8), k=8, id_bits=160)


def test_other_deployments_parameters():
    rng = np.random.default_rng(1)
    tables = ArrayTables.random(500, k=20, id_bits=256, rng=rng)  # libp2p kad-dht
    tables.fill(rng)
    assert tables.entries.shape == (500, depth_for(500, 20), 20)
    assert min(len(tables.table(v)) for v in range(500)) >= 20


def test_fill_matches_tables_built_by_bootstrap_and_refresh():
    """Real nodes join through the DHT (a lookup of their own id) and then refresh every
    bucket once (150 nodes, 1,500 buckets: all hold exactly as many nodes; 300 nodes: 99.9 %) (a lookup of a random id in its range, BEP 5): their buckets end up as full as
    the array fill makes them."""
    net = Network(seed=5)
    nodes = [net.add_node() for _ in range(150)]
    for i, node in enumerate(nodes[1:], 1):
        node.bootstrap([net.address_of(nodes[net.rng.randrange(i)])], net.now)
        net.kick(node)
        net.run()
    for node in nodes:  # one refresh round (a 15-minute period)
        for bucket in list(node.table.buckets):
            node.find_node(bucket.random_id(node.rng), net.now)
        net.kick(node)
        net.run()
    ids = np.frombuffer(b"".join(n.id for n in nodes), dtype=np.uint8).reshape(150, -1).copy()
    tables = ArrayTables(ids, k=8, id_bits=160)
    tables.fill(np.random.default_rng(1))
    same = total = 0
    for v, node in enumerate(nodes):
        for row in range(tables.depth - 1):
            held = sum(1 for e in node.table if _cpl(node.id, e.id) == row)
            total += 1
            same += held == int((tables.entries[v, row] >= 0).sum())
    assert same / total >= 0.97


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), min_size=2, max_size=120,
                unique_by=lambda b: b[:8]),
       st.binary(min_size=20, max_size=20), st.integers(1, 10), st.integers(0, 2**32))
def test_fill_and_closest_agree_with_routing_table_on_any_ids(ids, target, count, seed):
    tables = ArrayTables(np.frombuffer(b"".join(ids), dtype=np.uint8).reshape(len(ids), 20).copy(),
                         k=4, id_bits=160)
    tables.fill(np.random.default_rng(seed))
    table = RoutingTable(ids[0], k=4, id_bits=160)
    for other in tables.table(0).tolist():
        table.seen_response(ids[other], ("", other), 0.0)
    assert len(table) == len(tables.table(0))
    assert tables.closest(0, target, count).tolist() == [
        e.addr[1] for e in table.closest(target, count)]
