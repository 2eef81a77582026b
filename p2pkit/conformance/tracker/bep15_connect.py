"""BEP 15 §Connect and §UDP connections / spoofing: the connect exchange, the magic
``protocol_id``, the transaction id echo, and the connection id's checks and lifetime.

BEP 15 has no RFC 2119 keywords; its prose decides the levels:

- "The tracker verifies the connection_id and ignores the request if it doesn't match": MUST
  (without it the tracker is a reflector for spoofed announces); an error packet instead of
  silence is accepted (BEP 15 §Errors: "it might send an error packet");
- the transaction id echo: MUST (clients "Check whether the transaction ID is equal to the one
  you chose" and drop the answer otherwise);
- "A connection ID can be used for multiple requests" and "A client can use a connection ID
  until one minute after it has received it": MUST (a tracker that refuses either refuses
  conforming clients); the one-minute case waits 58 s;
- "Connection IDs should not be guessable": SHOULD (two connects get different ids);
- a connect without the magic constant: SHOULD be refused (the constant is what tells a
  tracker's connect from stray datagrams; BEP 15 does not say what to do with others).
"""

from __future__ import annotations

from p2pkit.bittorrent.tracker.udp import PROTOCOL_ID
from p2pkit.conformance.case import Computed, FromAnswer, Raw, Step
from p2pkit.conformance.tracker._common import (
    ECHO,
    connect,
    connected,
    refused_udp,
    udp_announce,
    udp_case,
)
from p2pkit.conformance.verifiers import All, Equals, Field, Present, Satisfies

SPEC = "BEP 15 §Connect"
SPOOFING = "BEP 15 §UDP connections / spoofing"
OBTAIN = "Before announcing or scraping, you have to obtain a connection ID."
ECHO_TEXT = "Check whether the transaction ID is equal to the one you chose."
MAGIC = "protocol_id 0x41727101980 // magic constant"
VERIFIES = "The tracker verifies the connection_id and ignores the request if it doesn't match."
ENSURE = ("The tracker has to ensure this doesn't occur, so it calculates a value "
          "(connection_id) and sends it to the client.")
GUESSABLE = "Connection IDs should not be guessable by the client."
MULTIPLE = "A connection ID can be used for multiple requests."
MINUTE = "A client can use a connection ID until one minute after it has received it."
SIZE = "Clients and trackers should not assume packets to be of a certain size."

#: Seconds the lifetime case waits between connect and announce (inside the client's minute).
LIFETIME_WAIT = 58.0

ANNOUNCED = Field("action", Equals("announce"))


def _other_id(value: object, ctx: object) -> bool:
    return value != ctx.answer("conn").get("connection_id")


def _flipped(ctx: object) -> int:
    return ctx.answer("conn").get("connection_id") ^ 0x5A5A


CASES = [
    udp_case(
        id="bep15/connect/response", title="a connect gets a connect response with a "
        "connection id", spec=SPEC, requirement=OBTAIN, level="MUST", rule="bep15/connect",
        steps=[Step(send=connect(), expect=All(Field("action", Equals("connect")),
                                                Field("connection_id", Present())))]),
    udp_case(
        id="bep15/connect/transaction-id", title="the connect response echoes the transaction "
        "id", spec=SPEC, requirement=ECHO_TEXT, level="MUST", rule="bep15/transaction-id",
        steps=[Step(send=connect(), expect=ECHO)]),
    udp_case(
        id="bep15/connect/bad-magic", title="a connect without the magic protocol_id gets no "
        "connection id", spec=SPEC, requirement=MAGIC, level="SHOULD",
        rule="bep15/connect/magic", robustness=True,
        steps=[Step(send=Raw(PROTOCOL_ID.__xor__(1).to_bytes(8, "big") + bytes(4) + b"<T>"),
                    expect=refused_udp())]),
    udp_case(
        id="bep15/connect/trailing-bytes", title="a connect with 8 more bytes is answered",
        spec="BEP 15 §Extensions", requirement=SIZE, level="SHOULD", rule="bep15/extensions",
        steps=[Step(send=connect(trailing=b"\x00" * 8),
                    expect=Field("action", Equals("connect")))]),
    udp_case(
        id="bep15/connection-id/different", title="two connects get different connection ids",
        spec=SPOOFING, requirement=GUESSABLE, level="SHOULD",
        rule="bep15/connection-id/unguessable", sources=2,
        steps=[connected("conn", "a"),
               Step(send=connect(), source="b", expect=Field("connection_id", Satisfies(
                   _other_id, "another id than the first connect's")))]),
    udp_case(
        id="bep15/connection-id/reused", title="one connection id serves two announces",
        spec=SPOOFING, requirement=MULTIPLE, level="MUST", rule="bep15/connection-id/reuse",
        steps=[connected(), Step(send=udp_announce(), expect=ANNOUNCED),
               Step(send=udp_announce(event="none"), expect=ANNOUNCED)]),
    udp_case(
        id="bep15/connection-id/one-minute", title=f"a connection id is accepted "
        f"{LIFETIME_WAIT:g} s after the connect", spec=SPOOFING, requirement=MINUTE,
        level="MUST", rule="bep15/connection-id/lifetime", tags=("slow",),
        steps=[connected(), Step(send=None, wait=LIFETIME_WAIT),
               Step(send=udp_announce(), expect=ANNOUNCED)]),
    udp_case(
        id="bep15/connection-id/wrong", title="an announce with a connection id never issued "
        "is ignored or refused", spec=SPOOFING, requirement=VERIFIES, level="MUST",
        rule="bep15/connection-id/checked",
        steps=[connected(), Step(send=udp_announce(connection_id=Computed(_flipped, "another "
                                                                          "id")),
                                 expect=refused_udp())]),
    udp_case(
        id="bep15/connection-id/without-connect", title="an announce without a connect is "
        "ignored or refused", spec=SPOOFING, requirement=VERIFIES, level="MUST",
        rule="bep15/connection-id/checked",
        steps=[Step(send=udp_announce(connection_id=0x0123456789ABCDEF),
                    expect=refused_udp())]),
    udp_case(
        id="bep15/connection-id/protocol-id", title="the magic protocol_id is not a "
        "connection id", spec=SPOOFING, requirement=VERIFIES, level="MUST",
        rule="bep15/connection-id/checked",
        steps=[Step(send=udp_announce(connection_id=PROTOCOL_ID), expect=refused_udp())]),
    udp_case(
        id="bep15/connection-id/other-address", title="a connection id issued to another "
        "address is ignored or refused", spec=SPOOFING, requirement=ENSURE, level="MUST",
        rule="bep15/connection-id/checked", sources=2,
        steps=[connected("conn", "a"),
               Step(send=udp_announce("b", connection_id=FromAnswer("conn", "connection_id")),
                    source="b", expect=refused_udp())]),
]
