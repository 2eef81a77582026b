"""Dynamic querying (dynamic_query §2): the algorithm's numbers, then an ultrapeer running a
leaf's query over six ultrapeer connections in memory (servents joined by the simulator)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.gnutella.dynamic_query import (
    LEAF_RESULTS,
    MAX_HORIZON,
    Candidate,
    DynamicQuery,
    hosts,
    next_ttl,
)
from p2pkit.gnutella.events import QueryHit
from tests.gnutella.test_servent import Network, capture_link


def test_horizon_is_the_spec_sum():
    # §2.5.2.2: hosts(degree,ttl) = Sum[(degree-1)^i, 0 <= i <= ttl-1]
    assert [hosts(6, t) for t in (1, 2, 3)] == [1, 6, 31]
    assert hosts(32, 3) == 1 + 31 + 31 * 31


def test_next_ttl_follows_the_results_per_host():
    # no result yet: the connection's highest TTL (§2.5.1)
    assert next_ttl(desired=50, results=0, horizon=96, remaining=3, degree=32, max_ttl=3) == 3
    # 45 results from 96 hosts: 5 more need ~10.7 hosts; over 3 connections 3.6 each -> TTL 2
    # (TTL 1 reaches one host); over 12 connections 0.9 each -> TTL 1
    assert next_ttl(desired=50, results=45, horizon=96, remaining=3, degree=32, max_ttl=3) == 2
    assert next_ttl(desired=50, results=45, horizon=96, remaining=12, degree=32, max_ttl=3) == 1
    # 1 result from 96 hosts: 49 more need ~4704 hosts on one connection -> capped at 3
    assert next_ttl(desired=50, results=1, horizon=96, remaining=1, degree=32, max_ttl=3) == 3
    assert next_ttl(desired=50, results=10, horizon=96, remaining=2, degree=32, max_ttl=4) == 3


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 64), st.integers(1, 4)), min_size=0, max_size=40),
       st.lists(st.integers(0, 30), max_size=60))
def test_query_never_repeats_a_connection_nor_passes_its_bounds(conns, hits):
    candidates = [Candidate(i, degree, ttl) for i, (degree, ttl) in enumerate(conns)]
    q = DynamicQuery(desired=LEAF_RESULTS, started=0.0)
    sent: list = []
    now = 0.0
    for count in hits + [0] * 50:
        for conn_id, ttl in q.step(now, candidates):
            assert 1 <= ttl <= candidates[conn_id].max_ttl
            sent.append(conn_id)
        if q.ended:
            break
        q.add_results(count)
        now = q.next_at
    assert len(sent) == len(set(sent))
    assert q.ended in ("results", "connections", "horizon", "lifetime")
    assert q.horizon < MAX_HORIZON + hosts(64, 4)  # at most one send past the bound


def dq_network(rare: bool):
    """up0 (dynamic querying) with the querying leaf q and ultrapeers u1..u6, each with one
    leaf; every leaf shares 20 matching files, or (``rare``) only u6's leaf shares one."""
    n = Network(seed=3)
    n.add("up0", "ultrapeer", dynamic_query=True)
    n.add("q", "leaf")
    n.link("q", "up0")
    for i in range(1, 7):
        n.add(f"u{i}", "ultrapeer")
        files = [f"delta_{i}_{j}.txt" for j in range(20)] if not rare or i == 6 else \
            [f"other_{i}.txt"]
        n.add(f"l{i}", "leaf", files[:1] if rare else files)
        n.link(f"l{i}", f"u{i}")
        n.link(f"u{i}", "up0")
    for name in n.nodes:
        n.events(name)
    return n


