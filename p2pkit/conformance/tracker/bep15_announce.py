"""BEP 15 §Announce: the announce response's layout, interval, counts and peers, num_want,
the stopped event, and BEP 41 options.

The layout is the schema's (``UdpAnnounceResponse``: action 1, transaction_id, interval,
leechers, seeders, then 6-byte pairs, or 18-byte pairs from an IPv6 tracker, BEP 15 §IPv6);
an answer that does not parse fails. No keywords in BEP 15: the layout, the counts and the
peers are MUST (they are the answer); honouring ``num_want`` is SHOULD; tolerating BEP 41
options (an announce longer than 98 bytes) is SHOULD, as BEP 15 §Extensions words it.
"""

from __future__ import annotations

from p2pkit.conformance.case import Step
from p2pkit.conformance.tracker._common import (
    ECHO,
    PeerCount,
    PeerListed,
    connected,
    udp_announce,
    udp_case,
)
from p2pkit.conformance.verifiers import All, Between, Equals, Field

SPEC = "BEP 15 §Announce"
NEXT = "Do not announce again until interval seconds have passed or an event has occurred."
ECHO_TEXT = "Check whether the transaction ID is equal to the one you chose."
COUNTS = "12 32-bit integer leechers 16 32-bit integer seeders"
PEERS = "20 + 6 * n 32-bit integer IP address 24 + 6 * n 16-bit integer TCP port"
NUM_WANT = "92 32-bit integer num_want -1 // default"
EVENTS = "80 32-bit integer event 0 // 0: none; 1: completed; 2: started; 3: stopped"
SIZE = "Clients and trackers should not assume packets to be of a certain size."
FAMILY = ("Which format is used is determined by the address family of the underlying UDP "
          "packet.")

ANNOUNCED = Field("action", Equals("announce"))


def _pair(source: str, **over: object) -> list[Step]:
    """``source`` connects and announces."""
    return [connected(f"conn_{source}", source),
            Step(send=udp_announce(source, connection=f"conn_{source}", **over),
                 source=source)]


CASES = [
    udp_case(
        id="bep15/announce/layout", title="an announce gets action 1, interval, leechers, "
        "seeders and whole peer records", spec=SPEC, requirement=NEXT, level="MUST",
        rule="bep15/announce/layout",
        steps=[connected(), Step(send=udp_announce(), expect=All(
            ANNOUNCED, Field("interval", Between(1, 2**32 - 1))))]),
    udp_case(
        id="bep15/announce/transaction-id", title="the announce response echoes the "
        "transaction id", spec=SPEC, requirement=ECHO_TEXT, level="MUST",
        rule="bep15/transaction-id",
        steps=[connected(), Step(send=udp_announce(), expect=ECHO)]),
    udp_case(
        id="bep15/announce/ipv6-stride", title="peer records are 6 bytes from an IPv4 tracker, "
        "18 from an IPv6 one", spec="BEP 15 §IPv6", requirement=FAMILY, level="MUST",
        rule="bep15/announce/layout",
        steps=[*_pair("a"), connected("conn_b", "b"),
               Step(send=udp_announce("b", connection="conn_b"), source="b",
                    expect=ANNOUNCED)]),
    udp_case(
        id="bep15/announce/peers", title="a second peer is handed the first at its announced "
        "port", spec=SPEC, requirement=PEERS, level="MUST", rule="bep15/announce/peers",
        steps=[*_pair("a"), connected("conn_b", "b"),
               Step(send=udp_announce("b", connection="conn_b"), source="b",
                    expect=PeerListed("a"))]),
    udp_case(
        id="bep15/announce/not-itself", title="a peer is not handed its own address",
        spec=SPEC, requirement=PEERS, level="SHOULD", rule="bep3/announce/not-itself",
        steps=[*_pair("a"), connected("conn_b", "b"),
               Step(send=udp_announce("b", connection="conn_b"), source="b",
                    expect=PeerListed("b", listed=False))]),
    udp_case(
        id="bep15/announce/counts", title="one seeder and one leecher: seeders 1, leechers 1",
        spec=SPEC, requirement=COUNTS, level="MUST", rule="bep15/announce/counts",
        steps=[*_pair("a", left=0), connected("conn_b", "b"),
               Step(send=udp_announce("b", connection="conn_b"), source="b",
                    expect=All(Field("seeders", Equals(1)), Field("leechers", Equals(1))))]),
    udp_case(
        id="bep15/announce/num-want", title="num_want=1 gets at most one peer", spec=SPEC,
        requirement=NUM_WANT, level="SHOULD", rule="bep15/announce/num-want",
        steps=[*_pair("a"), *_pair("b"), *_pair("c"), connected("conn_d", "d"),
               Step(send=udp_announce("d", connection="conn_d", num_want=1), source="d",
                    expect=PeerCount(1, "d"))]),
    udp_case(
        id="bep15/announce/stopped-removes", title="a peer that sent stopped (3) is no longer "
        "handed out", spec=SPEC, requirement=EVENTS, level="MUST",
        rule="tracker/announce/stopped",
        steps=[*_pair("a"),
               Step(send=udp_announce("a", connection="conn_a", event="stopped"), source="a"),
               connected("conn_b", "b"),
               Step(send=udp_announce("b", connection="conn_b"), source="b",
                    expect=PeerListed("a", listed=False))]),
    udp_case(
        id="bep15/announce/url-data", title="an announce with a BEP 41 URLData option is "
        "answered", spec="BEP 15 §Extensions", requirement=SIZE, level="SHOULD",
        rule="bep15/extensions",
        steps=[connected(), Step(send=udp_announce(options=[
            {"type": "url_data", "data": b"/announce?pk=1"}, {"type": "nop", "data": None}]),
            expect=ANNOUNCED)]),
]
