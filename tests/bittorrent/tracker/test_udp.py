"""UDP tracker protocol (BEP 15, BEP 41): opentracker/libtorrent/aria2 traffic, vectors, fuzzing."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.udp import (
    PROTOCOL_ID,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpAnnounceResponse6,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    UdpTrackerRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
    url_data,
)
from p2pkit.errors import BuildError, ParseError
from tests.pcap_payloads import udp_datagrams

CAPTURE = "tracker-01-opentracker-libtorrent-aria2.pcap"
TRACKER = ("127.0.0.1", 6969)
INFO_HASH = bytes.fromhex("91956f897917588bd1a6dd0486559477eaca9473")


def common(schema, data: bytes, fields: dict):
    """Parse ``data``, compare the named fields, and check that building gives ``data`` back."""
    obj = schema.parse(data)
    for name, value in fields.items():
        assert obj[name] == value, name
    assert schema.build(obj) == data
    return obj


def tracker_packets():
    requests, responses = [], []
    for src, dst, data in udp_datagrams(CAPTURE):
        (requests if dst == TRACKER else responses).append((src, dst, data))
    return requests, responses


def test_capture_has_every_kind_of_packet():
    requests, responses = tracker_packets()
    req = Counter(UdpTrackerRequest.parse(d).action for _, _, d in requests)
    resp = Counter(UdpTrackerResponse.parse(d).action for _, _, d in responses)
    assert set(req) == {"connect", "announce", "scrape"}
    assert set(resp) == {"connect", "announce", "scrape", "error"}
    # Every request got exactly one answer.
    assert sum(req.values()) == sum(resp.values())


def test_every_packet_round_trips_and_matches_its_transaction():
    requests, responses = tracker_packets()
    answers = {}
    for src, _, data in responses:
        msg = common(UdpTrackerResponse, data, {})
        answers[(src, msg.transaction_id)] = msg
    for _, _, data in requests:
        msg = common(UdpTrackerRequest, data, {})
        answer = answers.pop((TRACKER, msg.transaction_id))
        # BEP 15: the response carries the request's action, or 3 for an error.
        assert answer.action in (msg.action, "error")
    assert not answers


def test_connect_and_announce_from_libtorrent():
    requests, responses = tracker_packets()
    connect = common(UdpTrackerRequest, requests[0][2],
                     {"action": "connect", "protocol_id": PROTOCOL_ID})
    reply = common(UdpTrackerResponse, responses[0][2],
                   {"action": "connect", "transaction_id": connect.transaction_id})
    announce = common(UdpTrackerRequest, requests[1][2], {
        "action": "announce", "connection_id": reply.connection_id, "info_hash": INFO_HASH,
        "peer_id": b"-LT2080-XLosNDEz1NwK", "downloaded": 0, "left": 0, "uploaded": 0,
        "event": "started", "ip_address": ipaddress.IPv4Address("0.0.0.0"), "num_want": 200,
        "port": 6881, "trailing": b""})
    # libtorrent sends the announce URL's path as a BEP 41 URLData option.
    assert url_data(announce) == b"/announce"
    assert len(requests[1][2]) == 98 + 2 + len(b"/announce")
    peers = common(UdpTrackerResponse, responses[1][2], {"action": "announce", "seeders": 1,
                                                         "leechers": 0})
    assert [(str(p.ip), p.port) for p in peers.peers] == [("127.0.0.2", 6881)]


def test_aria2_announce_ends_with_end_of_options():
    requests, responses = tracker_packets()
    aria2 = [UdpTrackerRequest.parse(d) for s, _, d in requests if s[0] == "127.0.0.5"]
    announces = [m for m in aria2 if m.action == "announce"]
    assert [m.event for m in announces] == ["started", "stopped"]
    for m in announces:
        assert m.peer_id.startswith(b"A2-1-36-0-")
        assert m.options == [] and m.trailing == b"\x00\x00"
    answers = [UdpTrackerResponse.parse(d) for _, dst, d in responses if dst[0] == "127.0.0.5"]
    full = next(m for m in answers if m.action == "announce" and m.peers)
    assert {str(p.ip) for p in full.peers} == {"127.0.0.2", "127.0.0.3", "127.0.0.5"}


def test_scrape_and_error_from_opentracker():
    requests, responses = tracker_packets()
    scrape = next(UdpTrackerRequest.parse(d) for _, _, d in requests if d[11] == 2)
    assert scrape.info_hashes == [INFO_HASH]
    result = next(UdpTrackerResponse.parse(d) for _, _, d in responses if d[3] == 2)
    assert [(f.seeders, f.completed, f.leechers) for f in result.files] == [(2, 1, 0)]
    # libtorrent reuses one session's connection ID from another address: opentracker refuses.
    errors = [UdpTrackerResponse.parse(d) for _, _, d in responses if d[3] == 3]
    assert errors and {e.message for e in errors} == {b"Connection ID missmatch.\x00"}


# BEP 15 layouts, byte by byte.
ANNOUNCE_V6 = (bytes.fromhex("00000001 0000abcd 00000708 00000002 00000005".replace(" ", ""))
               + ipaddress.IPv6Address("::1").packed + b"\x1a\xe1"
               + ipaddress.IPv6Address("2001:db8::2").packed + b"\x1a\xe2")


def test_announce_response_from_an_ipv6_tracker():
    msg = common(UdpAnnounceResponse6, ANNOUNCE_V6,
                 {"action": "announce", "interval": 1800, "leechers": 2, "seeders": 5})
    assert [(str(p.ip), p.port) for p in msg.peers] == [("::1", 6881), ("2001:db8::2", 6882)]
    assert UdpTrackerResponse6.parse(ANNOUNCE_V6) == msg
    # 36 bytes of peers are 6 IPv4 peers too: the address family has to be known.
    assert len(UdpTrackerResponse.parse(ANNOUNCE_V6).peers) == 6


@pytest.mark.parametrize(
    ("schema", "data", "fields"),
    [
        (UdpConnectRequest, bytes.fromhex("0000041727101980 00000000 12345678".replace(" ", "")),
         {"transaction_id": 0x12345678}),
        (UdpConnectResponse,
         bytes.fromhex("00000000 12345678 0102030405060708".replace(" ", "")),
         {"connection_id": 0x0102030405060708}),
        (UdpScrapeRequest, bytes.fromhex("0102030405060708 00000002 00000009".replace(" ", ""))
         + b"a" * 20 + b"b" * 20, {"info_hashes": [b"a" * 20, b"b" * 20]}),
        (UdpScrapeResponse, bytes.fromhex("00000002 00000009 000000010000000200000003"
                                          .replace(" ", "")), {"transaction_id": 9}),
        (UdpErrorResponse, bytes.fromhex("00000003 00000009".replace(" ", "")) + b"no",
         {"message": b"no"}),
        (UdpAnnounceResponse, bytes.fromhex("00000001 00000009 00000708 00000000 00000000"
                                            .replace(" ", "")), {"peers": []}),
    ],
)
def test_bep15_layouts(schema, data, fields):
    common(schema, data, fields)
    top = UdpTrackerRequest if schema in (UdpConnectRequest, UdpScrapeRequest) \
        else UdpTrackerResponse
    assert top.build(top.parse(data)) == data


@pytest.mark.parametrize("data", [
    bytes.fromhex("00000417271019800000000062876e5a") + b"\x30",
    bytes.fromhex("0000000062876e5aff41290c1cf722fd") + b"future",
])
def test_longer_fixed_size_messages_keep_their_tail(data):
    # BEP 15: "Do not expect packets to be exactly of a certain size."
    schema = UdpTrackerRequest if data[:4] == b"\x00\x00\x04\x17" else UdpTrackerResponse
    msg = common(schema, data, {"action": "connect"})
    assert msg.trailing == data[16:]


def test_announce_request_defaults_and_bep41_options():
    base = dict(connection_id=1, transaction_id=2, info_hash=b"i" * 20, peer_id=b"p" * 20,
                downloaded=0, left=10, uploaded=0, event="none", key=7, port=6881)
    data = UdpAnnounceRequest.build(base)
    assert len(data) == 98  # BEP 15: "96 16-bit integer port / 98"
    assert data[84:88] == bytes(4) and data[92:96] == b"\xff\xff\xff\xff"  # ip 0, num_want -1
    opts = [{"type": "url_data", "data": b"/ann"}, {"type": "nop"},
            {"type": "url_data", "data": b"ounce?a=b"}]
    data = UdpAnnounceRequest.build(dict(base, options=opts, trailing=b"\x00"))
    assert data[98:] == b"\x02\x04/ann\x01\x02\x09ounce?a=b\x00"
    assert url_data(UdpAnnounceRequest.parse(data)) == b"/announce?a=b"


@pytest.mark.parametrize(
    ("schema", "data", "path"),
    [
        (UdpTrackerRequest, b"", "action"),
        (UdpTrackerRequest, bytes(8) + b"\x00\x00\x00\x07" + bytes(4), "action"),
        (UdpTrackerRequest, bytes(16), "message -> protocol_id"),  # connect without the magic
        (UdpTrackerRequest, bytes.fromhex("0102030405060708 00000002 00000009") + b"a" * 21,
         "message"),  # not a whole number of info_hashes
        (UdpTrackerResponse, bytes.fromhex("00000001 00000009 00000708 00000000 00000000 00"),
         "message"),  # a partial peer
        (UdpTrackerResponse, bytes.fromhex("00000000 00000009"), "message -> connection_id"),
        (UdpTrackerResponse, bytes.fromhex("00000004 00000009"), "action"),
    ],
)
def test_malformed(schema, data, path):
    with pytest.raises(ParseError) as info:
        schema.parse(data)
    assert info.value.protocol == "bt-tracker"
    assert info.value.path == path


def test_build_errors():
    with pytest.raises(BuildError):
        UdpTrackerRequest.build({"action": "error", "transaction_id": 1})
    with pytest.raises(BuildError):
        UdpConnectResponse.build({"transaction_id": 1})
    with pytest.raises(BuildError):
        UdpAnnounceResponse.build({"transaction_id": 1, "interval": 1, "leechers": 0,
                                   "seeders": 0, "peers": [{"ip": "::1", "port": 1}]})


# --------------------------------------------------------------------------- hypothesis

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
hashes = st.binary(min_size=20, max_size=20)
v4 = st.builds(ipaddress.IPv4Address, u32)
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
port = st.integers(0, 0xFFFF)

requests = st.one_of(
    st.fixed_dictionaries({"action": st.just("connect"), "transaction_id": u32}),
    st.fixed_dictionaries({
        "action": st.just("announce"), "connection_id": u64, "transaction_id": u32,
        "info_hash": hashes, "peer_id": hashes, "downloaded": u64, "left": u64, "uploaded": u64,
        "event": st.sampled_from(["none", "completed", "started", "stopped"]),
        "ip_address": v4, "key": u32, "num_want": st.integers(-(2**31), 2**31 - 1),
        "port": port,
        "options": st.lists(st.one_of(
            st.fixed_dictionaries({"type": st.just("nop")}),
            st.fixed_dictionaries({"type": st.just("url_data"),
                                   "data": st.binary(max_size=255)})), max_size=3),
        "trailing": st.one_of(st.just(b""), st.binary(max_size=4).map(lambda b: b"\x00" + b)),
    }),
    st.fixed_dictionaries({"action": st.just("scrape"), "connection_id": u64,
                           "transaction_id": u32, "info_hashes": st.lists(hashes, max_size=5)}),
)


def responses(address):
    return st.one_of(
        st.fixed_dictionaries({"action": st.just("connect"), "transaction_id": u32,
                               "connection_id": u64}),
        st.fixed_dictionaries({
            "action": st.just("announce"), "transaction_id": u32, "interval": u32,
            "leechers": u32, "seeders": u32,
            "peers": st.lists(st.fixed_dictionaries({"ip": address, "port": port}), max_size=5),
        }),
        st.fixed_dictionaries({"action": st.just("scrape"), "transaction_id": u32,
                               "files": st.lists(st.fixed_dictionaries(
                                   {"seeders": u32, "completed": u32, "leechers": u32}),
                                   max_size=4)}),
        st.fixed_dictionaries({"action": st.just("error"), "transaction_id": u32,
                               "message": st.binary(max_size=40)}),
    )


def _same(parsed, fields):
    for name, value in fields.items():
        if name == "options":
            assert [(o.type, o.data) for o in parsed.options] == [
                (o["type"], o.get("data")) for o in value]
        else:
            assert parsed[name] == value, name


@settings(max_examples=150, deadline=None)
@given(requests)
def test_request_round_trip(fields):
    data = UdpTrackerRequest.build(fields)
    parsed = UdpTrackerRequest.parse(data)
    _same(parsed, fields)
    assert UdpTrackerRequest.build(parsed) == data


@settings(max_examples=150, deadline=None)
@given(st.one_of(responses(v4).map(lambda r: (UdpTrackerResponse, r)),
                 responses(v6).map(lambda r: (UdpTrackerResponse6, r))))
def test_response_round_trip(case):
    schema, fields = case
    data = schema.build(fields)
    parsed = schema.parse(data)
    _same(parsed, fields)
    assert schema.build(parsed) == data


SCHEMAS = [UdpTrackerRequest, UdpTrackerResponse, UdpTrackerResponse6, UdpConnectRequest,
           UdpConnectResponse, UdpAnnounceRequest, UdpAnnounceResponse, UdpAnnounceResponse6,
           UdpScrapeRequest, UdpScrapeResponse, UdpErrorResponse]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCHEMAS), st.binary(max_size=120))
def test_random_bytes_raise_only_parse_error(schema, data):
    try:
        parsed = schema.parse(data)
    except ParseError:
        return
    assert schema.build(parsed) == data


REAL = [d for _, _, d in udp_datagrams(CAPTURE)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCHEMAS), st.sampled_from(REAL),
       st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=3),
       st.integers(0, 120))
def test_mutated_real_packets_raise_only_parse_error(schema, data, flips, cut):
    mutated = bytearray(data)
    for pos, value in flips:
        if pos < len(mutated):
            mutated[pos] = value
    mutated = bytes(mutated[:cut or None])
    try:
        parsed = schema.parse(mutated)
    except ParseError:
        return
    assert schema.build(parsed) == mutated
