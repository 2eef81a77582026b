"""QRP §Gnutella Protocol Changes (RESET and PATCH) and ultrapeer_qrp §2.4: an ultrapeer
forwards to a leaf only the queries the leaf's route table matches, whatever their TTL.

The harness is a leaf (connection ``b``) that sends its table of a few keywords, and an
ultrapeer (``a``) that sends the queries."""

from __future__ import annotations

from p2pkit.conformance.case import Step, Wire
from p2pkit.conformance.gnutella._common import (
    gn_case,
    join,
    never,
    query,
    receives,
    settle,
)
from p2pkit.conformance.stream_verifiers import SessionRule

SPEC = "ultrapeer_qrp §2.4 Ultrapeers and Leaves Single Unit"
ONLY = ("if an Ultrapeer receives a query, it MUST forward that query only to leaves with hits "
        "in their routing tables, and it MUST do so regardless of the query's TTL.")
QRP = "QRP §Gnutella Protocol Changes"
RESET_AGAIN = ("Hosts may send more RESET messages at any point in the future, e.g., if there "
               "has been a drastic change in the route table.")
SEQUENCE = ("If either of these conditions is violated (e.g., because the sender is improperly "
            "dropping buffered messages[8]), the receiver should close the connection;")
WORDS = ("conformance", "probe")
UP = ("ultrapeer",)
#: Closing, or saying Bye first (bye Appendix 2 lets the sender of a Bye defer its close).
_CLOSES = SessionRule(lambda a, ctx: "" if a.closed or a.session.of_type("bye") else None,
                      "the target closes the connection (or says Bye)",
                      pending="the connection stayed open")


def _leaf_with(words: tuple[str, ...] = WORDS) -> list[Step]:
    return [*join("a", role="ultrapeer"), *join("b", words=words)]


def _patch(seq_no: int, seq_size: int, data: bytes = b"\x00" * 16, compressor: int = 0
           ) -> Wire:
    return Wire({"type": "route_table_update", "guid": b"\x01" * 16, "ttl": 1, "hops": 0,
                 "variant": "patch", "seq_no": seq_no, "seq_size": seq_size,
                 "compressor": compressor, "entry_bits": 4, "data": data})


CASES = [
    gn_case(id="qrp/forward-matching", title="a query matching the leaf's table reaches the "
            "leaf", spec=SPEC, requirement=ONLY, level="MUST", rule="gnutella/qrp/forward",
            tags=UP, steps=[*_leaf_with(), Step(send=query("conformance probe"), source="a"),
                            receives("query", "q", "b")]),
    gn_case(id="qrp/filter-not-matching", title="a query matching nothing in the leaf's table "
            "does not reach it", spec=SPEC, requirement=ONLY, level="MUST",
            rule="gnutella/qrp/filter", tags=UP,
            steps=[*_leaf_with(), Step(send=query("zebra unrelated"), source="a"),
                   never("query", "q", "b", text="that the leaf's table does not match")]),
    gn_case(id="qrp/filter-empty-table", title="a leaf sharing nothing gets no query",
            spec=SPEC, requirement=ONLY, level="MUST", rule="gnutella/qrp/filter", tags=UP,
            steps=[*_leaf_with(()), Step(send=query("conformance probe"), source="a"),
                   never("query", "q", "b", text="to a leaf whose table is empty")]),
    gn_case(id="qrp/filter-partial-match", title="a query with one keyword the table lacks "
            "does not reach the leaf", spec=SPEC, requirement=ONLY, level="MUST",
            rule="gnutella/qrp/filter", tags=UP,
            steps=[*_leaf_with(), Step(send=query("conformance zebra"), source="a"),
                   never("query", "q", "b", text="with a keyword the table lacks")]),
    gn_case(id="qrp/last-hop-ttl1", title="a matching query arriving with TTL 1 still reaches "
            "the leaf", spec=SPEC, requirement=ONLY, level="MUST",
            rule="gnutella/qrp/last-hop", tags=UP,
            steps=[*_leaf_with(), Step(send=query("conformance probe", ttl=1), source="a"),
                   receives("query", "q", "b")]),
    gn_case(id="qrp/reset-replaces-table", title="a second RESET and PATCH replace the table",
            spec=QRP, requirement=RESET_AGAIN, level="MUST", rule="gnutella/qrp/filter",
            tags=UP, steps=[*_leaf_with(),
                            Step(send=Wire({"type": "qrp_table", "words": ("zebra",)}),
                                 source="b"), settle("b"),
                            Step(send=query("conformance probe"), source="a"),
                            never("query", "q", "b", text="matching only the old table"),
                            Step(send=query("zebra", guid_name="q2"), source="a"),
                            receives("query", "q2", "b")]),
    gn_case(id="qrp/patch-out-of-sequence", title="a PATCH out of sequence makes the "
            "ultrapeer close", spec=QRP, requirement=SEQUENCE, level="SHOULD",
            rule="gnutella/qrp/sequence", tags=UP,
            steps=[*join("b", words=WORDS), Step(send=_patch(3, 2), source="b",
                                                expect=_CLOSES)]),
]
