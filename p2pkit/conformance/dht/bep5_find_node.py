"""BEP 5 §find_node and §Contact Encoding."""

from __future__ import annotations

from p2pkit.conformance.case import NODE_ID, TARGET, Bencoded, Step
from p2pkit.conformance.dht._common import NODES, dht_case, query, raw_query
from p2pkit.conformance.verifiers import (
    All,
    Field,
    IsError,
    IsResponse,
    Length,
    NoDeviation,
    Satisfies,
)

SPEC = "BEP 5 §find_node"
FIND_NODE = ('When a node receives a find_node query, it should respond with a key "nodes" and '
             'value of a string containing the compact node info for the target node or the K '
             '(8) closest good nodes in its own routing table.')
PROTOCOL_ERROR = "203 Protocol Error, such as a malformed packet, invalid arguments, or bad token"

CASES = [
    dht_case(
        id="bep5/find_node/nodes", title="find_node is answered with 'nodes'",
        spec=SPEC, requirement=FIND_NODE, level="SHOULD", rule="bep5/find_node/nodes",
        steps=[Step(send=query("find_node", target=TARGET),
                    expect=All(IsResponse(), NODES))]),
    dht_case(
        id="bep5/find_node/at-most-k", title="find_node returns at most K (8) nodes",
        spec=SPEC, requirement=FIND_NODE, level="SHOULD", rule="bep5/find_node/nodes",
        steps=[Step(send=query("find_node", target=TARGET),
                    expect=All(IsResponse(), Field("r", Satisfies(
                        lambda r, ctx: max(len(r.get("nodes") or ()),
                                           len(r.get("nodes6") or ())) <= 8,
                        "at most 8 nodes (per family)"))))]),
    dht_case(
        id="bep5/find_node/response-id", title="the find_node answer carries a 20-byte id",
        spec="BEP 5 §DHT Queries",
        requirement=('All responses have an "id" key and value containing the node ID of the '
                     'responding node.'),
        level="MUST", rule="bep5/response-id",
        steps=[Step(send=query("find_node", target=TARGET), expect=Field("r.id", Length(20)))]),
    dht_case(
        id="bep5/find_node/compact-node-info", title="nodes is a string of 26-byte records",
        spec="BEP 5 §Contact Encoding",
        requirement="Contact information for nodes is encoded as a 26-byte string.",
        level="MUST", rule="bep5/contact-encoding",
        steps=[Step(send=query("find_node", target=TARGET),
                    expect=All(IsResponse(), NoDeviation("krpc/malformed-value")))]),
    dht_case(
        id="bep5/find_node/own-id-target", title="find_node for the querier's own id is "
        "answered", spec=SPEC, requirement=FIND_NODE, level="SHOULD",
        rule="bep5/find_node/nodes",
        steps=[Step(send=query("find_node", target=NODE_ID), expect=IsResponse())]),
    dht_case(
        id="bep5/find_node/missing-target", title="find_node without target gets error 203",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("find_node", {"id": NODE_ID})),
                    expect=IsError((203,)))]),
    dht_case(
        id="bep5/find_node/long-target", title="find_node with a 21-byte target gets error 203",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded(raw_query("find_node", {"id": NODE_ID,
                                                          "target": b"\x02" * 21})),
                    expect=IsError((203,)))]),
]
