"""The iterative lookup (Kademlia §2.3 as BEP 5 uses it): alpha in flight, k closest, the end."""

from __future__ import annotations

import random

from p2pkit.kademlia.ids import distance
from p2pkit.kademlia.lookup import Lookup


def nid(n: int) -> bytes:
    return n.to_bytes(20, "big")


def test_alpha_in_flight_and_closest_first():
    lookup = Lookup(nid(0), k=4, alpha=3, id_bits=160)
    for n in (50, 40, 30, 20, 10):
        lookup.add(nid(n), ("10.0.0.1", n))
    first = lookup.next_queries()
    assert [c.addr[1] for c in first] == [10, 20, 30]
    assert lookup.next_queries() == []  # three in flight
    lookup.failed(nid(10))
    assert [c.addr[1] for c in lookup.next_queries()] == [40]
    assert not lookup.finished


def test_ends_when_the_k_closest_answered():
    lookup = Lookup(nid(0), k=2, alpha=2, id_bits=160)
    lookup.add(nid(100), ("10.0.0.1", 100))
    lookup.add(nid(200), ("10.0.0.1", 200))
    lookup.next_queries()
    lookup.responded(nid(100), [(nid(5), ("10.0.0.1", 5))], token=b"t")
    assert not lookup.finished
    lookup.responded(nid(200), [])
    [c] = lookup.next_queries()
    assert c.addr[1] == 5 and c.hop == 2
    lookup.responded(nid(5), [(nid(300), ("10.0.0.1", 300))])  # farther: not asked
    assert lookup.finished and lookup.next_queries() == []
    assert [c.addr[1] for c in lookup.closest()] == [5, 100]
    assert lookup.closest()[1].token == b"t"
    assert lookup.queries_sent == 3 and lookup.hops == 2


def test_converges_on_a_static_graph():
    rng = random.Random(4)
    ids = [rng.randbytes(20) for _ in range(300)]
    target = rng.randbytes(20)

    def known_by(node: bytes) -> list[bytes]:  # each node knows its 8 closest to any target
        return sorted(ids, key=lambda x: distance(x, node))[1:20] + rng.sample(ids, 10)

    lookup = Lookup(target, k=8, alpha=3, id_bits=160)
    for start in rng.sample(ids, 3):
        lookup.add(start, ("10.0.0.1", 1))
    while not lookup.finished:
        for c in lookup.next_queries():
            near = sorted(known_by(c.id), key=lambda x: distance(x, target))[:8]
            lookup.responded(c.id, [(x, ("10.0.0.1", 1)) for x in near])
    best = sorted(ids, key=lambda x: distance(x, target))[:8]
    assert [c.id for c in lookup.closest()] == best


def test_a_timeout_is_retried_once_an_error_is_not():
    lookup = Lookup(nid(0), k=2, alpha=1, id_bits=160)
    lookup.add(nid(1), ("10.0.0.1", 1))
    lookup.add(nid(2), ("10.0.0.1", 2))
    [c] = lookup.next_queries()
    lookup.failed(c.id, timeout=True)
    assert lookup.next_queries()[0].id == nid(1)  # asked again
    lookup.failed(nid(1), timeout=True)
    assert lookup.next_queries()[0].id == nid(2)  # second timeout: given up
    lookup.failed(nid(2))  # an error answer: not retried
    assert lookup.next_queries() == [] and lookup.finished and lookup.closest() == []
    assert lookup.queries_sent == 3


def test_a_bootstrap_address_holds_the_end_until_it_answers():
    lookup = Lookup(nid(0), k=2, alpha=2, id_bits=160)
    lookup.address_queried()
    assert not lookup.finished  # nothing known, but the bootstrap node has not answered yet
    lookup.address_answered(nid(9), ("10.0.0.1", 9), [(nid(3), ("10.0.0.1", 3))], token=b"t")
    [c] = lookup.next_queries()
    assert c.id == nid(3) and c.hop == 2  # the bootstrap node itself is hop 1
    lookup.responded(nid(3), [])
    assert lookup.finished and [x.id for x in lookup.closest()] == [nid(3), nid(9)]
    lookup = Lookup(nid(0), k=2, alpha=2, id_bits=160)
    lookup.address_queried()
    lookup.address_failed()
    assert lookup.finished and lookup.closest() == []


def test_a_discounted_answer_names_nodes_but_does_not_count():
    lookup = Lookup(nid(0), k=1, alpha=1, id_bits=160)
    lookup.add(nid(1), ("10.0.0.1", 1))
    lookup.next_queries()
    lookup.discounted(nid(1), [(nid(2), ("10.0.0.1", 2))])
    assert not lookup.finished  # nid(2) is still to ask; nid(1) is out of the window
    [c] = lookup.next_queries()
    assert c.id == nid(2)
    lookup.responded(nid(2), [])
    assert [x.id for x in lookup.closest()] == [nid(2)] and lookup.finished
    lookup = Lookup(nid(0), k=1, alpha=1, id_bits=160)
    lookup.address_queried()
    lookup.address_answered(nid(5), ("10.0.0.1", 5), [], counted=False)
    assert lookup.finished and lookup.closest() == []


def test_seed_takes_the_k_closest_good_nodes_of_the_table():
    from p2pkit.kademlia.routing import RoutingTable

    table = RoutingTable(nid(1 << 150), k=8, id_bits=160)
    for n in range(1, 12):
        table.seen_response(nid(n), ("10.0.0.1", n), now=0.0)
    for _ in range(2):
        table.failed(nid(1), now=1.0)  # bad: left out
    lookup = Lookup(nid(0), k=3, alpha=3, id_bits=160)
    lookup.seed(table, now=1.0)
    assert [c.addr[1] for c in lookup.next_queries()] == [2, 3, 4]
