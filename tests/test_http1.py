"""The one HTTP/1 head codec (p2pkit.http1), on real heads and on random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.http1 import (
    ByteRange,
    Headers,
    build_head,
    head_end,
    parse_head,
    parse_range,
    parse_request_line,
    parse_status_line,
)

# The head libtorrent 2.0 sends to an HTTP tracker (tests/data/captures/tracker-01-*.pcap).
LIBTORRENT_ANNOUNCE = (
    b"GET /announce?info_hash=%d7%b1%c8%ef&port=6881 HTTP/1.1\r\n"
    b"Host: 127.0.0.1:6969\r\nUser-Agent: libtorrent/2.0.8.0\r\n"
    b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n")
# gtk-gnutella 1.2.3's handshake answer (tests/data/captures/gtkg123-plain-up2-3leaves.pcap),
# shortened; a folded line as old servents send.
GTKG_ANSWER = (b"GNUTELLA/0.6 200 OK\r\nUser-Agent: gtk-gnutella/1.2.3\r\n"
               b"X-Try-Ultrapeers: 10.0.0.1:6346,\r\n 10.0.0.2:6346\r\n\r\n")


def test_real_tracker_request_round_trips():
    head = parse_head(LIBTORRENT_ANNOUNCE)
    assert head.size == len(LIBTORRENT_ANNOUNCE)
    line = parse_request_line(head.start_line)
    assert (line.method, line.version) == ("GET", "HTTP/1.1")
    assert line.target.startswith("/announce?info_hash=")
    assert head.headers["user-agent"] == "libtorrent/2.0.8.0"
    assert build_head(head.start_line, head.headers) == LIBTORRENT_ANNOUNCE


def test_folding_only_when_asked():
    with pytest.raises(ParseError) as e:
        parse_head(GTKG_ANSWER)
    assert e.value.path == "headers" and e.value.offset == 87
    head = parse_head(GTKG_ANSWER, folding=True)
    assert head.headers.tokens("X-Try-Ultrapeers") == ["10.0.0.1:6346", "10.0.0.2:6346"]
    assert parse_status_line(head.start_line, protocols=("GNUTELLA",)).status == 200
    assert build_head(head.start_line, head.headers) == GTKG_ANSWER


def test_separator_kept_for_byte_exact_round_trip():
    raw = b"HTTP/1.0 200 OK\r\nContent-Length:3\r\nX:\t y\r\n\r\n"
    head = parse_head(raw)
    assert head.headers["content-length"] == "3" and head.headers["x"] == "y"
    assert build_head(head.start_line, head.headers) == raw


def test_limits_before_allocation():
    with pytest.raises(LimitExceeded):
        head_end(b"x" * 100, max_size=64)
    assert head_end(b"x" * 10, max_size=64) is None
    many = b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 11 + b"\r\n"
    with pytest.raises(LimitExceeded):
        parse_head(many, max_headers=10)
    assert len(parse_head(many, max_headers=11).headers) == 11


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n: empty\r\n\r\n",
    b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # truncated
])
def test_malformed_heads(raw):
    with pytest.raises(ParseError):
        parse_head(raw)


def test_start_lines():
    with pytest.raises(ParseError):
        parse_request_line("GET /only-two")
    with pytest.raises(ParseError):
        parse_status_line("HTTP/1.1 2000 OK")
    with pytest.raises(ParseError):
        parse_status_line("GNUTELLA/0.6 200 OK")  # not HTTP unless the caller says so
    assert parse_status_line("HTTP/1.1 404").reason == ""


def test_build_refuses_injection():
    with pytest.raises(BuildError):
        build_head("HTTP/1.1 200 OK", [("X", "a\r\nInjected: 1")])
    with pytest.raises(BuildError):
        build_head("HTTP/1.1 200 OK", [("Bad Name", "a")])
    with pytest.raises(BuildError):
        build_head("HTTP/1.1 200 OK\r\nX: y", [])


def test_ranges():
    assert parse_range("bytes=0-", 10) == ByteRange(0, 9)
    assert parse_range("bytes=5-100", 10) == ByteRange(5, 9)
    assert parse_range("bytes=-100", 10) == ByteRange(0, 9)
    assert parse_range("bytes=10-", 10) is None
    assert parse_range("bytes=-0", 10) is None
    for bad in ("bytes=", "bytes=5-2", "items=0-1", "bytes=0-1,3-4"):
        with pytest.raises(ParseError):
            parse_range(bad, 10)


def test_headers_multimap():
    h = Headers([("A", "1"), ("a", "2"), ("B", "x, y")])
    assert h.get_all("A") == ["1", "2"] and h.tokens("b") == ["x", "y"]
    assert h == [("A", "1"), ("a", "2"), ("B", "x, y")]
    with pytest.raises(KeyError):
        h["missing"]


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(data):
    try:
        head = parse_head(data, folding=True, max_size=256)
    except ParseError:
        return
    assert head.size <= len(data)


names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True)
values = st.from_regex(r"[!-~]([ -~]{0,20}[!-~])?", fullmatch=True)


@given(st.lists(st.tuples(names, values), max_size=20))
def test_build_parse_round_trip(fields):
    raw = build_head("GET /x HTTP/1.1", fields)
    head = parse_head(raw)
    assert list(head.headers) == fields and head.size == len(raw)
