"""The DHT simulator's own cost: N Mainline nodes on :class:`p2pkit.core.MemoryNetwork`.

``join="protocol"`` is the datagram-heavy case (every node bootstraps through the DHT, each
datagram a KRPC message through the transport); ``populate`` fills the tables directly and
measures the lookups; the array core runs 100,000 nodes. Figures for 10,000 nodes are in
docs/kademlia-simulation.md, for the array core in docs/simulation-scale.md::

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_dht_simulator.py \\
        --benchmark-only

No timing asserts; the checks are on what the runs found.
"""

from __future__ import annotations

import pytest

from p2pkit.dht.simulator import simulate


@pytest.mark.parametrize("join", ["protocol", "populate"])
def test_simulate_300_nodes(benchmark, join):
    report = benchmark.pedantic(
        lambda: simulate(nodes=300, lookups=50, seed=1, churn=0.3, join=join),
        rounds=3, iterations=1)
    benchmark.extra_info.update(join=join, hops=report.stable.mean_hops,
                                queries=report.stable.mean_queries,
                                datagrams=report.stable.datagrams)
    assert report.stable.success_rate == 1.0 and report.churned.nodes == 210


def test_array_core_100000_nodes(benchmark):
    """Issue 17's goal for 100,000 nodes (under 3 minutes): build and 1,000 lookups, stable
    and after 30 % churn, on the array core. Figures in docs/simulation-scale.md."""
    report = benchmark.pedantic(
        lambda: simulate(nodes=100_000, lookups=1000, seed=1, churn=0.3, core="array"),
        rounds=1, iterations=1)
    benchmark.extra_info.update(build_seconds=report.build_seconds,
                                hops=report.stable.mean_hops,
                                cpu_per_lookup=report.stable.cpu_per_lookup)
    assert report.stable.success_rate >= 0.99 and report.churned.nodes == 70_000
