"""Routing table (BEP 5 §Routing Table): splits, the 15-minute rule, replacements, refresh."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.kademlia import routing
from p2pkit.kademlia.ids import distance
from p2pkit.kademlia.routing import (
    QUESTIONABLE_AFTER,
    REFRESH_AFTER,
    NodeEntry,
    RoutingTable,
)

OWN = bytes(20)


def node_id(first: int, rest: int = 0) -> bytes:
    return bytes([first]) + rest.to_bytes(19, "big")


def test_only_the_bucket_holding_our_id_splits():
    table = RoutingTable(OWN, k=8, id_bits=160)
    far = [node_id(0x80 + i) for i in range(10)]  # all in the upper half: our id is in the lower
    for i, nid in enumerate(far):
        table.seen_response(nid, ("10.0.0.1", 1000 + i), now=0.0)
    # the first split separates halves; the upper half then holds 8 and refuses the rest
    assert len(table.buckets) == 2
    upper = table.bucket_for(far[0])
    assert len(upper.nodes) == 8 and len(upper.replacements) == 2
    near = [node_id(0x01, i) for i in range(10)]
    for i, nid in enumerate(near):
        table.seen_response(nid, ("10.0.0.2", 1000 + i), now=0.0)
    assert len(table.buckets) > 2  # the buckets covering our id kept splitting
    assert all(b.covers(0) or len(b.nodes) <= 8 for b in table.buckets)
    # 0x01… ids share 7 leading zero bits with us: they end in one bucket that no longer
    # holds our id, so it keeps 8 and caches the other 2
    assert sum(1 for e in table if e.id in near) == 8
    bucket = table.bucket_for(near[0])
    assert not bucket.covers(0) and len(bucket.replacements) == 2


def test_node_states_follow_the_15_minute_rule():
    entry = NodeEntry(node_id(1), ("10.0.0.1", 1), last_response=0.0)
    assert entry.state(QUESTIONABLE_AFTER - 1) == "good"
    assert entry.state(QUESTIONABLE_AFTER) == "questionable"
    entry.last_query = QUESTIONABLE_AFTER  # "has ever responded [...] and has sent us a query"
    assert entry.state(QUESTIONABLE_AFTER + 60) == "good"
    entry.failures = 2  # "fail to respond to multiple queries in a row"
    assert entry.state(QUESTIONABLE_AFTER + 60) == "bad"
    assert NodeEntry(node_id(2), ("10.0.0.1", 1)).state(0.0) == "questionable"


def test_bad_node_replaced_from_the_replacement_cache():
    table = RoutingTable(OWN, k=8, id_bits=160)
    ids = [node_id(0x80 + i) for i in range(9)]
    for i, nid in enumerate(ids):
        table.seen_response(nid, ("10.0.0.1", 1000 + i), now=0.0)
    table.seen_response(node_id(0x01), ("10.0.0.9", 1), now=0.0)  # forces the split
    for i, nid in enumerate(ids):
        table.seen_response(nid, ("10.0.0.1", 1000 + i), now=0.0)
    bucket = table.bucket_for(ids[0])
    waiting = next(iter(bucket.replacements))
    victim = next(iter(bucket.nodes))
    table.failed(victim, now=1.0)
    assert victim in table  # one failure: still there
    table.failed(victim, now=2.0)
    assert victim not in table and waiting in table


def test_new_node_takes_the_place_of_a_bad_one():
    table = RoutingTable(OWN, k=8, id_bits=160)
    ids = [node_id(0x80 + i) for i in range(8)]
    table.seen_response(node_id(0x01), ("10.0.0.9", 1), now=0.0)
    for i, nid in enumerate(ids):
        table.seen_response(nid, ("10.0.0.1", 1000 + i), now=0.0)
    if len(table.buckets) == 1:
        table.seen_response(node_id(0x02), ("10.0.0.9", 2), now=0.0)
    for _ in range(2):
        table.failed(ids[3], now=1.0)
    newcomer = node_id(0xF0)
    assert table.seen_response(newcomer, ("10.0.0.5", 5), now=2.0) is not None
    assert ids[3] not in table and newcomer in table


def test_address_of_a_known_id_is_not_moved():
    table = RoutingTable(OWN, k=8, id_bits=160)
    table.seen_response(node_id(5), ("10.0.0.1", 1), now=0.0)
    assert table.seen_response(node_id(5), ("10.6.6.6", 1), now=1.0) is None
    assert table.get(node_id(5)).addr == ("10.0.0.1", 1)


def test_seen_query_asks_for_verification_only_when_there_is_room():
    table = RoutingTable(OWN, k=8, id_bits=160)
    assert table.seen_query(node_id(0x90), ("10.0.0.1", 1), now=0.0)
    assert not table.seen_query(OWN, ("10.0.0.1", 1), now=0.0)
    table.seen_response(node_id(0x90), ("10.0.0.1", 1), now=0.0)
    assert not table.seen_query(node_id(0x90), ("10.0.0.1", 1), now=5.0)
    assert table.get(node_id(0x90)).last_query == 5.0


def test_refresh_and_questionable():
    table = RoutingTable(OWN, k=8, id_bits=160)
    table.seen_response(node_id(0x90), ("10.0.0.1", 1), now=0.0)
    assert table.stale_buckets(REFRESH_AFTER - 1) == []
    [stale] = table.stale_buckets(REFRESH_AFTER)
    rid = stale.random_id(random.Random(1))
    assert stale.covers(int.from_bytes(rid, "big"))
    assert [e.id for e in table.questionable(QUESTIONABLE_AFTER)] == [node_id(0x90)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), max_size=120, unique=True),
       st.binary(min_size=20, max_size=20))
def test_closest_is_the_true_xor_order_of_what_is_kept(ids, target):
    own = random.Random(len(ids)).randbytes(20)
    table = RoutingTable(own, k=8, id_bits=160)
    for i, nid in enumerate(ids):
        table.seen_response(nid, ("10.0.0.1", i), now=0.0)
    kept = sorted((e.id for e in table), key=lambda x: distance(x, target))
    assert [e.id for e in table.closest(target, 8)] == kept[:8]
    assert all(len(b.nodes) <= 8 for b in table.buckets)
    assert own not in table


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.booleans(),
                          st.integers(0, 3)), max_size=150, unique_by=lambda x: x[0]),
       st.binary(min_size=20, max_size=20), st.integers(1, 40))
def test_closest_by_family_and_without_bad_nodes_is_the_brute_force_answer(nodes, target, count):
    # the bucket walk visits buckets by their smallest distance to the target; checked here
    # against sorting every kept entry
    table = RoutingTable(random.Random(len(nodes)).randbytes(20), k=8, id_bits=160)
    for i, (nid, v6, failures) in enumerate(nodes):
        entry = table.seen_response(nid, ("::1" if v6 else "10.0.0.1", i), now=0.0)
        if entry is not None:
            for _ in range(failures):
                table.failed(nid, now=1.0)
    entries = list(table)
    for flat_max in (0, 10**6):  # the bucket walk, then sorting all kept ids
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(routing, "FLAT_CLOSEST_MAX", flat_max)
            for ipv6 in (None, False, True):
                for now in (None, 2.0):
                    expected = sorted(
                        (e for e in entries if (ipv6 is None or e.ipv6 is ipv6)
                         and (now is None or e.state(now) != "bad")),
                        key=lambda e: distance(e.id, target))[:count]
                    assert table.closest(target, count, now=now, ipv6=ipv6) == expected
            assert table.closest(target, count, include_bad=True, now=2.0) == \
                table.closest(target, count)


def test_closest_sees_every_change_of_the_table():
    table = RoutingTable(OWN, k=8, id_bits=160)
    a, b = node_id(0x80), node_id(0x81)
    table.seen_response(a, ("10.0.0.1", 1), now=0.0)
    assert [e.id for e in table.closest(a, 8, now=0.0)] == [a]
    table.seen_response(b, ("10.0.0.2", 1), now=0.0)
    assert [e.id for e in table.closest(b, 8, now=0.0)] == [b, a]
    table.failed(b, now=1.0)
    table.failed(b, now=1.0)  # bad now: left out, until it answers again
    assert [e.id for e in table.closest(b, 8, now=1.0)] == [a]
    table.seen_response(b, ("10.0.0.2", 1), now=2.0)
    assert [e.id for e in table.closest(b, 8, now=2.0)] == [b, a]
    table.remove(a)
    assert [e.id for e in table.closest(a, 8, now=2.0)] == [b]
