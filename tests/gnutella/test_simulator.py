"""The simulator: deterministic with a seed; QRP and ultrapeers cut messages per query."""

from __future__ import annotations

import pytest

from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella.simulator import build_network, simulate


def test_seeded_runs_repeat():
    a = simulate(nodes=80, ttl=2, queries=3, seed=5)
    b = simulate(nodes=80, ttl=2, queries=3, seed=5)
    assert a == b


def test_ttl_widens_the_flood():
    small = simulate(nodes=120, topology="flat", ttl=1, queries=3, seed=2, degree=4)
    large = simulate(nodes=120, topology="flat", ttl=3, queries=3, seed=2, degree=4)
    assert small.query_messages == 4  # TTL 1: one copy to each of the origin's neighbours
    assert large.reached > small.reached and large.query_messages > small.query_messages


def test_qrp_spares_leaves():
    flood = simulate(nodes=150, topology="ultrapeer", qrp=False, ttl=3, queries=4, seed=3)
    routed = simulate(nodes=150, topology="ultrapeer", qrp=True, ttl=3, queries=4, seed=3)
    assert routed.query_messages < flood.query_messages
    assert routed.answered == flood.answered  # QRP drops only queries no leaf can answer


def test_network_shape():
    servents, _ = build_network(nodes=50, topology="ultrapeer", degree=3, seed=1)
    ups = [s for s in servents if s.is_ultrapeer]
    assert len(ups) == 5
    leaves = [s for s in servents if not s.is_ultrapeer]
    assert all(len(s._established()) == 2 for s in leaves)
    with pytest.raises(LocalProtocolError):
        build_network(nodes=5, topology="mesh")


def test_leaves_never_exceed_an_ultrapeers_slots():
    """1,400 leaves of two links on 100 ultrapeers: 28 per ultrapeer on average, so unbounded
    random draws overfill some (the bug seen at 100,000 servents: 33 leaves); with the slot
    rule every ultrapeer holds at most MAX_LEAVES, each leaf distinct ultrapeers."""
    import random as random_module
    from collections import Counter

    from p2pkit.gnutella.servent import MAX_LEAVES
    from p2pkit.gnutella.simulator import attach_leaves

    chosen = attach_leaves(random_module.Random(3), 100, 1400, 2)
    held = Counter(up for ups in chosen for up in ups)
    assert max(held.values()) == MAX_LEAVES and sum(held.values()) == 2800
    assert all(len(set(ups)) == 2 for ups in chosen)
    unbounded = random_module.Random(3)
    free_draws = [unbounded.sample(range(100), 2) for _ in range(1400)]
    assert max(Counter(u for ups in free_draws for u in ups).values()) > MAX_LEAVES
    first_full = next(i for i in range(1400) if max(Counter(
        u for ups in chosen[:i + 1] for u in ups).values()) == MAX_LEAVES)
    assert chosen[:first_full + 1] == free_draws[:first_full + 1]


def test_ultrapeer_mesh_keeps_its_link_limit_and_refuses_impossible_sizes():
    import random as random_module
    from collections import Counter

    from p2pkit.gnutella.simulator import attach_leaves, link_ultrapeers

    for seed in range(20):  # the cap bites often at 7 links for a degree of 6
        edges = link_ultrapeers(random_module.Random(seed), 40, 6, max_links=7)
        links = Counter(i for edge in edges for i in edge)
        assert max(links.values()) <= 7 and sum(v >= 6 for v in links.values()) >= 38
    with pytest.raises(LocalProtocolError, match="do not fit"):
        attach_leaves(random_module.Random(1), 10, 301, 1)
    with pytest.raises(LocalProtocolError, match="degree"):
        link_ultrapeers(random_module.Random(1), 5, 6)
