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
