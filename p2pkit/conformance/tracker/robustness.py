"""Robustness over HTTP and UDP: oversized, malformed, truncated input and floods.

Every case here is a robustness case: whatever the tracker does with the bad input (drop it,
close the connection, answer a failure or an error packet), a well-behaved request from a fresh
address afterwards must be answered (a connect over UDP, an announce over HTTP). The spec
sentences are the ones a tracker relies on to survive such input; the MUST is the one every
swarm relies on: a tracker keeps serving. Truncated BEP 15 requests must not be served as if
whole: they are ignored or answered with an error (as a request whose connection id does not
match, "ignores the request").
"""

from __future__ import annotations

from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest
from p2pkit.conformance.case import Computed, HttpGet, Raw, Step
from p2pkit.conformance.tracker._common import (
    LEFT,
    PORTS,
    connected,
    http_announce,
    http_case,
    refused_udp,
    survives,
    udp_case,
    udp_scrape,
)

HTTP_SPEC = "BEP 3 §trackers"
HTTP_TEXT = ("If a tracker response has a key ``failure reason``, then that maps to a human "
             "readable string which explains why the query failed, and no other keys are "
             "required.")
UDP_SPEC = "BEP 15 §UDP tracker protocol"
UDP_TEXT = ("Do not expect packets to be exactly of a certain size. Future extensions could "
            "increase the size of packets.")
VERIFIES = "The tracker verifies the connection_id and ignores the request if it doesn't match."


def _http(name: str, title: str, send: object, *, repeat: int = 1) -> object:
    return http_case(
        id=f"robustness/http-{name}", title=title, spec=HTTP_SPEC, requirement=HTTP_TEXT,
        level="MUST", rule="tracker/robustness", robustness=True,
        steps=[Step(send=send, repeat=repeat, expect=None if repeat > 1 else survives())])


def _udp(name: str, title: str, send: object, *, repeat: int = 1, expect: object = None,
         setup: bool = False, requirement: str = UDP_TEXT,
         spec: str = UDP_SPEC) -> object:
    steps = [connected()] if setup else []
    if isinstance(send, Computed):
        send = Raw(send)
    steps.append(Step(send=send, repeat=repeat,
                      expect=None if repeat > 1 else (expect or survives())))
    return udp_case(id=f"robustness/udp-{name}", title=title, spec=spec,
                    requirement=requirement, level="MUST", rule="tracker/robustness",
                    robustness=True, steps=steps)


def _announce_bytes(ctx: object) -> bytes:
    return UdpTrackerRequest.build({
        "action": "announce", "connection_id": ctx.answer("conn").get("connection_id"),
        "transaction_id": ctx.current_t, "info_hash": ctx.info_hash,
        "peer_id": b"-PK0001-" + ctx.fresh("peer", 12), "downloaded": 0, "left": LEFT,
        "uploaded": 0, "event": "started", "key": 7, "num_want": -1, "port": PORTS["a"]})


def _cut(n: int) -> Computed:
    return Computed(lambda ctx: _announce_bytes(ctx)[:n], f"an announce cut at {n} bytes")


def _with_action(action: int) -> Computed:
    def build(ctx: object) -> bytes:
        data = _announce_bytes(ctx)
        return data[:8] + action.to_bytes(4, "big") + data[12:]
    return Computed(build, f"an announce with action {action}")


def _scrape_partial(ctx: object) -> bytes:
    cid = ctx.answer("conn").get("connection_id")
    return cid.to_bytes(8, "big") + (2).to_bytes(4, "big") + ctx.current_t.to_bytes(
        4, "big") + ctx.info_hash + ctx.info_hash[:10]


def _headers(n: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"X-Filler-{i}", "y" * 40) for i in range(n))


CASES = [
    _http("oversized-query", "a 20000-byte query string",
          http_announce(extra=(("x", "A" * 20000),))),
    _http("bad-percent-encoding", "escapes cut short and not hex (%4, %g1, %)",
          HttpGet(query="info_hash=%4&peer_id=%g1%&port=%&left=1")),
    _http("huge-numbers", "port, left and uploaded of 40 digits",
          http_announce(port="9" * 40, left="9" * 40, uploaded="9" * 40)),
    _http("negative-left", "left=-1 and downloaded=-5", http_announce(left="-1",
                                                                      downloaded="-5")),
    _http("header-flood", "a request head with 400 header lines",
          HttpGet(params=http_announce().params, headers=_headers(400))),
    _http("not-http", "a BitTorrent handshake instead of an HTTP request",
          Raw(b"\x13BitTorrent protocol" + bytes(8) + b"\xab" * 40)),
    _http("truncated-head", "a request head that never ends", Raw(b"GET /announce?info_hash=")),
    _http("flood", "300 announces from one address",
          http_announce(), repeat=300),
    _udp("empty", "an empty datagram", Raw(b"")),
    _udp("short-connect", "a connect of 15 bytes",
         Raw(bytes.fromhex("0000041727101980" "00000000" "010203"))),
    _udp("truncated-announce", "an announce cut at 60 bytes is ignored or refused", _cut(60),
         setup=True, expect=refused_udp(), requirement=VERIFIES,
         spec="BEP 15 §UDP connections / spoofing"),
    _udp("announce-without-port", "an announce cut at 96 bytes (no port) is ignored or "
         "refused", _cut(96), setup=True, expect=refused_udp(), requirement=VERIFIES,
         spec="BEP 15 §UDP connections / spoofing"),
    _udp("partial-scrape-hash", "a scrape whose second info-hash has 10 bytes",
         Computed(_scrape_partial, "a scrape with 10 bytes of a second hash"), setup=True),
    _udp("unknown-action", "action 9 with a valid connection id", _with_action(9),
         setup=True),
    _udp("error-action", "action 3 (error) sent to the tracker", _with_action(3), setup=True),
    _udp("oversized", "a 4000-byte datagram", Raw(b"\x00\x00\x04\x17\x27\x10\x19\x80" +
                                                  b"\xee" * 3992)),
    _udp("scrape-too-many", "a scrape of 100 info-hashes",
         udp_scrape(*[Computed(lambda ctx, i=i: ctx.fresh(f"h{i}", 20), f"hash {i}")
                      for i in range(100)]), setup=True),
    _udp("flood-connects", "500 connects from one address",
         Raw(bytes.fromhex("0000041727101980") + bytes(4) + b"<T>"), repeat=500),
    _udp("flood-garbage", "500 undecodable datagrams", Raw(b"\xff" * 23), repeat=500),
]
