"""BEP 43 (read-only DHT nodes): queries with ``ro=1`` are served, the sender not adopted."""

from __future__ import annotations

from p2pkit.conformance.case import TARGET, Step
from p2pkit.conformance.dht._common import dht_case, query
from p2pkit.conformance.verifiers import IsResponse, NoQueries

SERVE = "Instead it should merely service the query as usual."
NOT_ADDED = ("If it is found, the node should not add the message sender to its routing "
             "table.")

CASES = [
    dht_case(
        id="bep43/ro-ping-served", title="a ping with ro=1 is answered", spec="BEP 43 "
        "§Read-Only State", requirement=SERVE, level="SHOULD", rule="bep43/ro-served",
        extension="BEP 43",
        steps=[Step(send=query("ping", top={"ro": 1}),
                    expect=IsResponse())]),
    dht_case(
        id="bep43/ro-find_node-served", title="a find_node with ro=1 is answered",
        spec="BEP 43 §Read-Only State", requirement=SERVE, level="SHOULD",
        rule="bep43/ro-served", extension="BEP 43",
        steps=[Step(send=query("find_node", target=TARGET, top={"ro": 1}),
                    expect=IsResponse())]),
    dht_case(
        id="bep43/ro-not-pinged", title="a read-only querier is not pinged back (not adopted "
        "into the routing table)", spec="BEP 43 §Read-Only State", requirement=NOT_ADDED,
        level="SHOULD", rule="bep43/ro-not-added", extension="BEP 43",
        steps=[Step(send=query("find_node", target=TARGET, top={"ro": 1}),
                    expect=IsResponse()),
               Step(send=None, expect=NoQueries())]),
]
