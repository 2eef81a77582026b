"""BEP 32 (IPv6 extension): ``want``, ``nodes6``, packet size, values' address family."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, TARGET, Step
from p2pkit.conformance.dht._common import announce, dht_case, get_token, query
from p2pkit.conformance.verifiers import All, Field, IsResponse, Present, Satisfies

WANT = ('A node replying to a find_nodes or get_peers request that includes a "want" parameter '
        'should include a "nodes" parameter if the request\'s "want" parameter contained the '
        'string "n4", and should include a "nodes6" parameter if the request\'s "want" '
        'parameter contained the string "n6".')
DEFAULT = ('In the absence of a "want" parameter, the reply should include "nodes" if the '
           'request was sent over IPv4, and should include "nodes6" if the request was sent '
           'over IPv6.')
IGNORED = ("For future extensibility, other strings may be present in the list, and must be "
           "silently ignored on reception.")
SIZE = ("A node obeying this specification must not send UDP datagrams with a payload larger "
        "than 1024 octets, and must be able to receive UDP datagrams with a payload of 1024 "
        "octets or less.")
FAMILY = ("A reply sent over IPv4 should not contain 18-octet IPv6 contact information, and a "
          "reply sent over IPv6 should not contain 6-octet IPv4 contact information.")


def _case(name: str, title: str, requirement: str, level: str, rule: str, steps: list,
          spec: str = "BEP 32 §Changes to message semantics") -> object:
    return dht_case(id=f"bep32/{name}", title=title, spec=spec, requirement=requirement,
                    level=level, rule=rule, steps=steps, extension="BEP 32")


def _own_family(r: object, ctx: object) -> bool:
    return ("nodes6" if ":" in ctx.target_address[0] else "nodes") in r


def _small(answer_size_limit: int):
    def check(r: object, ctx: object) -> bool:
        return len(ctx.answers["big"].data) <= answer_size_limit
    return check


CASES = [
    _case("want-n4", "want [n4] gets 'nodes'", WANT, "SHOULD", "bep32/want",
          [Step(send=query("find_node", target=TARGET, want=["n4"]),
                expect=All(IsResponse(), Field("r.nodes", Present())))]),
    _case("want-n6", "want [n6] gets 'nodes6'", WANT, "SHOULD", "bep32/want",
          [Step(send=query("find_node", target=TARGET, want=["n6"]),
                expect=All(IsResponse(), Field("r.nodes6", Present())))]),
    _case("want-both", "want [n4, n6] gets 'nodes' and 'nodes6'", WANT, "SHOULD", "bep32/want",
          [Step(send=query("find_node", target=TARGET, want=["n4", "n6"]),
                expect=All(IsResponse(), Field("r.nodes", Present()),
                           Field("r.nodes6", Present())))]),
    _case("want-get_peers-n6", "get_peers with want [n6] gets 'nodes6'", WANT, "SHOULD",
          "bep32/want",
          [Step(send=query("get_peers", info_hash=INFO_HASH, want=["n6"]),
                expect=All(IsResponse(), Field("r.nodes6", Present())))]),
    _case("want-unknown-ignored", "an unknown want string is ignored", IGNORED, "MUST",
          "bep32/want-unknown", [Step(send=query("find_node", target=TARGET,
                                                 want=["n4", "zz"]), expect=IsResponse())],
          spec="BEP 32 §want"),
    _case("no-want-own-family", "without want, a query gets its own family's nodes", DEFAULT,
          "SHOULD", "bep32/want", [Step(send=query("find_node", target=TARGET), expect=All(
              IsResponse(), Field("r", Satisfies(_own_family, "nodes (IPv4) / nodes6 (IPv6)"))))]),
    _case("payload-1024", "an answer asking for both families fits 1024 bytes", SIZE, "MUST",
          "bep32/packet-size",
          [Step(send=query("get_peers", info_hash=INFO_HASH, want=["n4", "n6"]), name="big",
                expect=All(IsResponse(), Field("r", Satisfies(_small(1024), "≤ 1024 bytes"))))],
          spec="BEP 32 §Maximum packet size"),
    dht_case(
        id="bep32/values-family", title="values for an IPv4 query are 6-byte peers only",
        spec="BEP 32 §Changes to message semantics", requirement=FAMILY, level="SHOULD",
        rule="bep32/values-family", sources=2,
        steps=[get_token(), announce(expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH, want=["n4", "n6"]),
                    source="b", expect=Field("r.values", Satisfies(
                        lambda vs, ctx: all(v.ip.version == 4 for v in vs), "IPv4 only")))]),
]
