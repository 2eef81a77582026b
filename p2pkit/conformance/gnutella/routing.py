"""Descriptor routing: TTL and hops on forwarding, the hops+TTL cap, TTL 1 and 0 going no
further, duplicate GUIDs dropped, QueryHits back along the query's path only, Push by
servent id.

The Gnutella 0.4 protocol document that first stated these rules is not among the spec texts
this suite quotes; the documents that are restate them (GTKG's route_lost §, oob-shortcut §,
ultrapeer_qrp §2.4, bye §2), and the cases quote those. Every case here plays two or three
ultrapeers of the target at once (connections ``a``, ``b``, ``c``): a query sent on ``a`` is
watched on ``b``, answered there, and the answer watched on ``a`` and ``c``.
"""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.gnutella._common import (
    gn_case,
    join,
    never,
    push,
    query,
    query_hit,
    receives,
)
from p2pkit.conformance.stream_verifiers import SessionRule

LOST = "msg/route_lost §Return of the Query Hit"
NORMALLY = ("When the hit is returned, the TTL is NOT decreased but rather *increased* "
            "artificially by one, whilst the hop count is increased normally.")
OOB = "oob-shortcut §2. OVERVIEW"
DUPLICATES = "Ultra nodes already track all the queries that pass through them to avoid duplicates."
BACK = ("When query hits come back via TCP and they have more than one hop to go before "
        "reaching their destination (TTL > 1 after local decrement), ultra nodes look at "
        "whether the corresponding query was flagged with OOB by consulting their routing "
        "table.")
NORMAL_TCP = "If no, then the query hit is normally routed via TCP as currently done."
PUSH = ("it has seen the query hit route so far, so it can relay a PUSH if contacted about "
        "the servent ID.")
BROADCAST = "Initially we recommend simple broadcast as with the current Gnutella protocol."
UNIT = ("For example, if an Ultrapeer receives a query with TTL=1, the Ultrapeer then "
        "decrements the TTL to 0, but still forwards that query to its leaves.")
LONG_LIVED = "relay messages deemed excessively long-lived [hop+TTL > max] (403)"
UP = ("ultrapeer",)
ROUTED = "gnutella/routing/flood"


def _ups(*sources: str) -> list[Step]:
    return [step for s in sources for step in join(s, role="ultrapeer")]


def _query_on_a(ttl: int = 3, hops: int = 0, name: str = "q") -> Step:
    return Step(send=query("conformance probe", guid_name=name, ttl=ttl, hops=hops),
                source="a")


def _max_ttl(ctx: object) -> int:
    """The hops+TTL the target allows: its X-Max-TTL when it says one, else 7 (the
    classic network's maximum, ping-pong §'s M)."""
    for m in ctx.sessions["a"].of_type("handshake"):
        value = m["headers"].get("x_max_ttl")
        if value and value.strip().isdigit():
            return max(int(value), 7)
    return 7


def _capped(answer: object, ctx: object) -> str:
    limit = _max_ttl(ctx)
    for m in answer.session.of_type("query"):
        if m["guid"] == ctx.guid("q") and m["ttl"] + m["hops"] > limit:
            return (f"forwarded with ttl {m['ttl']} + hops {m['hops']} > {limit} "
                    "(the target's maximum)")
    return ""


def _one_copy(answer: object, ctx: object) -> str | None:
    copies = [m for m in answer.session.of_type("query") if m["guid"] == ctx.guid("q")]
    if not copies:
        return None
    return "" if len(copies) == 1 else f"{len(copies)} copies of the query were forwarded"


