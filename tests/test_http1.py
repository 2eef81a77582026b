"""The one HTTP/1 head codec (p2pkit.http1), on real heads and on random bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
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
from tests.pcap_payloads import tcp_streams

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


# --------------------------------------------------------------------------- real heads

def real_heads() -> list[tuple[str, bytes]]:
    """Every HTTP head at the start of a direction in the committed captures: the tracker
    exchanges (libtorrent 2.0.8, aria2 1.36.0, curl, opentracker), Shareaza 2.7.10.2 and
    gtk-gnutella 1.2.2 downloads (nDPI's capture) and p2pkit's own servents."""
    out = []
    for capture in ("tracker-01-opentracker-libtorrent-aria2.pcap", "ndpi-gnutella.pcap",
                    "gnutella-02-p2pkit-servents.pcap"):
        for data in tcp_streams(capture).values():
            if data.startswith(b"GIV "):
                data = data[data.index(b"\n\n") + 2:]
            if data[:4] in (b"GET ", b"HTTP"):
                out.append((capture, data[: head_end(data)]))
    return out


REAL_HEADS = real_heads()


def test_real_heads_found():
    assert len(REAL_HEADS) == 28
    agents = {parse_head(h, folding=True).headers.get("user-agent") for _, h in REAL_HEADS}
    assert {"libtorrent/2.0.8.0", "aria2/1.36.0", "curl"} <= {a.split(" ")[0] for a in agents
                                                              if a}


@pytest.mark.parametrize(("capture", "raw"), REAL_HEADS)
def test_real_heads_round_trip(capture, raw):
    head = parse_head(raw, folding=True)
    assert head.size == len(raw) and head.deviations == ()
    if head.start_line.startswith("HTTP/"):
        assert parse_status_line(head.start_line).status in (200, 206)
    else:
        assert parse_request_line(head.start_line).method == "GET"
    assert build_head(head.start_line, head.headers) == raw
    lenient = parse_head(raw, folding=True, strict=False)
    assert lenient.headers == head.headers and lenient.deviations == ()


def test_gtk_gnutella_folded_download_request():
    """gtk-gnutella 1.2.2 folds X-FW-Node-Info (RFC 9112 §5.2 obs-fold) in its download GET."""
    raw = next(h for _, h in REAL_HEADS if b"X-FW-Node-Info" in h and b"\r\n\t" in h)
    with pytest.raises(ParseError) as e:
        parse_head(raw)
    assert e.value.path == "headers" and raw[e.value.offset:].startswith(b"\t")
    head = parse_head(raw, folding=True)
    node_info = head.headers["X-FW-Node-Info"]
    assert node_info.startswith("74e83102414c9fb617abb10c9760594a;") and "\r\n\t" in node_info
    lenient = parse_head(raw, strict=False)  # unasked-for folding: kept, and reported
    assert lenient.headers == head.headers
    assert {d.rule for d in lenient.deviations} == {"http/field/obs-fold"}
    assert raw[lenient.deviations[0].offset:].startswith(b"\t")


def test_trailing_whitespace_kept_for_round_trip():
    raw = b"HTTP/1.1 200 OK\r\nServer: x \t\r\nX-A:  a, b  \r\n c \r\n\r\n"
    head = parse_head(raw, folding=True)
    assert head.headers["server"] == "x" and head.headers["x-a"] == "a, b  \r\n c"
    assert build_head(head.start_line, head.headers) == raw


@pytest.mark.parametrize(("raw", "rule", "at"), [
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "http/field/space-before-colon", 16),
    (b"GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", "http/field/obs-fold", 22),
    (b"GET / HTTP/1.1\r\nno colon\r\nB: 2\r\n\r\n", "http/field/malformed", 16),
    (b"GET / HTTP/1.1\r\nA: x\0y\r\n\r\n", "http/field/invalid-character", 20),
    (b"GET / HTTP/1.1\r\nA: x\ny\r\n\r\n", "http/field/invalid-character", 20),
])
def test_lenient_reports_what_strict_refuses(raw, rule, at):
    with pytest.raises(ParseError) as e:
        parse_head(raw)
    assert e.value.path == "headers"
    head = parse_head(raw, strict=False)
    assert [(d.rule, d.offset) for d in head.deviations] == [(rule, at)]
    assert all(d.spec.startswith("RFC 911") for d in head.deviations)


def test_bare_line_break_in_start_line_is_refused():
    for raw in (b"GET /\nx HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 O\rK\r\n\r\n"):
        for strict in (True, False):
            with pytest.raises(ParseError) as e:
                parse_head(raw, strict=strict)
            assert e.value.path == "start_line"


@settings(max_examples=300)
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_random_bytes_raise_only_parse_error_in_every_mode(data, folding, strict):
    try:
        head = parse_head(data, folding=folding, strict=strict, max_size=256)
    except ParseError:
        return
    if not head.deviations:
        assert build_head(head.start_line, head.headers) == data[: head.size]


@settings(max_examples=200)
@given(st.sampled_from([h for _, h in REAL_HEADS]),
       st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), max_size=3))
def test_mutated_real_heads_parse_or_raise_parse_error(raw, flips):
    data = bytearray(raw)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        head = parse_head(bytes(data), folding=True)
    except ParseError:
        return
    assert build_head(head.start_line, head.headers) == bytes(data[: head.size])


def test_only_ascii_digits_count():
    # found by hypothesis on a mutated real tracker answer: latin-1 b"\xb9" is "¹", a digit
    # to str.isdigit() but not to int()
    with pytest.raises(ParseError):
        parse_status_line("HTTP/1.1 \u00b900 OK")
    with pytest.raises(ParseError):
        parse_range("bytes=\u00b9-2", 10)
