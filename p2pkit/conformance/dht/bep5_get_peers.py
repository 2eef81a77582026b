"""BEP 5 §get_peers: tokens, values versus nodes, compact peer info."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, NODE_ID, Bencoded, Step
from p2pkit.conformance.dht._common import (
    NODES,
    announce,
    dht_case,
    get_token,
    query,
    raw_query,
)
from p2pkit.conformance.verifiers import (
    All,
    Field,
    IsError,
    IsResponse,
    Length,
    OneOf,
    Present,
    Satisfies,
)

SPEC = "BEP 5 §get_peers"
TOKEN = 'In either case a "token" key is also included in the return value.'
NO_PEERS = ('If the queried node has no peers for the infohash, a key "nodes" is returned '
         'containing the K nodes in the queried nodes routing table closest to the infohash '
         'supplied in the query.')
VALUES = ('If the queried node has peers for the infohash, they are returned in a key "values" '
          'as a list of strings.')
PROTOCOL_ERROR = "203 Protocol Error, such as a malformed packet, invalid arguments, or bad token"


def _has_source(source: str, port: int | None = None):
    def check(values: list, ctx: object) -> bool:
        ip, udp_port = ctx.addresses[source]
        want = udp_port if port is None else port
        return any(str(v.ip) == ip and v.port == want for v in values)
    return check


CASES = [
    dht_case(
        id="bep5/get_peers/token-returned", title="get_peers returns a token", spec=SPEC,
        requirement=TOKEN, level="MUST", rule="bep5/get_peers/token",
        steps=[Step(send=query("get_peers", info_hash=INFO_HASH),
                    expect=All(IsResponse(), Field("r.token", Present())))]),
    dht_case(
        id="bep5/get_peers/token-short", title="the token is a short binary string (≤ 40 "
        "bytes)", spec=SPEC, requirement="The token value should be a short binary string.",
        level="SHOULD", rule="bep5/get_peers/token",
        steps=[Step(send=query("get_peers", info_hash=INFO_HASH), expect=Field(
            "r.token", Satisfies(lambda t, ctx: 0 < len(t) <= 40, "1 to 40 bytes")))]),
    dht_case(
        id="bep5/get_peers/nodes-without-peers",
        title="an unknown info-hash gets 'nodes', not 'values'", spec=SPEC, requirement=NO_PEERS,
        level="MUST", rule="bep5/get_peers/values-or-nodes",
        steps=[Step(send=query("get_peers", info_hash=INFO_HASH),
                    expect=All(IsResponse(), NODES))]),
    dht_case(
        id="bep5/get_peers/values-after-announce",
        title="after an announce, get_peers returns the peer in 'values'", spec=SPEC,
        requirement=VALUES, level="MUST", rule="bep5/get_peers/values-or-nodes", sources=2,
        steps=[get_token(), announce(port=6881, expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r.values", Satisfies(_has_source("a", 6881),
                                                       "a list holding the announced peer")))]),
    dht_case(
        id="bep5/get_peers/compact-peer-info",
        title="values are 6-byte compact peers (IPv4)", spec="BEP 5 §Contact Encoding",
        requirement="Contact information for peers is encoded as a 6-byte string.",
        level="MUST", rule="bep5/contact-encoding", sources=2,
        steps=[get_token(), announce(port=7001, expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r.values", Satisfies(
                        lambda vs, ctx: vs and all(v.ip.version == 4 for v in vs),
                        "a non-empty list of IPv4 compact peers")))]),
    dht_case(
        id="bep5/get_peers/response-id", title="the get_peers answer carries a 20-byte id",
        spec="BEP 5 §DHT Queries",
        requirement=('All responses have an "id" key and value containing the node ID of the '
                     'responding node.'),
        level="MUST", rule="bep5/response-id",
        steps=[Step(send=query("get_peers", info_hash=INFO_HASH),
                    expect=Field("r.id", Length(20)))]),
    dht_case(
        id="bep5/get_peers/missing-info-hash", title="get_peers without info_hash gets "
        "error 203", spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("get_peers", {"id": NODE_ID})),
                    expect=IsError((203,)))]),
    dht_case(
        id="bep5/get_peers/short-info-hash", title="get_peers with a 19-byte info_hash gets "
        "error 203", spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("get_peers", {"id": NODE_ID,
                                                          "info_hash": b"\x03" * 19})),
                    expect=OneOf(IsError((203,))))]),
]