CASES = [
    gn_case(id="routing/query-forwarded", title="a query from one ultrapeer is forwarded to "
            "another", spec="ultra-peers §2. Routing with Ultrapeers", requirement=BROADCAST,
            level="SHOULD", rule=ROUTED, tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(), receives("query", "q", "b")]),
    gn_case(id="routing/ttl-decremented", title="a forwarded query's TTL is one less",
            spec=LOST, requirement=NORMALLY, level="MUST",
            rule="gnutella/routing/ttl-decrement", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(ttl=3), receives("query", "q", "b", ttl=2)]),
    gn_case(id="routing/hops-incremented", title="a forwarded query's hops is one more",
            spec=LOST, requirement=NORMALLY, level="MUST",
            rule="gnutella/routing/hops-increment", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(ttl=3, hops=1),
                   receives("query", "q", "b", hops=2)]),
    gn_case(id="routing/ttl-one-not-forwarded", title="a query arriving with TTL 1 is not "
            "forwarded to ultrapeers", spec="ultrapeer_qrp §2.4 Ultrapeers and Leaves Single "
            "Unit", requirement=UNIT, level="MUST", rule="gnutella/routing/ttl-expired",
            tags=UP, steps=[*_ups("a", "b"), _query_on_a(ttl=1),
                            never("query", "q", "b", text="forwarded with TTL 0")]),
    gn_case(id="routing/ttl-zero-not-forwarded", title="a query arriving with TTL 0 is not "
            "forwarded", spec="ultrapeer_qrp §2.4 Ultrapeers and Leaves Single Unit",
            requirement=UNIT, level="MUST", rule="gnutella/routing/ttl-expired", tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(ttl=0, hops=2),
                   never("query", "q", "b", text="forwarded from TTL 0")]),
    gn_case(id="routing/ttl-hops-cap", title="a query whose hops+TTL exceeds the maximum is "
            "not relayed beyond it", spec="bye §2. The Bye (0x02) Packet",
            requirement=LONG_LIVED, level="SHOULD", rule="gnutella/routing/ttl-cap",
            depends=("gnutella/routing/ttl-decrement",), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(ttl=12, hops=1),
                   Step(send=None, source="b", wait=0.6, expect=SessionRule(
                       _capped, "nothing forwarded with hops+TTL above the target's maximum",
                       silence=True))]),
    gn_case(id="routing/duplicate-dropped", title="the same query twice on one connection is "
            "forwarded once", spec=OOB, requirement=DUPLICATES, level="MUST",
            rule="gnutella/routing/duplicate", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(), receives("query", "q", "b"),
                   _query_on_a(), Step(send=None, source="b", wait=0.6, expect=SessionRule(
                       _one_copy, "one copy of the query", silence=True))]),
    gn_case(id="routing/duplicate-other-connection", title="a query already seen, arriving "
            "from another neighbour, is dropped", spec=OOB, requirement=DUPLICATES,
            level="MUST", rule="gnutella/routing/duplicate", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b", "c"), _query_on_a(), receives("query", "q", "b"),
                   Step(send=query("conformance probe", guid_name="q", ttl=3), source="c"),
                   Step(send=None, source="b", wait=0.6, expect=SessionRule(
                       _one_copy, "one copy of the query", silence=True))]),
    gn_case(id="routing/hit-routed-back", title="a QueryHit comes back on the query's "
            "connection", spec=OOB, requirement=NORMAL_TCP, level="MUST",
            rule="gnutella/routing/hit-back", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(), receives("query", "q", "b"),
                   Step(send=query_hit(ttl=3), source="b"),
                   receives("query_hit", "q", "a")]),
    gn_case(id="routing/hit-reverse-path-only", title="the QueryHit goes to no other "
            "connection", spec=OOB, requirement=NORMAL_TCP, level="MUST",
            rule="gnutella/routing/hit-back", depends=(ROUTED,), tags=UP,
            steps=[*_ups("a", "b", "c"), _query_on_a(), receives("query", "q", "b"),
                   Step(send=query_hit(ttl=3), source="b"),
                   never("query_hit", "q", "c", text="sent off the query's path"),
                   never("query_hit", "q", "b", wait=0.1, text="sent back to its sender")]),
    gn_case(id="routing/hit-ttl-decremented", title="a routed QueryHit's TTL is one less",
            spec=LOST, requirement=NORMALLY, level="MUST",
            rule="gnutella/routing/ttl-decrement", depends=(ROUTED, "gnutella/routing/hit-back"),
            tags=UP, steps=[*_ups("a", "b"), _query_on_a(), receives("query", "q", "b"),
                            Step(send=query_hit(ttl=3), source="b"),
                            receives("query_hit", "q", "a", ttl=2)]),
    gn_case(id="routing/hit-hops-incremented", title="a routed QueryHit's hops is one more",
            spec=LOST, requirement=NORMALLY, level="MUST",
            rule="gnutella/routing/hops-increment",
            depends=(ROUTED, "gnutella/routing/hit-back"), tags=UP,
            steps=[*_ups("a", "b"), _query_on_a(), receives("query", "q", "b"),
                   Step(send=query_hit(ttl=3, hops=1), source="b"),
                   receives("query_hit", "q", "a", hops=2)]),
    gn_case(id="routing/hit-unknown-guid-dropped", title="a QueryHit for a query never seen "
            "is routed nowhere", spec=OOB, requirement=NORMAL_TCP, level="MUST",
            rule="gnutella/routing/hit-unknown-dropped", tags=UP,
            steps=[*_ups("a", "b", "c"), Step(send=query_hit(guid_name="unseen", ttl=3),
                                               source="b"),
                   never("query_hit", "unseen", "a", text="for a query never seen"),
                   never("query_hit", "unseen", "c", wait=0.1, text="for a query never seen")]),
    gn_case(id="routing/push-by-servent-id", title="a Push goes to the connection the "
            "servent's QueryHit came from", spec="oob-shortcut §3.4 Push-Proxy Concerns",
            requirement=PUSH, level="MUST", rule="gnutella/routing/push",
            depends=(ROUTED, "gnutella/routing/hit-back"), tags=UP,
            steps=[*_ups("a", "b", "c"), _query_on_a(), receives("query", "q", "b"),
                   Step(send=query_hit(ttl=3, servent="responder"), source="b"),
                   receives("query_hit", "q", "a"),
                   Step(send=push(servent="responder"), source="a"),
                   receives("push", "p", "b"),
                   never("push", "p", "c", wait=0.2, text="off the QueryHit's path")]),
    gn_case(id="routing/push-unknown-servent-dropped", title="a Push for a servent id never "
            "seen in a QueryHit is routed nowhere", spec="oob-shortcut §3.4 Push-Proxy "
            "Concerns", requirement=PUSH, level="MUST", rule="gnutella/routing/push", tags=UP,
            steps=[*_ups("a", "b", "c"), Step(send=push(servent="nobody"), source="a"),
                   never("push", "p", "b", text="for an unknown servent id"),
                   never("push", "p", "c", wait=0.1, text="for an unknown servent id")]),
]