def test_common_content_ends_with_the_probe():
    n = dq_network(rare=False)
    assert n.nodes["up0"].connections["u1"].headers.get("X-Dynamic-Querying") is None
    assert n.nodes["u1"].connections["up0"].headers.get("X-Dynamic-Querying") == "0.1"
    seen = capture_link(n, "up0", "u1")
    n.nodes["q"].query("delta", now=0.0, ttl=7)
    n.pump(0.5)
    reached = [u for u in range(1, 7) if n.nodes[f"u{u}"].received["query"]]
    assert reached == [1, 2, 3]  # §2.5.1 the probe: three connections, TTL 2
    [probe] = [d for d in seen if d.type == "query"]
    assert (probe.ttl, probe.hops) == (2, 1)  # "ignores the TTL" the leaf gave (7)
    n.pump(60.0)
    hits = n.events("q", QueryHit)
    assert sum(len(h.descriptor.results) for h in hits) == 60  # 3 leaves x 20 >= 50: ended
    assert [u for u in range(1, 7) if n.nodes[f"u{u}"].received["query"]] == [1, 2, 3]
    assert not n.nodes["up0"].connections["q"].dynamic_queries


def test_rare_content_goes_one_connection_at_a_time():
    n = dq_network(rare=True)
    seen = capture_link(n, "up0", "u6")
    n.nodes["q"].query("delta", now=0.0)

    def reached():
        return [u for u in range(1, 7) if n.nodes[f"u{u}"].received["query"]]
    n.pump(0.5)
    assert reached() == [1, 2, 3]
    n.pump(7.7)  # §2.5.2.3: 2 hops x 2.4 s + 1 s per connection probed
    assert reached() == [1, 2, 3]
    n.pump(7.9)
    assert reached() == [1, 2, 3, 4]
    n.pump(7.8 + 7.1)  # no result: TTL 3 next (3 x 2.4 s)
    assert reached() == [1, 2, 3, 4]
    n.pump(7.8 + 7.3)
    assert reached() == [1, 2, 3, 4, 5]
    n.pump(7.8 + 7.2 + 7.3)
    assert reached() == [1, 2, 3, 4, 5, 6]
    [hit] = n.events("q", QueryHit)
    assert hit.descriptor.results[0].file_name == "delta_6_0.txt"
    # no result so far: u6 got the query with the highest TTL (§2.5.1), hops 1
    [sent] = [d for d in seen if d.type == "query"]
    assert (sent.ttl, sent.hops) == (3, 1)
    assert n.nodes["l6"].received["query"] == 1
    n.pump(60.0)
    assert not n.nodes["up0"].connections["q"].dynamic_queries  # no connection left: ended


def test_ultrapeer_own_query_targets_150_results():
    """§2.2: an ultrapeer searching for itself runs the same algorithm for 150 results (so six
    leaves of 20 results each do not end it early: every connection is queried)."""
    n = dq_network(rare=False)
    up0 = n.nodes["up0"]
    guid = up0.query("delta", 0.0)

    def reached():
        return [u for u in range(1, 7) if n.nodes[f"u{u}"].received["query"]]
    n.pump(0.5)
    assert reached() == [1, 2, 3]
    for step in range(77, 800):  # the simulator runs connection timers; ours by hand
        now = step / 10
        n.pump(now)
        up0.handle_timer(now)
        n.pump(now)
        if now == 7.7:
            assert reached() == [1, 2, 3]
        if now == 7.8:
            assert reached() == [1, 2, 3, 4]
    assert reached() == [1, 2, 3, 4, 5, 6]
    assert up0.query_hits[guid] == 120 and not up0.dynamic_queries  # no connection left


def test_a_leaf_cannot_hold_more_than_its_share_of_dynamic_queries():
    from p2pkit.gnutella.servent import MAX_DYNAMIC_QUERIES_PER_LEAF

    n = dq_network(rare=True)
    for i in range(3 * MAX_DYNAMIC_QUERIES_PER_LEAF):
        n.nodes["q"].query(f"nothing{i}", now=0.0)
    n.pump(0.5)
    running = n.nodes["up0"].connections["q"].dynamic_queries
    assert len(running) == MAX_DYNAMIC_QUERIES_PER_LEAF  # the oldest ended first
    n.nodes["up0"].close("q", 1.0)
    n.pump(1.0)
    assert not running  # freed with the leaf's connection
