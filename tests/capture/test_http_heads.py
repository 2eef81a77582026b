"""The dissector's HTTP heads (HTTP tracker, Gnutella downloads) are read by p2pkit.http1:
real heads from the captures, and RFC 9112 departures reported as Deviations."""

from __future__ import annotations

from p2pkit.bittorrent.tracker.dissect_http import HttpTrackerStream
from p2pkit.capture.dissect import dissect
from p2pkit.gnutella.dissect import GnutellaStream
from p2pkit.http1 import parse_head
from tests.pcap_payloads import CAPTURES, tcp_streams

ANNOUNCE = (b"GET /announce?info_hash=%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab"
            b"%ab&peer_id=-LT2080-HE6WK6KTFNrY&port=6882 HTTP/1.1\r\n")


def test_gnutella_download_heads_match_http1_on_real_bytes():
    streams = {f"{s[0]}:{s[1]}>{d[0]}:{d[1]}": data
               for (s, d), data in tcp_streams("ndpi-gnutella.pcap").items()}
    heads = [r for r in dissect(CAPTURES / "ndpi-gnutella.pcap")
             if r.message in ("http_request", "http_response")]
    assert len(heads) == 6
    for r in heads:
        raw = streams[f"{r.src}>{r.dst}"][r.offset:r.offset + r.length]
        head = parse_head(raw, folding=True)
        assert head.size == r.length and r.deviations == []
        assert r.fields["headers"] == [[name, value] for name, value in head.headers]
    request = next(r for r in heads if r.fields.get("target", "").startswith("/gnutella/thex"))
    info = [v for k, v in request.fields["headers"] if k == "X-FW-Node-Info"]
    assert len(info) == 1 and "\r\n\t188.61.52.183:11852" in info[0]  # one folded field
    assert {r.fields["status"] for r in heads if r.message == "http_response"} == {200, 206}


def test_http_tracker_head_deviations_land_on_the_record():
    stream = HttpTrackerStream(transport="tcp", src="a:1", dst="b:6969")
    data = ANNOUNCE + b"Host : b\r\nUser-Agent: x\r\n\r\n"
    [record] = stream.data(1000, data, frame=1, time=0.0)
    assert record.message == "announce" and record.fields["port"] == 6882
    [deviation] = record.deviations
    assert deviation.rule == "http/field/space-before-colon"
    assert data[deviation.offset - 1000:].startswith(b"Host : b")


def test_http_tracker_response_length_from_the_parsed_head():
    client = HttpTrackerStream(transport="tcp", src="a:1", dst="b:6969")
    server = HttpTrackerStream(transport="tcp", src="b:6969", dst="a:1")
    client.peer, server.peer = server, client
    list(client.data(0, ANNOUNCE + b"\r\n", frame=1, time=0.0))
    body = b"d8:intervali1800e5:peers0:e"
    response = (b"HTTP/1.1 200 OK\r\ncontent-length:  " + str(len(body)).encode()
                + b"  \r\n\r\n" + body)
    assert list(server.data(0, response[:-3], frame=2, time=0.0)) == []  # body incomplete
    records = list(server.data(len(response) - 3, response[-3:], frame=3, time=0.0))
    assert [r.fields["interval"] for r in records] == [1800]
    assert records[0].length == len(response) and not records[0].deviations


def test_gnutella_http_start_line_deviation():
    stream = GnutellaStream(transport="tcp", src="a:1", dst="b:2")
    data = b"GET /get/1/kilo.txt\r\nHost: b\r\n\r\n"
    [record] = stream.data(0, data, frame=1, time=0.0)
    assert record.message == "http_request" and record.fields["headers"] == [["Host", "b"]]
    assert [d.rule for d in record.deviations] == ["http/start-line"]


def test_gnutella_handshake_deviations_land_on_the_record():
    from p2pkit.errors import ParseError
    from p2pkit.gnutella.stream import StreamReader

    data = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\nX-Ultrapeer : True\r\n\r\n"
    stream = GnutellaStream(transport="tcp", src="a:1", dst="b:2")
    [record] = stream.data(0, data, frame=1, time=0.0)
    assert record.message == "handshake" and ["X-Ultrapeer", "True"] in record.fields["headers"]
    [deviation] = record.deviations
    assert deviation.rule == "http/field/space-before-colon"
    assert data[deviation.offset:].startswith(b"X-Ultrapeer :")
    try:
        StreamReader(strict=True).feed(data)
    except ParseError as e:
        assert data[e.offset:].startswith(b"X-Ultrapeer :")
    else:
        raise AssertionError("a servent refuses what RFC 9112 refuses")
