"""The rpcudp envelope on real datagrams of the Python kademlia package (2.2.3, rpcudp 5.0.1)."""

from __future__ import annotations

import msgpack
import pytest

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.rpcudp.envelope import MAX_BODY_SIZE, RpcudpDatagram
from p2pkit.rpcudp.rpcs import RPC_ARGUMENTS, named_arguments
from tests.pcap_payloads import udp_datagrams

REAL = [p for _, _, p in udp_datagrams("kademlia-py-rpcudp.pcap")]


def test_every_real_datagram_parses_and_rebuilds_byte_for_byte():
    assert len(REAL) == 60
    for payload in REAL:
        message = RpcudpDatagram.parse(payload)
        assert RpcudpDatagram.build(message) == payload


def test_requests_carry_the_four_rpcs_with_their_arguments():
    methods = set()
    for payload in REAL:
        message = RpcudpDatagram.parse(payload)
        if message.kind == "request":
            name, args = message.body
            named = named_arguments(name, args)
            assert len(named["node_id"]) == 20
            methods.add(name)
    assert methods == {"ping", "find_node", "store", "find_value"} <= set(RPC_ARGUMENTS)


def test_bad_bodies_are_parse_errors_with_an_offset():
    head = b"\x00" + bytes(20)
    with pytest.raises(ParseError) as info:
        RpcudpDatagram.parse(head + b"\x92\xa4pi")  # a string that breaks off
    assert info.value.reason.startswith("truncated") and info.value.offset is not None
    with pytest.raises(ParseError):
        RpcudpDatagram.parse(head + b"\xc0\xc0")  # two objects
    with pytest.raises(ParseError):
        RpcudpDatagram.parse(head + b"\xc1")  # never used in msgpack
    with pytest.raises(LimitExceeded):
        RpcudpDatagram.parse(head + msgpack.packb(b"x" * MAX_BODY_SIZE))
    with pytest.raises(ParseError):
        named_arguments("store", [b"id"])
