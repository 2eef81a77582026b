"""uTP and tracker parse/build speed (BEP 29, BEP 15, BEP 3/23).

Run: ``python -m pytest benchmarks/test_bench_tracker_utp.py --benchmark-enable -p no:doctest``.
Real bytes: a uTP ST_DATA header and a selective ACK from tests/data/captures (libtorrent 2.0.8,
nDPI), and libtorrent ↔ opentracker packets from tracker-01-opentracker-libtorrent-aria2.pcap.
"""

from __future__ import annotations

import pytest

from p2pkit.bittorrent.tracker.http import AnnounceResponse, parse_http_request
from p2pkit.bittorrent.tracker.query import build_announce_query, parse_announce_query
from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest, UdpTrackerResponse
from p2pkit.bittorrent.wire.utp import UtpPacket

UTP_DATA = bytes.fromhex("0100eed03dc3de7600000000000a0000" "1fb40000") + bytes(1400)
UTP_SACK = bytes.fromhex("21015302070760ecf61114480000f00049c9e7f7000401000000")
UDP_ANNOUNCE = bytes.fromhex(
    "ff41290c1cf722fd00000001ed3701c891956f897917588bd1a6dd0486559477eaca9473"
    "2d4c54323038302d584c6f734e44457a314e774b000000000000000000000000000000000000"
    "0000000000000000000200000000643df007000000c81ae102092f616e6e6f756e6365")
UDP_ANNOUNCE_RESPONSE = bytes.fromhex("000000014208f6c90000072e0000000100000002"
                                      "7f0000051ae57f0000031ae27f0000021ae1")
QUERY = ("info_hash=%91%95o%89y%17X%8b%d1%a6%dd%04%86U%94w%ea%ca%94s&peer_id=-LT2080-XLosNDEz1NwK"
         "&port=6881&uploaded=0&downloaded=0&left=0&corrupt=0&key=643DF007&event=started"
         "&numwant=200&compact=1&no_peer_id=1&redundant=0")
REQUEST = (f"GET /announce?{QUERY} HTTP/1.1\r\nHost: 127.0.0.1:6969\r\n"
           "User-Agent: libtorrent/2.0.8.0\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
           ).encode()
BODY = (b"d8:completei2e10:downloadedi1e10:incompletei1e8:intervali1941e12:min intervali970e"
        b"5:peers18:\x7f\x00\x00\x04\x1a\xe3\x7f\x00\x00\x03\x1a\xe2\x7f\x00\x00\x02\x1a\xe1e")

SCHEMAS = {
    "utp_data_1400": (UtpPacket, UTP_DATA),
    "utp_selective_ack": (UtpPacket, UTP_SACK),
    "udp_announce_request": (UdpTrackerRequest, UDP_ANNOUNCE),
    "udp_announce_response": (UdpTrackerResponse, UDP_ANNOUNCE_RESPONSE),
    "http_announce_response_body": (AnnounceResponse, BODY),
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_parse(benchmark, name):
    schema, data = SCHEMAS[name]
    assert schema.build(benchmark(schema.parse, data)) == data


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_build(benchmark, name):
    schema, data = SCHEMAS[name]
    obj = schema.parse(data)
    assert benchmark(schema.build, obj) == data


def test_parse_announce_query(benchmark):
    assert build_announce_query(benchmark(parse_announce_query, QUERY)) == QUERY


def test_build_announce_query(benchmark):
    request = parse_announce_query(QUERY)
    assert benchmark(build_announce_query, request) == QUERY


def test_parse_http_request(benchmark):
    assert benchmark(parse_http_request, REQUEST).size == len(REQUEST)
