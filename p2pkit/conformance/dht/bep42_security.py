"""BEP 42 (DHT security extension): the ``ip`` field and node-id restriction."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, TARGET, Step
from p2pkit.conformance.dht._common import dht_case, query
from p2pkit.conformance.verifiers import Field, Present, Satisfies
from p2pkit.dht.security import node_id_is_exempt, node_id_is_valid

IP = ("With this extension, *all* DHT responses SHOULD include a *top-level* field called "
      "``ip``, containing a compact binary representation of the requestor's IP and port.")
NODE_ID = ("The first (most significant) 21 bits of the node ID used in the DHT MUST match the "
           "first 21 bits of the resulting hash.")


def _is_me(value: object, ctx: object) -> bool:
    return (str(value.ip), value.port) == ctx.addresses["a"]


def _id_ok(node_id: bytes, ctx: object) -> bool:
    ip = ctx.target_address[0]
    return node_id_is_exempt(ip) or node_id_is_valid(node_id, ip)


def _case(name: str, title: str, requirement: str, level: str, rule: str, steps: list,
          spec: str = "BEP 42 §Node ID restriction") -> object:
    return dht_case(id=f"bep42/{name}", title=title, spec=spec, requirement=requirement,
                    level=level, rule=rule, steps=steps)


CASES = [
    _case("ip-field-ping", "a ping answer carries the top-level 'ip'", IP, "SHOULD",
          "bep42/ip-field", [Step(send=query("ping"), expect=Field("ip", Present()))]),
    _case("ip-field-get_peers", "a get_peers answer carries the top-level 'ip'", IP, "SHOULD",
          "bep42/ip-field", [Step(send=query("get_peers", info_hash=INFO_HASH),
                                  expect=Field("ip", Present()))]),
    _case("ip-field-value", "'ip' is the requestor's IP and port", IP, "SHOULD",
          "bep42/ip-field", [Step(send=query("find_node", target=TARGET),
                                  expect=Field("ip", Satisfies(_is_me,
                                                               "the harness's address")))]),
    _case("node-id-restriction", "the target's node id matches its IP (local addresses are "
          "exempt)", NODE_ID, "MUST", "bep42/node-id",
          [Step(send=query("find_node", target=TARGET), expect=Field("r.id", Satisfies(
              _id_ok, "an id BEP 42 accepts for the target's address")))]),
]
