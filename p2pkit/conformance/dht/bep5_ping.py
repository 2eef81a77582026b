"""BEP 5 §ping, and what every response carries (§DHT Queries)."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, NODE_ID, TARGET, Bencoded, Step
from p2pkit.conformance.dht._common import dht_case, query, raw_query, survives
from p2pkit.conformance.verifiers import (
    All,
    Field,
    IsError,
    IsResponse,
    Length,
    OneOf,
    Satisfies,
    ValidBySchema,
)

SPEC = "BEP 5 §ping"
PING = ('The appropriate response to a ping has a single key "id" containing the node ID of '
        'the responding node.')
ANY_RESPONSE = ('All responses have an "id" key and value containing the node ID of the '
                'responding node.')
PROTOCOL_ERROR = "203 Protocol Error, such as a malformed packet, invalid arguments, or bad token"


def _same_id(value: object, ctx: object) -> bool:
    return value == ctx.answer("first").get("r.id")


CASES = [
    dht_case(
        id="bep5/ping/response", title="ping is answered with the responder's 20-byte id",
        spec=SPEC, requirement=PING, level="MUST", rule="bep5/ping/response",
        steps=[Step(send=query("ping"), expect=All(IsResponse(), Field("r.id", Length(20))))]),
    dht_case(
        id="bep5/ping/valid-by-schema", title="the ping answer is a valid KRPC response",
        spec=SPEC, requirement=PING, level="MUST", rule="bep5/ping/response",
        steps=[Step(send=query("ping"), expect=All(IsResponse(), ValidBySchema()))]),
    dht_case(
        id="bep5/ping/stable-id", title="two queries get the same node id",
        spec="BEP 5 §DHT Queries", requirement=ANY_RESPONSE, level="MUST",
        rule="bep5/node-id-stable",
        steps=[Step(send=query("find_node", target=TARGET), name="first"),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="a2",
                    expect=Field("r.id", Satisfies(_same_id, "the id of the first answer")))]),
    dht_case(
        id="bep5/ping/missing-id", title="a ping without id gets error 203",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("ping", {})), expect=IsError((203,)))]),
    dht_case(
        id="bep5/ping/short-id", title="a ping with a 19-byte id gets error 203",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("ping", {"id": b"\x01" * 19})),
                    expect=IsError((203,)))]),
    dht_case(
        id="bep5/ping/id-not-a-string", title="a ping whose id is an integer is refused or "
        "dropped", spec="BEP 5 §ping",
        requirement=("A ping query has a single argument, \"id\" the value is a 20-byte "
                     "string containing the senders node ID in network byte order."),
        level="MUST", rule="krpc/robustness", robustness=True,
        steps=[Step(send=Bencoded(raw_query("ping", {"id": 42})), expect=survives())]),
    dht_case(
        id="bep5/ping/extra-argument", title="an unknown extra argument is ignored",
        spec="BEP 51 §message format", requirement="As usual, additional fields may be "
        "defined by other BEPs.", level="SHOULD", rule="krpc/forward-compatible",
        steps=[Step(send=Bencoded(raw_query("ping", {"id": NODE_ID, "zz_unknown": b"x"})),
                    expect=OneOf(IsResponse()))]),
]
