"""BEP 23 §Overview: compact peer lists (``compact=1``, 6 bytes per peer).

"the *compact* key-value pair is only advisory: the tracker MAY return using either format":
returning a compact string when asked (or by default, "SUGGESTED") is a SHOULD; a compact
string that is there must be whole 6-byte records (MUST: the format is "6 bytes" per peer).
"""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.tracker._common import PeerListed, http_announce, http_case
from p2pkit.conformance.verifiers import All, Field, NoDeviation, Satisfies

SPEC = "BEP 23 §Overview"
ADVISES = ("By including *compact=0* in the announce URL, the client advises the tracker that "
           "is prefers the original format described in [#BEP-3]_, and analogously "
           "*compact=1* advises the tracker that the client prefers compact format.")
DEFAULT = "It is SUGGESTED that trackers return compact format by default."
LAYOUT = ("It is common now to use a compact format where each peer is represented using only "
          "6 bytes. The first 4 bytes contain the 32-bit ipv4 address. The remaining two bytes "
          "contain the port number. Both address and port use network-byte order.")
SAME_KEY = ("The compact format uses the same *peers* key in the bencoded tracker response, but "
            "the value is a bencoded string rather than a bencoded list.")


def _compact(value: object, ctx: object) -> bool:
    return value is True


COMPACT = Field("peers_compact", Satisfies(_compact, "a compact string"))

CASES = [
    http_case(
        id="bep23/compact/honoured", title="compact=1 gets peers as a string", spec=SPEC,
        requirement=ADVISES, level="SHOULD", rule="bep23/compact/preferred",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=1), source="b", expect=COMPACT)]),
    http_case(
        id="bep23/compact/default", title="without compact, peers come as a string",
        spec=SPEC, requirement=DEFAULT, level="SHOULD", rule="bep23/compact/preferred",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=None), source="b", expect=COMPACT)]),
    http_case(
        id="bep23/compact/six-bytes", title="a compact peers string is whole 6-byte records",
        spec=SPEC, requirement=LAYOUT, level="MUST", rule="bep23/compact/layout",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=1), source="b",
                    expect=NoDeviation(prefix="tracker/http/wrong-type"))]),
    http_case(
        id="bep23/compact/peer-listed", title="compact=1: the second peer is handed the first",
        spec=SPEC, requirement=SAME_KEY, level="MUST", rule="bep3/announce/peers",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=1), source="b",
                    expect=All(NoDeviation(prefix="tracker/http/wrong-type"),
                               PeerListed("a")))]),
]
