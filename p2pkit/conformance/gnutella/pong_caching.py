"""ping-pong § (pong caching): a pong answers the ping it carries the GUID of; a TTL 1 ping is
answered by the neighbour and goes no further."""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.gnutella._common import connect, gn_case, guid, join, never, ping
from p2pkit.conformance.stream_verifiers import Receives, SessionRule
from p2pkit.conformance.verifiers import Present

SPEC = "ping-pong §Introduction"
GUID = "Of course A will have to set the GUID of each pong that it sends to C."
CACHE = ("In the above example, A caches the pongs it saw in response to B's ping and simply "
         "sends these back to C - without forwarding C's ping.")
HEADER = ("If, for example, clients at the \"0.6\" level were to support QRP and pong-caching, "
          "a servent would be required to implement both.")


def _every_pong_has_guid(answer: object, ctx: object) -> str | None:
    pongs = [m for m in answer.messages if m["type"] == "pong"]
    if not pongs:
        return None
    wanted = ctx.guid("ping")
    for p in pongs:
        if p["guid"] != wanted:
            return f"a pong with GUID {p['guid'].hex()}, not the ping's {wanted.hex()}"
    return ""


def _valid_pong(m: dict, ctx: object) -> bool:
    return 0 < m.get("port", 0) < 65536 and m.get("ip_address") is not None


CASES = [
    gn_case(id="ping/pong-guid", title="a TTL 1 ping is answered by a pong with its GUID",
            spec=SPEC, requirement=GUID, level="MUST", rule="gnutella/ping/pong-guid",
            steps=[*join("a"), Step(send=ping(ttl=1), expect=Receives("pong",
                                                                     guid=guid("ping")))]),
    gn_case(id="ping/every-pong-guid", title="every pong answering a TTL 4 ping (cached ones "
            "too) carries its GUID", spec=SPEC, requirement=GUID, level="MUST",
            rule="gnutella/ping/pong-guid",
            steps=[*join("b", role="ultrapeer"), *join("a"),
                   Step(send=ping(ttl=4), wait=0.5, expect=SessionRule(
                       _every_pong_has_guid, "every pong carries the ping's GUID",
                       pending="no pong", silence=True))]),
    gn_case(id="ping/pong-fields", title="the pong gives a port and an address",
            spec="ping-pong §Introduction",
            requirement="Return IP addresses of other servents so you can establish more "
                        "connections.", level="SHOULD", rule="gnutella/ping/pong-fields",
            steps=[*join("a"), Step(send=ping(ttl=1), expect=Receives(
                "pong", where=lambda m, ctx: _valid_pong(m, ctx),
                text="with a port in 1..65535"))]),
    gn_case(id="ping/not-broadcast-ttl1", title="a TTL 1 ping goes no further",
            spec="bye §2. The Bye (0x02) Packet",
            requirement="it failed to reply to a ping with TTL=1 (406)", level="MUST",
            rule="gnutella/routing/ttl-expired", tags=("ultrapeer",),
            steps=[*join("b", role="ultrapeer"), *join("a", role="ultrapeer"),
                   Step(send=ping(ttl=1), source="a"),
                   never("ping", "ping", "b", text="forwarded with TTL 0")]),
    gn_case(id="ping/pong-caching-header", title="the answer advertises Pong-Caching",
            spec="handshaking_0.6 §1. Introduction", requirement=HEADER, level="INFO",
            rule="gnutella/ping/pong-caching",
            steps=[connect(expect=Receives("handshake", kind="response",
                                           headers__pong_caching=Present()))]),
]
