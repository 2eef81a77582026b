"""The array core gives the servent simulator's figures, query for query."""

from __future__ import annotations

import numpy as np
import pytest

from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella import array_flood
from p2pkit.gnutella import simulator as servents


@pytest.mark.parametrize(("options", "ttls"), [
    ({"nodes": 300, "topology": "flat"}, (1, 2, 3)),
    ({"nodes": 400, "topology": "ultrapeer"}, (1, 2, 3, 4)),
    ({"nodes": 400, "topology": "ultrapeer", "qrp": False}, (2, 3)),
    ({"nodes": 600, "topology": "ultrapeer", "degree": 4, "leaf_links": 3}, (3,)),
], ids=["flat", "ultrapeer+qrp", "ultrapeer", "other degrees"])
def test_same_figures_as_real_servents(options, ttls):
    top = None
    for ttl in ttls:
        real = servents.simulate(queries=8, seed=5, ttl=ttl, **options)
        if top is None:
            top = array_flood.build_topology(
                seed=5, **{k: v for k, v in options.items() if k != "qrp"})
        arrays = array_flood.simulate(queries=8, seed=5, ttl=ttl, top=top, **options)
        assert arrays == real


def test_topology_is_build_networks():
    people, net = servents.build_network(nodes=500, seed=2)
    try:
        top = array_flood.build_topology(nodes=500, seed=2)
        for i in range(0, 500, 7):
            links = set(people[i].connections)
            if i < top.ultrapeers:
                expected = set(top.up_links[top.up_start[i]:top.up_start[i + 1]].tolist()) | set(
                    top.leaf_links[top.leaf_start[i]:top.leaf_start[i + 1]].tolist())
            else:
                expected = set(top.leaf_ups[i - top.ultrapeers].tolist())
            assert links == expected
            assert top.words[i] == {w for f in people[i].shared
                                    for w in f.name.split("_") if w.startswith("w")}
    finally:
        net.close()


def test_qrp_keeps_queries_from_leaves_that_cannot_answer():
    top = array_flood.build_topology(nodes=3000, seed=1)
    word = "w1999"  # rare
    routed = array_flood.flood(top, 0, word, 3, qrp=True)
    flooded = array_flood.flood(top, 0, word, 3, qrp=False)
    assert routed.answers == flooded.answers  # QRP loses no answer
    assert routed.query_messages < flooded.query_messages / 3
    holders = top.holders.get(word, np.empty(0))
    assert routed.answers <= len(holders)


def test_ttl_bounds_the_flood():
    top = array_flood.build_topology(nodes=2000, topology="flat", degree=4, seed=1)
    reach = [array_flood.flood(top, 5, "w0001", ttl).reached for ttl in range(1, 6)]
    neighbours = top.up_start[6] - top.up_start[5]  # at least degree: others link to it too
    assert reach[0] == neighbours >= 4 and reach == sorted(reach) and reach[-1] <= 2000
    with pytest.raises(LocalProtocolError):
        array_flood.build_topology(nodes=10, topology="ring")
