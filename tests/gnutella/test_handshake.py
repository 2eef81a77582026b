"""Handshake blocks: every block of both captures, headers, 0.4, limits, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.handshake import (
    CONNECT_0_4,
    MAX_HANDSHAKE_SIZE,
    Handshake,
    Headers,
    detect_greeting,
    handshake_end,
)
from tests.pcap_payloads import tcp_streams


def blocks(name):
    for data in tcp_streams(name).values():
        pos = 0
        while data[pos:pos + 8] == b"GNUTELLA":
            end = handshake_end(data, pos)
            yield data[pos:end]
            pos = end


@pytest.mark.parametrize("capture", ["gtkg123-plain-up2-3leaves.pcap", "ndpi-gnutella.pcap"])
def test_capture_blocks_round_trip(capture):
    seen = set()
    for block in blocks(capture):
        hs = Handshake.parse(block)
        assert Handshake.build(hs) == block
        seen.add((hs.kind, hs.status_code))
    assert ("connect", None) in seen and ("response", 200) in seen


def test_named_headers_of_gtk_gnutella():
    connect = next(b for b in blocks("gtkg123-plain-up2-3leaves.pcap")
                   if b.startswith(b"GNUTELLA CONNECT"))
    hs = Handshake.parse(connect)
    names = [name for name, _ in hs.headers]
    for header in ("User-Agent", "X-Ultrapeer", "X-Query-Routing", "Pong-Caching", "GGEP",
                   "Bye-Packet", "Vendor-Message", "X-Features"):
        assert header in names
    assert hs.headers["user-agent"].startswith("gtk-gnutella/1.2.3")


def test_refusals_in_ndpi():
    refusals = [Handshake.parse(b) for b in blocks("ndpi-gnutella.pcap")
                if b.startswith(b"GNUTELLA/0.6 503") or b.startswith(b"GNUTELLA/0.6 204")]
    assert {h.status_code for h in refusals} == {503, 204}
    tried = [h.headers["X-Try-Ultrapeers"] for h in refusals if "X-Try-Ultrapeers" in h.headers]
    assert tried and all(":" in t for t in tried)


def test_headers_multimap():
    h = Headers([("Accept-Encoding", "deflate, gzip"), ("X-A", "1"), ("x-a", "2")])
    assert h.tokens("accept-encoding") == ["deflate", "gzip"]
    assert h.get_all("X-A") == ["1", "2"] and h["X-a"] == "1" and len(h) == 3
    with pytest.raises(KeyError):
        h["missing"]


def test_continuation_line_kept():
    data = b"GNUTELLA/0.6 503 Busy\r\nX-Try: a,\r\n b\r\n\r\n"
    hs = Handshake.parse(data)
    assert hs.headers["X-Try"] == "a,\r\n b" and Handshake.build(hs) == data


def test_0_4_and_detection():
    assert Handshake.parse(CONNECT_0_4).kind == "connect_0_4"
    assert Handshake.build(dict(kind="ok_0_4")) == b"GNUTELLA OK\n\n"
    assert detect_greeting(b"\x16\x03\x01") is None


def test_limit():
    assert handshake_end(b"GNUTELLA CONNECT/0.6\r\nX: y") is None
    with pytest.raises(LimitExceeded):
        handshake_end(b"GNUTELLA CONNECT/0.6\r\n" + b"X: y\r\n" * (MAX_HANDSHAKE_SIZE // 6))


@pytest.mark.parametrize("data", [b"HTTP/1.1 200 OK\r\n\r\n", b"GNUTELLA/0.6 2x0 OK\r\n\r\n",
                                  b"GNUTELLA CONNECT/0.6\r\nNoColon\r\n\r\n"])
def test_errors(data):
    with pytest.raises(ParseError):
        Handshake.parse(data)


# RFC 9110 §5.1: a field name is a token (p2pkit.http1 reads handshake heads by RFC 9112).
header_name = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,10}", fullmatch=True)
header_text = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                    blacklist_characters=":"), min_size=1, max_size=10)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(header_name, header_text), max_size=6), st.integers(100, 599))
def test_round_trip(headers, code):
    obj = dict(kind="response", version="0.6", status_code=code, reason="Reason",
               headers=Headers(headers))
    data = Handshake.build(obj)
    parsed = Handshake.parse(data)
    assert list(parsed.headers) == headers and Handshake.build(parsed) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_raise_only_parse_error(data):
    try:
        Handshake.parse(b"GNUTELLA" + data + b"\r\n\r\n")
    except ParseError:
        pass


def test_headers_are_the_http1_multimap():
    from p2pkit import http1

    assert Headers is http1.Headers
    block = next(blocks("gtkg123-plain-up2-3leaves.pcap"))
    head = http1.parse_head(block, folding=True)
    hs = Handshake.parse(block)
    assert hs.headers == head.headers and isinstance(hs.headers, http1.Headers)


@pytest.mark.parametrize("capture", ["gtkg123-plain-up2-3leaves.pcap", "ndpi-gnutella.pcap"])
def test_handshake_streams_round_trip_whole(capture):
    """Every handshake block of every direction, parsed one after the other from one stream."""
    for data in tcp_streams(capture).values():
        pos = 0
        out = b""
        while data[pos:pos + 8] == b"GNUTELLA":
            end = handshake_end(data, pos)
            out += Handshake.build(Handshake.parse(data[pos:end]))
            pos = end
        assert out == data[:pos]


def test_rfc_9112_separators_round_trip():
    """RFC 9112 §5: "field-name ":" OWS field-value OWS" — not only ": "."""
    data = b"GNUTELLA CONNECT/0.6\r\nUser-Agent:x/1\r\nX-Ultrapeer:\tFalse \r\n\r\n"
    hs = Handshake.parse(data)
    assert hs.headers["X-Ultrapeer"] == "False" and hs.headers["user-agent"] == "x/1"
    assert Handshake.build(hs) == data


def test_error_offsets_point_into_the_stream():
    import io

    prefix = b"GNUTELLA CONNECT/0.6\r\nA: 1\r\n\r\n"
    data = prefix + b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\nBad Name: 1\r\n\r\n"
    stream = io.BytesIO(data)
    assert Handshake.parse_stream(stream).kind == "connect"
    with pytest.raises(ParseError) as info:
        Handshake.parse_stream(stream)
    assert info.value.path == "headers" and info.value.protocol == "gnutella"
    assert data[info.value.offset:].startswith(b"Bad Name")
    with pytest.raises(ParseError) as info:
        Handshake.parse(b"GNUTELLA/0.6 2x0 OK\r\n\r\n")
    assert info.value.path == "start_line" and info.value.offset == 0


def test_limits_are_the_gnutella_ones():
    from p2pkit.gnutella.handshake import MAX_HEADERS

    many = b"GNUTELLA CONNECT/0.6\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    with pytest.raises(LimitExceeded):
        Handshake.parse(many)
    assert len(Handshake.parse(b"GNUTELLA CONNECT/0.6\r\n" + b"X: y\r\n" * MAX_HEADERS
                               + b"\r\n").headers) == MAX_HEADERS


@pytest.mark.parametrize(("data", "expected"), [
    (b"GNUTELLA CONNECT/0.7\r\n", "0.6"),  # handshaking_0.6 §3: higher versions are 0.6 to us
    (b"GNUTELLA/0.7 200 OK\r\n", "0.6"),
    (b"GNUTELLA CONNECT/0.10\r\n", "0.6"),
    (b"GNUTELLA CONNECT/1.0\r\n", "0.6"),
    (b"GNUTELLA CONNECT/0.5\r\n", None),
    (b"GNUTELLA CONNECT/x.y\r\n", None),
    (b"GNUTELLA CONNECT/0.4\n\n", "0.4"),
])
def test_detect_greeting_versions(data: bytes, expected: str | None) -> None:
    assert detect_greeting(data) == expected


@given(st.binary(max_size=40))
@settings(max_examples=300)
def test_detect_greeting_never_raises(data: bytes) -> None:
    assert detect_greeting(data) in (None, "0.4", "0.6")
    assert detect_greeting(b"GNUTELLA CONNECT/" + data) in (None, "0.4", "0.6")
