"""The in-memory network: seeded latency and loss, churn, and the lookup figures."""

from __future__ import annotations

from p2pkit.dht.node import PingCompleted
from p2pkit.dht.simulator import Network, measure_lookups, simulate


def test_same_seed_same_run():
    first = simulate(nodes=80, lookups=10, seed=4, churn=0.3, loss=0.05)
    again = simulate(nodes=80, lookups=10, seed=4, churn=0.3, loss=0.05)
    assert (first.stable, first.churned) == (again.stable, again.churned)
    other = simulate(nodes=80, lookups=10, seed=5, churn=0.3, loss=0.05)
    assert (other.stable, other.churned) != (first.stable, first.churned)


def test_lookups_find_the_closest_live_node_under_churn():
    report = simulate(nodes=300, lookups=20, seed=1, churn=0.3)
    assert report.stable.nodes == 300 and report.churned.nodes == 210
    assert report.stable.success_rate == 1.0
    assert report.churned.success_rate >= 0.9
    # dead nodes cost queries that time out
    assert report.churned.mean_queries > report.stable.mean_queries
    assert 1 <= report.stable.mean_hops < report.stable.log2_n


def test_loss_and_latency_are_applied():
    net = Network(seed=3, latency=(0.5, 0.5), loss=1.0)
    a, b = net.add_node(), net.add_node()
    op = a.ping(net.address_of(b), net.now)
    net.kick(a)
    net.run()
    assert (net.sent, net.lost, net.delivered) == (1, 1, 0)
    assert net.events(a) == [PingCompleted(operation=op, addr=net.address_of(b), node_id=None)]
    assert net.now == 1.0  # the query timeout, in simulated time

    net = Network(seed=3, latency=(0.4, 0.4))
    a, b = net.add_node(), net.add_node()
    a.ping(net.address_of(b), net.now)
    net.kick(a)
    net.run()
    assert net.events(a)[0].node_id == b.id
    # the ping (0.4 s), then both b's answer and b's ping to verify a (0.8), its answer (1.2)
    assert net.delivered == 4 and abs(net.now - 1.2) < 1e-9
    assert b.id in a.table and a.id in b.table


def test_answers_arriving_after_the_timeout_do_not_start_a_ping_loop():
    net = Network(seed=3, latency=(0.5, 0.5), query_timeout=1.0)  # round trip == timeout
    a, b = net.add_node(), net.add_node()
    a.ping(net.address_of(b), net.now)
    net.kick(a)
    net.run()
    assert net.sent == 6 and net.now == 2.0  # each side verifies the other once, then stops


def test_removed_nodes_receive_nothing():
    net = Network(seed=2)
    nodes = [net.add_node() for _ in range(30)]
    net.populate()
    for node in nodes[:10]:
        net.remove(node)
    stats = measure_lookups(net, 5)
    assert stats.nodes == 20 and net.undeliverable > 0
    assert all(not n.stats.get("received") for n in nodes[:10])


def test_a_closed_network_is_freed_by_reference_counting():
    import gc
    import weakref

    net = Network(seed=2)
    nodes = [net.add_node() for _ in range(30)]
    net.populate()
    measure_lookups(net, 3)
    nodes[0].ping(net.address_of(nodes[1]), net.now)
    net.kick(nodes[0])  # work left in flight
    transport, node = weakref.ref(net.transport), weakref.ref(nodes[0])
    net.close()
    assert net.transport.pending == 0 and not net.nodes
    gc.disable()
    try:
        del net, nodes
        assert transport() is None and node() is None  # no reference cycle kept them
    finally:
        gc.enable()


def test_populate_fills_every_bucket_its_range_can_fill():
    """Issue 17: the old populate (16 id neighbours + 160 random nodes per table) left the
    middle buckets of large networks short (at 40,000 nodes 53 % of the buckets whose range
    held >= k nodes), and lookups missed the closest node. Now each bucket holds k nodes of
    its range, or all of them, as bootstrap and refresh leave it."""
    net = Network(seed=6)
    nodes = [net.add_node() for _ in range(3000)]
    net.populate()
    by_prefix = {}
    for v in range(0, 3000, 97):
        own = int.from_bytes(nodes[v].id, "big")
        in_range: dict[int, int] = {}
        for other in nodes:
            if other is not nodes[v]:
                cpl = 160 - (own ^ int.from_bytes(other.id, "big")).bit_length()
                in_range[cpl] = in_range.get(cpl, 0) + 1
        held: dict[int, int] = {}
        for entry in nodes[v].table:
            cpl = 160 - (own ^ entry.number).bit_length()
            held[cpl] = held.get(cpl, 0) + 1
        for cpl, count in in_range.items():
            if count >= 8 and cpl < 20:
                by_prefix[cpl] = by_prefix.get(cpl, 0) + (held.get(cpl, 0) == 8)
                assert held.get(cpl, 0) == 8, (v, cpl)
    assert len(by_prefix) >= 8
