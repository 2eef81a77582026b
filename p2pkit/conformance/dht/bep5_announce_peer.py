"""BEP 5 §announce_peer: the token lifecycle, implied_port, the stored port."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, NODE_ID, Bencoded, FromAnswer, Step
from p2pkit.conformance.dht._common import (
    announce,
    dht_case,
    get_token,
    query,
    raw_query,
    survives,
)
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Field,
    IsError,
    IsResponse,
    Length,
    OneOf,
    Satisfies,
    Silence,
)

SPEC = "BEP 5 §announce_peer"
VERIFY = ("The queried node must verify that the token was previously sent to the same IP "
          "address as the querying node.")
ACCEPT = "Tokens must be accepted for a reasonable amount of time after they have been distributed."
STORE = ("Then the queried node should store the IP address of the querying node and the "
         "supplied port number under the infohash in its store of peer contact information.")
IMPLIED = ("If it is present and non-zero, the ``port`` argument should be ignored and the "
           "source port of the UDP packet should be used as the peer's port instead.")
PROTOCOL_ERROR = "203 Protocol Error, such as a malformed packet, invalid arguments, or bad token"
REFUSED = OneOf(IsError(), Silence())


def _values_hold(source: str, port: int | None = None):
    """``values`` holds the peer announced from ``source`` (its UDP port when ``port`` is
    None)."""
    def check(values: list, ctx: object) -> bool:
        ip, udp_port = ctx.addresses[source]
        want = udp_port if port is None else port
        return any(str(v.ip) == ip and v.port == want for v in values)
    return check


def _lacks(source: str):
    def check(answer_r: object, ctx: object) -> bool:
        ip = ctx.addresses[source][0]
        return not any(str(v.ip) == ip for v in (answer_r.get("values") or ()))
    return check


def _later(source: str = "b") -> Step:
    return Step(send=query("get_peers", info_hash=INFO_HASH), source=source, name="later")


CASES = [
    dht_case(
        id="bep5/announce_peer/token-accepted", title="a token from get_peers is accepted",
        spec="BEP 5 §Overview", requirement=ACCEPT, level="MUST", rule="dht/token/accepted",
        steps=[get_token(), announce(expect=IsResponse())]),
    dht_case(
        id="bep5/announce_peer/token-same-ip-other-port",
        title="a token is accepted from the same IP on another port", spec=SPEC,
        requirement=VERIFY, level="MUST", rule="dht/token/accepted",
        steps=[get_token(), announce(source="a2", expect=IsResponse())]),
    dht_case(
        id="bep5/announce_peer/wrong-token-refused", title="a wrong token is refused",
        spec=SPEC, requirement=VERIFY, level="MUST", rule="dht/token/checked",
        steps=[get_token(), announce(token=b"not-a-token", expect=REFUSED)]),
    dht_case(
        id="bep5/announce_peer/wrong-token-not-stored",
        title="a peer announced with a wrong token is not stored", spec=SPEC,
        requirement=VERIFY, level="MUST", rule="dht/token/checked", sources=2,
        steps=[get_token(), announce(token=b"not-a-token", expect=survives()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r", Satisfies(_lacks("a"), "without the refused peer")))]),
    dht_case(
        id="bep5/announce_peer/token-other-ip-refused",
        title="a token given to another IP is refused", spec=SPEC, requirement=VERIFY,
        level="MUST", rule="dht/token/checked", sources=2,
        steps=[get_token(source="a"), announce(source="b", expect=REFUSED)]),
    dht_case(
        id="bep5/announce_peer/bad-token-203", title="a wrong token gets error 203",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="SHOULD",
        rule="bep5/errors/protocol-error", depends=("dht/token/checked",),
        steps=[get_token(), announce(token=b"not-a-token", expect=IsError((203,)))]),
    dht_case(
        id="bep5/announce_peer/missing-token", title="announce_peer without a token is refused",
        spec=SPEC, requirement=VERIFY, level="MUST", rule="bep5/announce_peer/arguments",
        robustness=True,
        steps=[Step(send=Bencoded(raw_query("announce_peer", {
            "id": NODE_ID, "info_hash": INFO_HASH, "port": 6881})), expect=REFUSED)]),
    dht_case(
        id="bep5/announce_peer/stores-port", title="the announced port is stored", spec=SPEC,
        requirement=STORE, level="SHOULD", rule="bep5/announce_peer/port", sources=2,
        steps=[get_token(), announce(port=6999, expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r.values", Satisfies(_values_hold("a", 6999),
                                                       "holding the announced port")))]),
    dht_case(
        id="bep5/announce_peer/implied-port", title="implied_port=1 stores the UDP source port",
        spec=SPEC, requirement=IMPLIED, level="SHOULD", rule="bep5/announce_peer/implied-port",
        sources=2,
        steps=[get_token(), announce(port=1, implied_port=1, expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r.values", Satisfies(_values_hold("a"),
                                                       "holding the UDP source port")))]),
    dht_case(
        id="bep5/announce_peer/implied-port-zero", title="implied_port=0 stores the port "
        "argument", spec=SPEC, requirement=IMPLIED, level="SHOULD",
        rule="bep5/announce_peer/port", sources=2,
        steps=[get_token(), announce(port=7002, implied_port=0, expect=IsResponse()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r.values", Satisfies(_values_hold("a", 7002),
                                                       "holding the port argument")))]),
    dht_case(
        id="bep5/announce_peer/response-id", title="the announce_peer answer is {id}",
        spec=SPEC, requirement=('All responses have an "id" key and value containing the node '
                                'ID of the responding node.'),
        level="MUST", rule="bep5/response-id",
        steps=[get_token(), announce(expect=All(IsResponse(), Field("r.id", Length(20)),
                                                Field("r.values", Absent())))]),
    dht_case(
        id="bep5/announce_peer/port-out-of-range",
        title="port 70000 is refused or dropped, and not stored", spec="BEP 5 §Errors",
        requirement=PROTOCOL_ERROR, level="MUST", rule="krpc/robustness", robustness=True,
        sources=2,
        steps=[get_token(),
               Step(send=Bencoded(raw_query("announce_peer", {
                   "id": NODE_ID, "info_hash": INFO_HASH, "port": 70000,
                   "token": FromAnswer("peers", "r.token")})), expect=survives()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r", Satisfies(_lacks("a"), "without the bad peer")))]),
    dht_case(
        id="bep5/announce_peer/negative-port", title="port -1 is refused or dropped",
        spec="BEP 5 §Errors", requirement=PROTOCOL_ERROR, level="MUST",
        rule="krpc/robustness", robustness=True, sources=2,
        steps=[get_token(),
               Step(send=Bencoded(raw_query("announce_peer", {
                   "id": NODE_ID, "info_hash": INFO_HASH, "port": -1,
                   "token": FromAnswer("peers", "r.token")})), expect=survives()),
               Step(send=query("get_peers", info_hash=INFO_HASH), source="b",
                    expect=Field("r", Satisfies(_lacks("a"), "without the bad peer")))]),
]
