"""ArrayNetwork: the shared Lookup over array tables, with latency, loss and departed nodes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from p2pkit.kademlia.array_network import ArrayNetwork
from p2pkit.kademlia.array_tables import ArrayTables
from p2pkit.kademlia.lookup import MAX_ATTEMPTS


@pytest.fixture(scope="module")
def tables() -> ArrayTables:
    rng = np.random.default_rng(11)
    tables = ArrayTables.random(4000, k=8, id_bits=160, rng=rng)
    tables.fill(rng)
    return tables


def _run(net: ArrayNetwork, count: int, seed: int) -> list:
    rng = random.Random(seed)
    live = np.flatnonzero(net.alive)
    return [net.lookup(int(live[rng.randrange(len(live))]), rng.randbytes(20))
            for _ in range(count)]


def test_stable_lookups_find_the_closest_node(tables):
    outcomes = _run(ArrayNetwork(tables, alpha=3, seed=1), 200, 1)
    assert all(o.found for o in outcomes)
    assert 2 <= np.mean([o.hops for o in outcomes]) <= 4
    # a lookup queries at least the k closest, and answers come after >= one round trip
    assert min(o.queries for o in outcomes) >= 8
    assert all(0.02 <= o.duration for o in outcomes)
    assert all(o.datagrams == 2 * o.queries for o in outcomes)  # no loss: one answer each


def test_same_seed_same_outcomes(tables):
    a = _run(ArrayNetwork(tables, alpha=3, seed=4, loss=0.1), 30, 2)
    b = _run(ArrayNetwork(tables, alpha=3, seed=4, loss=0.1), 30, 2)
    c = _run(ArrayNetwork(tables, alpha=3, seed=5, loss=0.1), 30, 2)
    assert a == b and a != c


def test_departed_nodes_time_out_and_are_asked_twice(tables):
    net = ArrayNetwork(tables, alpha=3, seed=2, query_timeout=1.0)
    stable = _run(net, 100, 3)
    net.remove(np.random.default_rng(1).choice(len(tables), 1200, replace=False))
    churned = _run(net, 100, 3)
    assert np.mean([o.queries for o in churned]) > np.mean([o.queries for o in stable])
    assert np.mean([o.duration for o in churned]) >= 1.0  # some query waited for its timeout
    assert np.mean([o.found for o in churned]) >= 0.95
    # every node gone: every query of the origin's k closest times out twice, nothing found
    net.alive[:] = False
    net.alive[0] = True
    lonely = net.lookup(0, bytes(20))
    assert lonely.queries == 8 * MAX_ATTEMPTS and lonely.hops == 0
    # alpha = 3 in flight: 16 timeouts of 1 s take ceil(16 / 3) = 6 s
    assert lonely.duration == pytest.approx(math.ceil(8 * MAX_ATTEMPTS / 3) * 1.0)


def test_loss_costs_retries(tables):
    clean = _run(ArrayNetwork(tables, alpha=3, seed=3), 100, 4)
    lossy = _run(ArrayNetwork(tables, alpha=3, seed=3, loss=0.2), 100, 4)
    assert np.mean([o.queries for o in lossy]) > np.mean([o.queries for o in clean])
    assert np.mean([o.found for o in lossy]) >= 0.9


def test_bad_models_are_refused(tables):
    for options in ({"loss": 1.0}, {"loss": -0.1}, {"latency": (0.2, 0.1)},
                    {"latency": (0.4, 0.6), "query_timeout": 1.0}):
        with pytest.raises(ValueError):
            ArrayNetwork(tables, alpha=3, seed=1, **options)


def test_record_lookups_end_at_the_first_holder(tables):
    net = ArrayNetwork(tables, alpha=3, seed=4)
    rng = random.Random(4)
    for _ in range(30):
        target = rng.randbytes(20)
        provide = net.lookup(0, target)
        # a provide lookup names the k closest nodes, the true ones on these full tables
        truth = np.argsort([tables.distance(tables.id_of(v), target) for v in range(len(tables))])
        assert list(provide.closest) == [v for v in truth.tolist() if v != 0][: tables.k]
        holders = np.zeros(len(tables), dtype=bool)
        holders[list(provide.closest)] = True
        origin = rng.randrange(1, len(tables))
        if holders[origin]:
            continue
        found = net.lookup(origin, target, holders=holders)
        assert found.found and found.hops >= 1
        full = net.lookup(origin, target)
        assert found.queries <= full.queries
    nobody = net.lookup(5, bytes(20), holders=np.zeros(len(tables), dtype=bool))
    assert not nobody.found and nobody.queries >= tables.k
