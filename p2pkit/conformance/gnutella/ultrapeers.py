"""ultra-peers §3 (ultrapeer election headers) and ultrapeer_qrp §2.6: what the target says of
itself in its answer, and how it reads the harness's X-Ultrapeer."""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.gnutella._common import (
    LEAF_HEADERS,
    ULTRAPEER_HEADERS,
    connect,
    final,
    gn_case,
    join,
    never,
    ping,
    query,
    receives,
    settle,
)
from p2pkit.conformance.stream_verifiers import Receives
from p2pkit.conformance.verifiers import Satisfies

SPEC = "ultra-peers §3.1. Leaf to Ultrapeer"
KEY = ('The key header here is "X-Ultrapeer", which tells whether a host plans on acting as a '
       'ultrapeer (if true) or a shielded node (if false).')
CASE = 'Also, case is ignored in "True" and "False".'
QRP = ("X-Query-Routing: the version of query routing to be used between leaf and ultrapeer, "
       "IF a shielded leaf/ultrapeer connection is established")
NEEDED = ("X-Ultrapeer-Needed: used to balance the number of ultrapeers.")
SHIELD = "Ultrapeers shield leaf nodes from virtually all ping and query traffic."
ANY_ORDER = "It is important to note that headers can be sent in any order."


def _true_or_false(value: object, ctx: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("true", "false")


def _with(headers: tuple[tuple[str, str], ...], name: str, value: str
          ) -> tuple[tuple[str, str], ...]:
    return tuple((n, value if n == name else v) for n, v in headers)


CASES = [
    gn_case(id="ultrapeer/x-ultrapeer", title="the answer says X-Ultrapeer: True or False",
            spec=SPEC, requirement=KEY, level="MUST", rule="gnutella/ultrapeer/x-ultrapeer",
            steps=[connect(expect=Receives("handshake", kind="response",
                                           headers__x_ultrapeer=Satisfies(
                                               _true_or_false, "True or False (any case)")))]),
    gn_case(id="ultrapeer/leaf-accepted", title="an ultrapeer accepts a leaf and says it is "
            "one", spec=SPEC, requirement=KEY, level="MUST",
            rule="gnutella/ultrapeer/x-ultrapeer", tags=("ultrapeer",),
            steps=[connect(expect=Receives("handshake", kind="response", status_code=200,
                                           headers__x_ultrapeer=Satisfies(
                                               lambda v, ctx: str(v).strip().lower() == "true",
                                               "True")))]),
    gn_case(id="ultrapeer/value-case-ignored", title="X-Ultrapeer: TRUE (upper case) makes "
            "the harness an ultrapeer", spec=SPEC, requirement=CASE, level="MUST",
            rule="gnutella/ultrapeer/value-case", tags=("ultrapeer",),
            steps=[*join("a", role="ultrapeer"),
                   connect("b", headers=_with(ULTRAPEER_HEADERS, "X-Ultrapeer", "TRUE")),
                   final("b"), settle("b"), Step(send=query("conformance"), source="a"),
                   receives("query", "q", "b")]),
    gn_case(id="ultrapeer/headers-any-order", title="X-Ultrapeer last among the headers",
            spec=SPEC, requirement=ANY_ORDER, level="MUST",
            rule="gnutella/ultrapeer/value-case", tags=("ultrapeer",),
            steps=[*join("a", role="ultrapeer"),
                   connect("b", headers=tuple(reversed(ULTRAPEER_HEADERS))),
                   final("b"), settle("b"), Step(send=query("conformance"), source="a"),
                   receives("query", "q", "b")]),
    gn_case(id="ultrapeer/x-query-routing", title="the answer to a leaf names the QRP version",
            spec=SPEC, requirement=QRP, level="SHOULD",
            rule="gnutella/ultrapeer/x-query-routing", tags=("ultrapeer",),
            steps=[connect(headers=LEAF_HEADERS, expect=Receives(
                "handshake", kind="response", headers__x_query_routing=Satisfies(
                    lambda v, ctx: isinstance(v, str) and v.strip().startswith("0."),
                    "a version (0.1, 0.2)")))]),
    gn_case(id="ultrapeer/x-ultrapeer-needed", title="the answer says X-Ultrapeer-Needed",
            spec=SPEC, requirement=NEEDED, level="INFO",
            rule="gnutella/ultrapeer/x-ultrapeer-needed", tags=("ultrapeer",),
            steps=[connect(role="ultrapeer", expect=Receives(
                "handshake", kind="response", headers__x_ultrapeer_needed=Satisfies(
                    _true_or_false, "True or False")))]),
    gn_case(id="ultrapeer/leaf-shielded-from-pings", title="a leaf is not sent the pings "
            "another ultrapeer broadcasts", spec="ultra-peers §2. Routing with Ultrapeers",
            requirement=SHIELD, level="SHOULD", rule="gnutella/ultrapeer/shield",
            tags=("ultrapeer",),
            steps=[*join("a", role="ultrapeer"), *join("b"),
                   Step(send=ping(guid_name="x", ttl=4), source="a"),
                   never("ping", "x", "b", text="forwarded to a leaf")]),
]
