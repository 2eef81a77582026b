"""Robustness: malformed, oversized, truncated, out-of-range input and floods.

Every case here is a robustness case: whatever the target does with the bad input (drop it,
or answer an error), a well-behaved ping from a fresh address afterwards must be answered.
BEP 5 §Errors names the answer a node may give ("203 Protocol Error, such as a malformed
packet"); the MUST is the one every DHT relies on: a node keeps serving.
"""

from __future__ import annotations

from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.dht._common import dht_case, survives

SPEC = "BEP 5 §Errors"
MALFORMED = "203 Protocol Error, such as a malformed packet, invalid arguments, or bad token"
BEP32_RECEIVE = ("(In the interest of robustness, a node should be able to receive datagrams "
                 "with larger payloads.)")

_PING_HEAD = b"d1:ad2:id20:" + b"\x01" * 20
_PING = _PING_HEAD + b"e1:q4:ping1:t2:<T>1:y1:qe"


def _robust(name: str, title: str, data: bytes | Computed, *, expect=None,
            requirement: str = MALFORMED, spec: str = SPEC, repeat: int = 1) -> object:
    return dht_case(
        id=f"robustness/{name}", title=title, spec=spec, requirement=requirement,
        level="MUST", rule="krpc/robustness", robustness=True,
        steps=[Step(send=Raw(data), repeat=repeat,
                    expect=None if repeat > 1 else (expect or survives()))])


def _deep(ctx: object) -> bytes:
    return b"d1:ad2:id20:" + b"\x01" * 20 + b"1:x" + b"l" * 5000 + b"e" * 5000 + \
        b"e1:q4:ping1:t2:" + ctx.current_t + b"1:y1:qe"


CASES = [
    _robust("empty-datagram", "an empty datagram", b""),
    _robust("random-bytes", "64 bytes that are not bencoding",
            bytes(range(7, 7 + 64 * 3, 3))),
    _robust("truncated", "a ping cut in the middle", _PING[:25]),
    _robust("truncated-after-t", "a ping without its closing 'e'", _PING[:-1]),
    _robust("not-a-dictionary", "a bencoded list instead of a dictionary",
            b"l4:ping2:<T>e"),
    _robust("integer-leading-zero", "an integer with a leading zero (i06881e)",
            _PING_HEAD + b"4:porti06881ee1:q4:ping1:t2:<T>1:y1:qe"),
    _robust("unsorted-keys", "a dictionary with unsorted keys",
            b"d1:y1:q1:t2:<T>1:q4:ping1:ad2:id20:" + b"\x01" * 20 + b"ee",
),
    _robust("string-length-overrun", "a string length beyond the datagram",
            b"d1:ad2:id99999:" + b"\x01" * 20 + b"e1:q4:ping1:t2:<T>1:y1:qe"),
    _robust("negative-string-length", "a negative string length",
            b"d1:ad2:id-5:abcdee1:q4:ping1:t2:<T>1:y1:qe"),
    _robust("integer-key", "a dictionary with an integer key",
            b"di1ei2e1:q4:ping1:t2:<T>1:y1:qe"),
    _robust("huge-integer", "an integer of 1000 digits",
            _PING_HEAD + b"4:porti" + b"9" * 1000 + b"ee1:q4:ping1:t2:<T>1:y1:qe"),
    _robust("deep-nesting", "lists nested 5000 deep", Computed(_deep, "5000-deep lists")),
    _robust("oversized-datagram", "an 8000-byte query", _PING_HEAD + b"1:x7900:" +
            b"x" * 7900 + b"e1:q4:ping1:t2:<T>1:y1:qe", spec="BEP 32 §Maximum packet size",
            requirement=BEP32_RECEIVE),
    _robust("long-transaction-id", "a 1000-byte transaction id",
            _PING_HEAD + b"e1:q4:ping1:t1000:" + b"T" * 1000 + b"1:y1:qe",
),
    _robust("nul-bytes", "1400 NUL bytes", b"\x00" * 1400),
    _robust("flood-pings", "a burst of 500 pings from one address",
            _PING, repeat=500),
    _robust("flood-garbage", "a burst of 500 undecodable datagrams",
            b"d1:ad2:id20:" + b"\xff" * 10, repeat=500),
]
