"""The node core and the array core, on the same tables, give the same lookups within
sampling error (issue 17): two-sample KS and chi-square on hops, and success counts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from p2pkit.dht.simulator import Network, measure_array_lookups, measure_lookups, simulate
from p2pkit.kademlia.array_network import ArrayNetwork
from p2pkit.kademlia.array_tables import ArrayTables
from p2pkit.kademlia.two_sample import chi_square_2samp, ks_2samp


def _samples(histogram: dict[int, int]) -> list[int]:
    return [hops for hops, count in histogram.items() for _ in range(count)]


@pytest.fixture(scope="module")
def both_cores():
    net = Network(seed=9)
    members = [net.add_node() for _ in range(2000)]
    tables = net.populate()
    array = ArrayNetwork(tables, alpha=3, seed=9)
    node_stable = measure_lookups(net, 250)
    array_stable = measure_array_lookups(array, 250, random.Random(9))
    gone = np.random.default_rng(9).choice(2000, 600, replace=False)
    for v in gone.tolist():
        net.remove(members[v])
    array.remove(gone)
    node_churned = measure_lookups(net, 250)
    array_churned = measure_array_lookups(array, 250, random.Random(10))
    net.close()
    return (node_stable, array_stable), (node_churned, array_churned)


@pytest.mark.parametrize("phase", [0, 1], ids=["stable", "after 30 % churn"])
def test_same_hop_distribution(both_cores, phase):
    node, array = both_cores[phase]
    assert node.nodes == array.nodes
    assert ks_2samp(_samples(node.hop_histogram), _samples(array.hop_histogram)).p_value > 0.01
    assert chi_square_2samp(node.hop_histogram, array.hop_histogram).p_value > 0.01
    assert abs(node.mean_queries - array.mean_queries) < 0.15 * node.mean_queries


def test_same_success(both_cores):
    (node, array), (node_churned, array_churned) = both_cores
    assert node.success_rate == array.success_rate == 1.0
    assert node_churned.success_rate >= 0.95 and array_churned.success_rate >= 0.95


def test_a_real_difference_is_detected(both_cores):
    # the tests have power: a network 8 times larger needs about one hop more
    (node, _), _ = both_cores
    rng = np.random.default_rng(9)
    tables = ArrayTables.random(16000, k=8, id_bits=160, rng=rng)
    tables.fill(rng)
    larger = measure_array_lookups(ArrayNetwork(tables, alpha=3, seed=9), 250, random.Random(9))
    assert chi_square_2samp(node.hop_histogram, larger.hop_histogram).p_value < 0.01
    assert ks_2samp(_samples(node.hop_histogram), _samples(larger.hop_histogram)).p_value < 0.01


def test_simulate_runs_either_core_and_refuses_what_it_cannot():
    report = simulate(nodes=3000, lookups=50, seed=3, core="array", churn=0.2)
    assert (report.core, report.stable.nodes, report.churned.nodes) == ("array", 3000, 2400)
    assert report.stable.success_rate == 1.0
    with pytest.raises(ValueError):
        simulate(nodes=100, lookups=5, core="array", join="protocol")
    with pytest.raises(ValueError):
        simulate(nodes=100, lookups=5, core="cuckoo")
    with pytest.raises(ValueError):
        simulate(nodes=100, lookups=5, churn=1.0)
