"""Compact peer strings (BEP 23 peers, BEP 7 peers6): vectors, real bytes, fuzzing."""

from __future__ import annotations

import ipaddress

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.compact import (
    CompactPeer,
    CompactPeer6,
    CompactPeers,
    CompactPeers6,
    parse_compact_peers,
)
from p2pkit.errors import BuildError, ParseError

# opentracker's answer to aria2 in tests/data/captures/tracker-01-…pcap: three loopback peers.
OPENTRACKER_PEERS = bytes.fromhex("7f0000041ae37f0000031ae27f0000021ae1")


def test_compact_peer():
    peer = CompactPeer.parse(b"\x7f\x00\x00\x04\x1a\xe3")
    assert peer == Container(ip=ipaddress.IPv4Address("127.0.0.4"), port=6883)
    assert CompactPeer.build(peer) == b"\x7f\x00\x00\x04\x1a\xe3"
    assert CompactPeer.sizeof() == 6 and CompactPeer6.sizeof() == 18


def test_compact_peers_from_opentracker():
    peers = CompactPeers.parse(OPENTRACKER_PEERS)
    assert [(str(p.ip), p.port) for p in peers] == [
        ("127.0.0.4", 6883), ("127.0.0.3", 6882), ("127.0.0.2", 6881)]
    assert CompactPeers.build(peers) == OPENTRACKER_PEERS


def test_bep7_peers6():
    data = ipaddress.IPv6Address("2001:db8::1").packed + b"\x1a\xe1"
    (peer,) = parse_compact_peers(data, ipv6=True)
    assert peer.ip == ipaddress.IPv6Address("2001:db8::1") and peer.port == 6881
    assert CompactPeers6.build([{"ip": "2001:db8::1", "port": 6881}]) == data


@pytest.mark.parametrize("ip", ["127.0.0.2", 2130706434, ipaddress.IPv4Address("127.0.0.2"),
                                b"\x7f\x00\x00\x02"])
def test_addresses_build_from_several_spellings(ip):
    assert CompactPeer.build({"ip": ip, "port": 1}) == b"\x7f\x00\x00\x02\x00\x01"


@pytest.mark.parametrize("size", [1, 5, 7, 17])
def test_partial_entries_are_errors(size):
    with pytest.raises(ParseError) as info:
        parse_compact_peers(OPENTRACKER_PEERS[:size])
    assert info.value.offset == size - size % 6
    with pytest.raises(ParseError):
        CompactPeers.parse(OPENTRACKER_PEERS[:size])


def test_build_errors():
    with pytest.raises(BuildError):
        CompactPeers.build([{"ip": "::1", "port": 1}])
    with pytest.raises(BuildError):
        CompactPeers.build([{"ip": "127.0.0.1", "port": 70000}])


@settings(max_examples=100, deadline=None)
@given(st.booleans(), st.lists(st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 65535)),
                               max_size=8))
def test_round_trip(ipv6, entries):
    kind = ipaddress.IPv6Address if ipv6 else ipaddress.IPv4Address
    peers = [{"ip": kind(ip % (2**128 if ipv6 else 2**32)), "port": port} for ip, port in entries]
    schema = CompactPeers6 if ipv6 else CompactPeers
    data = schema.build(peers)
    assert len(data) == len(peers) * (18 if ipv6 else 6)
    assert [dict(ip=p.ip, port=p.port) for p in parse_compact_peers(data, ipv6=ipv6)] == peers


@settings(max_examples=100, deadline=None)
@given(st.booleans(), st.binary(max_size=60))
def test_random_bytes_raise_only_parse_error(ipv6, data):
    try:
        peers = parse_compact_peers(data, ipv6=ipv6)
    except ParseError:
        assert len(data) % (18 if ipv6 else 6)
        return
    assert (CompactPeers6 if ipv6 else CompactPeers).build(peers) == data
