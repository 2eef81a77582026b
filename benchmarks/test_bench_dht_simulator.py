"""The DHT simulator's own cost: N Mainline nodes on :class:`p2pkit.core.MemoryNetwork`.

``join="protocol"`` is the datagram-heavy case (every node bootstraps through the DHT, each
datagram a KRPC message through the transport); ``populate`` fills the tables directly and
measures the lookups. Figures for 10,000 nodes are in docs/kademlia-simulation.md::

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
