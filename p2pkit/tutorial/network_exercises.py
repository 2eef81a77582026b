"""Exercises of chapters 8 and 9: a Kademlia lookup, and the cost of a Gnutella flood.

Chapter 8's lookup runs on :class:`p2pkit.dht.simulator.Network` (real p2pkit DHT nodes, their
routing tables filled as in the chapter) and is judged by the true closest nodes and by the
queries it spends next to p2pkit's own :class:`~p2pkit.kademlia.lookup.Lookup`. Chapter 9's
functions are judged against :func:`p2pkit.gnutella.qrp.qrp_hash` on the keywords of the
gtk-gnutella capture, and against :func:`p2pkit.gnutella.array_flood.flood` on the chapter's
flat topologies.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from functools import cache

from p2pkit.capture.dissect import dissect
from p2pkit.dht.simulator import Network
from p2pkit.gnutella import array_flood
from p2pkit.gnutella.qrp import keywords, qrp_hash
from p2pkit.kademlia.ids import distance
from p2pkit.kademlia.lookup import Lookup
from p2pkit.tutorial.course_data import capture
from p2pkit.tutorial.exercise import Exercise, ExerciseFailed, expect

__all__ = ["EXERCISES"]

# -- chapter 8: lookups (BEP 5 §Routing Table; Kademlia §2.3 node lookup) -------------------------

LOOKUP_NODES = 1000
LOOKUPS = 20
K = 8
Ask = Callable[[bytes], list[bytes]]


@cache
def _dht() -> tuple[dict[bytes, object], list[bytes]]:
    net = Network(seed=8)
    nodes = [net.add_node() for _ in range(LOOKUP_NODES)]
    net.populate()
    return {n.id: n for n in nodes}, [n.id for n in nodes]


def _reference_queries(by_id: dict[bytes, object], origin: bytes, target: bytes) -> int:
    lookup = Lookup(target, k=K, alpha=3, id_bits=160)
    lookup.seed(by_id[origin].table, now=0.0)
    while not lookup.finished and (asked := lookup.next_queries()):
        for c in asked:
            lookup.responded(c.id, [(e.id, e.addr)
                                    for e in by_id[c.id].table.closest(target, K)])
    return lookup.queries_sent


def _check_lookup(iterative_lookup: Callable[[bytes, list[bytes], Ask, int, int], list[bytes]]
                  ) -> None:
    by_id, ids = _dht()
    rng = random.Random(88)
    exact, mine, theirs = 0, [], []
    for n in range(LOOKUPS):
        origin, target = rng.choice(ids), rng.randbytes(20)
        asked: list[bytes] = []

        def ask(node: bytes, target: bytes = target, asked: list[bytes] = asked) -> list[bytes]:
            if node not in by_id:
                raise ExerciseFailed(f"ask() was given {bytes(node)[:4].hex()}..., an id no node "
                                     "has: ask only nodes you were told about")
            asked.append(node)
            return [e.id for e in by_id[node].table.closest(target, K)]

        start = [e.id for e in by_id[origin].table.closest(target, K)]
        got = [bytes(i) for i in iterative_lookup(target, start, ask, K, 3)]
        what = f"iterative_lookup(target {target[:4].hex()}..., lookup {n} of {LOOKUPS})"
        if len(got) != K or len(set(got)) != K:
            raise ExerciseFailed(f"{what}: expected {K} distinct ids, got {len(got)} "
                                 f"({len(set(got))} distinct)")
        if got != sorted(got, key=lambda i: distance(i, target)):
            raise ExerciseFailed(f"{what}: the ids are not sorted closest first (XOR distance)")
        truth = sorted(ids, key=lambda i: distance(i, target))[:K]
        exact += got == truth
        mine.append(len(asked))
        theirs.append(_reference_queries(by_id, origin, target))
    if exact < LOOKUPS - 1:
        raise ExerciseFailed(f"on {LOOKUP_NODES} simulated DHT nodes, only {exact} of {LOOKUPS} "
                             f"lookups found the true {K} closest nodes (p2pkit's Lookup finds "
                             "them every time): keep asking until the k closest you know have "
                             "all answered")
    if statistics.mean(mine) > 3 * statistics.mean(theirs):
        raise ExerciseFailed(f"your lookups asked {statistics.mean(mine):.0f} nodes on average, "
                             f"p2pkit's Lookup {statistics.mean(theirs):.0f}: ask only the alpha "
                             "closest not yet asked, and stop when the k closest have answered")


# -- chapter 9: Gnutella flooding (Gnutella 0.6 §2.2.7 TTL and hops; QRP §hashing) ------------

@cache
def _capture_words() -> list[str]:
    words: set[str] = set()
    for r in dissect(capture("gtkg123-plain-up2-3leaves.pcap")):
        if r.protocol == "gnutella" and r.message == "query":
            words.update(keywords(r.fields.get("search_criteria") or ""))
        elif r.protocol == "gnutella" and r.message == "query_hit":
            for result in r.fields.get("results", []):
                words.update(keywords(result.get("file_name", "")))
    if len(words) < 5:
        raise ExerciseFailed("too few keywords in the gtk-gnutella capture (it changed?)")
    return sorted(words)


def _check_qrp_hash(learner_qrp_hash: Callable[[str, int], int]) -> None:
    rng = random.Random(9)
    words = _capture_words() + ["", "eb", "ÉTÉ", "MiXeD"] + \
        ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(
            1, 20))) for _ in range(50)]
    for word in words:
        for bits in (13, 16, 20):
            expect(learner_qrp_hash(word, bits), qrp_hash(word, bits),
                   f"qrp_hash({word!r}, {bits})")


def _check_flood(query_messages: Callable[[list[list[int]], int, int], int]) -> None:
    rng = random.Random(99)
    for nodes, seed in ((60, 1), (300, 2), (1000, 3)):
        top = array_flood.build_topology(nodes=nodes, topology="flat", seed=seed)
        neighbours = [top.up_links[top.up_start[i]:top.up_start[i + 1]].tolist()
                      for i in range(nodes)]
        for ttl in (1, 2, 3, 5):
            origin = rng.randrange(nodes)
            want = array_flood.flood(top, origin, "x", ttl, qrp=False).query_messages
            expect(query_messages(neighbours, origin, ttl), want,
                   f"query_messages(<flat network of {nodes}, seed {seed}>, {origin}, ttl={ttl})")


EXERCISES: dict[int, list[Exercise]] = {
    8: [Exercise(8, 4, "iterative_lookup", "a Kademlia lookup on 1,000 DHT nodes",
                 "keep the candidates sorted by XOR distance to the target; each round ask the "
                 "alpha closest not yet asked and merge what they return; stop when the k "
                 "closest candidates have all been asked; return those k", _check_lookup)],
    9: [Exercise(9, 4, "qrp_hash", "the QRP keyword hash",
                 "lower-case, UTF-8 bytes; XOR byte i shifted left by 8 * (i % 4) into a 32-bit "
                 "value; multiply by 0x4F1BBCDC, keep the low 32 bits, then the top `bits` bits "
                 "(QRP Appendix A)", _check_qrp_hash),
        Exercise(9, 5, "query_messages", "what a flood costs",
                 "the origin sends to every neighbour; a node forwards only the first copy it "
                 "gets, to every neighbour but the one it came from, and only while the TTL "
                 "left after decrementing is at least 1; count every copy sent, duplicates too",
                 _check_flood)],
}
