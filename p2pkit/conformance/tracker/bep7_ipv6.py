"""BEP 7: ``peers6`` in compact answers, the IP announce parameters, the ``key`` parameter.

``peers6`` is a MAY ("the tracker MAY add another key"); when it is there its layout is a
MUST (18 bytes per endpoint, IPv6 addresses only). The ``&ipv4=``/``&ipv6=`` parameters "are
discouraged": a tracker handing out an address a peer named rather than the one it came from
is a SHOULD failure. A tracker must accept the ``key`` that BEP 7 asks clients to send, and the
other parameters real clients add (libtorrent's ``corrupt``, aria2's ``supportcrypto``): BEP 7
has no keyword for trackers here; MUST was chosen because refusing them refuses those clients.
"""

from __future__ import annotations

import ipaddress

from p2pkit.conformance.case import Step
from p2pkit.conformance.tracker._common import PeerListed, http_announce, http_case
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Field,
    NoDeviation,
    OneOf,
    Satisfies,
)

PEERS6 = ("In case a compact response is requested, the tracker MAY add another key to the "
          "response; ``peers6``. This key has the same layout as ``peers`` in compact mode, but "
          "instead of using 6 bytes per endpoint, 18 bytes are used.")
ALL_V6 = "peers6 contains address-port pairs where the addresses are all IPv6."
DISCOURAGED = ("These are discouraged, as they allow an attacker to announce a victim's IP "
               "address to launch a DDoS attack.")
KEY = "The client SHOULD include a ``key`` parameter in its announces."

#: Addresses peer ``a`` names for itself in ``ipv4=``/``ipv6=``/``ip=`` (documentation ranges).
VICTIMS = ("192.0.2.7", "2001:db8::7")


def _all_v6(value: object, ctx: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(ipaddress.ip_address(str(p["ip"])), ipaddress.IPv6Address) for p in value)


def _no_victim(value: object, ctx: object) -> bool:
    return isinstance(value, list) and not any(str(p.get("ip")) in VICTIMS for p in value)


CASES = [
    http_case(
        id="bep7/peers6/layout", title="peers6, when present, is whole 18-byte records",
        spec="BEP 7 §Announce Response", requirement=PEERS6, level="MUST",
        rule="bep7/peers6/layout",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=1), source="b",
                    expect=NoDeviation(prefix="tracker/http/wrong-type"))]),
    http_case(
        id="bep7/peers6/ipv6-only", title="peers6, when present, holds IPv6 addresses only",
        spec="BEP 7 §Announce Response", requirement=ALL_V6, level="MUST",
        rule="bep7/peers6/layout",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", compact=1), source="b",
                    expect=OneOf(Field("peers6", Absent()),
                                 Field("peers6", Satisfies(_all_v6, "IPv6 addresses only"))))]),
    http_case(
        id="bep7/ip-parameters/not-handed-out", title="an address named in ipv4=/ipv6= is not "
        "handed out in place of the source address", spec="BEP 7 §IP announce parameters",
        requirement=DISCOURAGED, level="SHOULD", rule="bep7/ip-parameters",
        steps=[Step(send=http_announce("a", extra=(("ipv4", VICTIMS[0]), ("ipv6", VICTIMS[1]))),
                    source="a"),
               Step(send=http_announce("b", compact=1), source="b", expect=All(
                   PeerListed("a"),
                   OneOf(Field("peers6", Absent()),
                         Field("peers6", Satisfies(_no_victim, "without the named address"))),
                   Field("peers", Satisfies(_no_victim, "without the named address"))))]),
    http_case(
        id="bep7/key/accepted", title="key and the parameters real clients add are accepted",
        spec="BEP 7 §Announcing", requirement=KEY, level="MUST",
        rule="bep3/http/extra-parameters",
        steps=[Step(send=http_announce("a", extra=(
                   ("key", b"\x87b\xc2\xd0"), ("supportcrypto", 1), ("corrupt", 0),
                   ("redundant", 0), ("no_peer_id", 1))), source="a"),
               Step(send=http_announce("b", extra=(("key", b"K3y!"), ("requirecrypto", 0))),
                    source="b", expect=PeerListed("a"))]),
]
