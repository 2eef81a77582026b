"""HTTP tracker protocol (BEP 3, 23, 7, 48): recorded libtorrent/aria2/curl ↔ opentracker
traffic, BEP vectors, strictness, limits and fuzzing."""

from __future__ import annotations

import gzip
import ipaddress

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.http import (
    AnnounceResponse,
    AnnounceResponseLenient,
    HttpHeader,
    ScrapeResponse,
    TrackerHttpResponse,
    build_http_request,
    build_http_response,
    encode_body,
    parse_http_request,
    parse_http_response,
)
from p2pkit.bittorrent.tracker.query import (
    MAX_PARAMETERS,
    MAX_QUERY_SIZE,
    AnnounceRequest,
    PercentStyle,
    QueryParameter,
    ScrapeRequest,
    build_announce_query,
    build_scrape_query,
    parse_announce_query,
    parse_query,
    parse_scrape_query,
    percent_decode,
    percent_encode,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from tests.pcap_payloads import tcp_streams

CAPTURE = "tracker-01-opentracker-libtorrent-aria2.pcap"
INFO_HASH = bytes.fromhex("91956f897917588bd1a6dd0486559477eaca9473")

# libtorrent 2.0.8 leaves "(" literal in a peer id (recorded in the same setup, earlier run).
LIBTORRENT_QUERY = (
    "info_hash=%91%95o%89y%17X%8b%d1%a6%dd%04%86U%94w%ea%ca%94s&peer_id=-LT2080-QBdt05(-Zx(s"
    "&port=6881&uploaded=0&downloaded=0&left=0&corrupt=0&key=1A4F418A&event=started"
    "&numwant=200&compact=1&no_peer_id=1&redundant=0")


def exchanges():
    """(request bytes, response bytes) per TCP connection to the tracker, in capture order."""
    streams = tcp_streams(CAPTURE)
    out = []
    for (src, dst), data in streams.items():
        if dst[1] == 6969:
            out.append((data, streams.get((dst, src), b"")))
    return out


def test_capture_exchanges():
    pairs = exchanges()
    assert len(pairs) == 9
    agents = [parse_http_request(q).headers for q, _ in pairs]
    names = {h.value for headers in agents for h in headers if h.name == "User-Agent"}
    assert names == {"libtorrent/2.0.8.0", "aria2/1.36.0", "curl"}


def test_every_request_parses_and_rebuilds_identically():
    for request, _ in exchanges():
        req = parse_http_request(request)
        assert req.size == len(request)
        assert req.method == "GET" and req.version == "HTTP/1.1"
        assert req.kind in ("announce", "scrape")
        assert build_http_request(req) == request
        query = build_announce_query(req.message) if req.kind == "announce" \
            else build_scrape_query(req.message)
        assert query.encode() == request.split(b" ")[1].split(b"?", 1)[1]


def test_every_response_parses_and_rebuilds_identically():
    for request, response in exchanges():
        kind = parse_http_request(request).kind
        resp = parse_http_response(response, kind=kind)
        assert resp.size == len(response)
        assert resp.status == 200
        assert encode_body(resp.message, kind=kind) == resp.body
        assert build_http_response(resp) == response


def test_libtorrent_and_aria2_escape_differently():
    requests = [parse_http_request(q) for q, _ in exchanges()]
    announces = [r.message for r in requests if r.kind == "announce"]
    libtorrent = [a for a in announces if a.peer_id.startswith(b"-LT2080-")]
    aria2 = [a for a in announces if a.peer_id.startswith(b"A2-1-36-0-")]
    assert libtorrent and aria2
    assert {a.style.uppercase for a in libtorrent} == {False}
    assert {a.style.uppercase for a in aria2} == {True}
    # Same torrent, different spellings, equal values.
    assert {a.info_hash for a in announces if a.info_hash != b"\xab" * 20} == {INFO_HASH}
    # aria2 sends a binary key, libtorrent eight hex digits.
    assert all(len(a.key) == 8 and a.key.isalnum() for a in libtorrent)
    assert all(len(a.key) == 8 and not a.key.isascii() for a in aria2)
    assert [QueryParameter(name="supportcrypto", value=b"1")] == list(aria2[0].extra)
    assert [p.name for p in libtorrent[0].extra] == ["corrupt", "redundant"]
    events = [(a.peer_id[:3], a.event) for a in announces]
    assert (b"-LT", "completed") in events and (b"A2-", "stopped") in events


def test_failure_reason_for_a_torrent_opentracker_does_not_serve():
    for request, response in exchanges():
        req = parse_http_request(request)
        if req.kind == "announce" and req.message.info_hash == b"\xab" * 20:
            resp = parse_http_response(response)
            assert resp.message.failure_reason == (
                "Requested download is not authorized for use with this tracker.")
            assert resp.message.interval is None and resp.message.peers is None
            return
    pytest.fail("no announce for the unlisted torrent")


def test_multi_hash_scrape_from_curl():
    ((request, response),) = [(q, r) for q, r in exchanges() if b"/scrape" in q]
    req = parse_http_request(request)
    assert req.message.info_hashes == (INFO_HASH, b"\xab" * 20)
    files = parse_http_response(response, kind="scrape").message.files
    # opentracker leaves the torrent it does not serve out of "files".
    assert list(files) == [INFO_HASH]
    assert (files[INFO_HASH].complete, files[INFO_HASH].downloaded,
            files[INFO_HASH].incomplete) == (2, 1, 0)


def test_announce_responses_list_the_peers_that_announced():
    announced = set()
    answered = 0
    for request, response in exchanges():
        req = parse_http_request(request)
        if req.kind != "announce" or req.message.info_hash != INFO_HASH:
            continue
        announced.add(req.message.port)
        resp = parse_http_response(response).message
        assert resp.peers_compact
        # opentracker returns the announcing peer itself too, and nobody after "stopped".
        assert {p.port for p in resp.peers} <= announced
        assert all(p.ip.is_loopback for p in resp.peers)
        assert not resp.peers if req.message.event == "stopped" else resp.peers
        # opentracker's "min interval" is half its "interval".
        assert resp.interval // 2 == resp.min_interval
        answered += 1
    # seeder: started, stopped; leecher: started, completed, stopped; aria2: started, stopped
    assert announced == {6881, 6882, 6883} and answered == 7


def test_libtorrent_literal_parentheses_rebuild():
    req = parse_announce_query(LIBTORRENT_QUERY)
    assert req.peer_id == b"-LT2080-QBdt05(-Zx(s"
    assert req.style == PercentStyle(uppercase=False, literal=frozenset(b"("))
    assert build_announce_query(req) == LIBTORRENT_QUERY
    fresh = AnnounceRequest(**{k: getattr(req, k) for k in (
        "info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "compact", "no_peer_id",
        "event", "numwant", "key")}, extra=req.extra)
    assert fresh == req  # order and style do not take part in equality
    assert "peer_id=-LT2080-QBdt05%28-Zx%28s" in build_announce_query(fresh)


def test_bep23_example():
    query = ("peer_id=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa&port=6881&left=0"
             "&downloaded=100&uploaded=0&compact=1")
    req = parse_announce_query(query)
    assert (req.port, req.left, req.downloaded, req.uploaded, req.compact) == (6881, 0, 100, 0, 1)
    assert build_announce_query(req) == query


def test_bep7_example_response():
    body = b"d8:intervali1800e5:peers6:iiiipp6:peers618:iiiiiiiiiiiiiiiippe"
    resp = AnnounceResponse.parse(body)
    assert resp.interval == 1800
    assert resp.peers == [Container(ip=ipaddress.IPv4Address(b"iiii"), port=0x7070)]
    assert resp.peers6 == [Container(ip=ipaddress.IPv6Address(b"i" * 16), port=0x7070)]
    assert AnnounceResponse.build(resp) == body


def test_bep48_example_scrape():
    # BEP 48's example body, verbatim, misses the "e" that closes the first torrent's dictionary
    # (its JSON rendering shows the intended structure).
    bep48 = (b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd8:completei11e10:downloadedi13772e10:incomplete"
             b"i19e20:yyyyyyyyyyyyyyyyyyyyd8:completei21e10:downloadedi206e10:incompletei20eee")
    with pytest.raises(ParseError) as info:
        ScrapeResponse.parse(bep48)
    assert info.value.offset == len(bep48)
    body = bep48.replace(b"i19e", b"i19ee") + b"e"
    resp = ScrapeResponse.parse(body)
    assert {k: (v.complete, v.downloaded, v.incomplete) for k, v in resp.files.items()} == {
        b"x" * 20: (11, 13772, 19), b"y" * 20: (21, 206, 20)}
    assert ScrapeResponse.build(resp) == body
    req = parse_scrape_query("info_hash=xxxxxxxxxxxxxxxxxxxx&info_hash=yyyyyyyyyyyyyyyyyyyy")
    assert req.info_hashes == (b"x" * 20, b"y" * 20)


def test_scrape_flags_and_names():
    body = (b"d5:filesd20:xxxxxxxxxxxxxxxxxxxxd8:completei1e10:downloadedi2e10:incompletei3e"
            b"4:name3:abcee5:flagsd20:min_request_intervali900eee")
    resp = ScrapeResponse.parse(body)
    assert resp.files[b"x" * 20].name == "abc"
    assert resp.flags.min_request_interval == 900
    assert ScrapeResponse.build(resp) == body


def test_dictionary_model_peers():
    # BEP 3: "each of which contains the keys peer id, ip, and port".
    body = (b"d8:completei1e10:incompletei0e8:intervali900e12:min intervali60e5:peersl"
            b"d2:ip9:127.0.0.27:peer id20:-LT2080-XLosNDEz1NwK4:porti6881eed2:ip11:example.org"
            b"4:porti6882eee10:tracker id3:xyz15:warning message4:slowe")
    resp = AnnounceResponse.parse(body)
    assert resp.peers_compact is False
    assert [(p.peer_id, p.ip, p.port) for p in resp.peers] == [
        (b"-LT2080-XLosNDEz1NwK", "127.0.0.2", 6881), (None, "example.org", 6882)]
    assert (resp.tracker_id, resp.warning_message, resp.min_interval) == (b"xyz", "slow", 60)
    assert AnnounceResponse.build(resp) == body


def test_empty_peer_lists_keep_their_model():
    for body in (b"d8:intervali1e5:peers0:e", b"d8:intervali1e5:peerslee"):
        assert AnnounceResponse.build(AnnounceResponse.parse(body)) == body


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"le", ""),  # the body itself is not a dictionary
        (b"d5:peers0:e", "interval"),
        (b"d8:intervali1e5:peers5:12345e", "peers"),
        (b"d8:intervali1e5:peersi3ee", "peers"),
        (b"d8:interval1:xe", "interval"),
        (b"d8:intervali1e6:peers65:12345e", "peers6"),
        (b"d8:intervali1e5:peersl2:abee", "peers[0]"),
        (b"d8:intervali1e5:peersld2:ipi3e4:porti1eeee", "peers[0] -> ip"),
    ],
)
def test_malformed_announce_bodies(body, path):
    with pytest.raises(ParseError) as info:
        AnnounceResponse.parse(body)
    assert info.value.path == path
    assert info.value.protocol == "bt-tracker-http"


def test_non_canonical_body_needs_lenient():
    body = b"d8:intervali1e12:min intervali1e5:peers0:8:completei1ee"  # unsorted keys
    with pytest.raises(ParseError) as info:
        AnnounceResponse.parse(body)
    assert info.value.protocol == "bencode"
    assert AnnounceResponseLenient.parse(body).complete == 1


@pytest.mark.parametrize(
    ("query", "path", "offset"),
    [
        ("peer_id=aaaaaaaaaaaaaaaaaaaa&port=1", "info_hash", None),
        ("info_hash=aaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1", "info_hash", None),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=x1", "port", None),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=65536", "port", None),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1&event=paused",
         "event", None),
        ("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1&port=2", "port", None),
        ("info_hash=%zz", "info_hash", 10),
        ("info_hash=%a", "info_hash", 10),
        ("a=1&b=%", "b", 6),
        ("a=1 2", "", 3),
    ],
)
def test_strict_announce_query(query, path, offset):
    with pytest.raises(ParseError) as info:
        parse_announce_query(query)
    assert info.value.path == path
    assert info.value.offset == offset
    assert info.value.protocol == "bt-tracker-http"


def test_event_spellings():
    base = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1"
    for event in ("started", "completed", "stopped", "empty", ""):
        assert parse_announce_query(f"{base}&event={event}").event == event
    assert parse_announce_query(base).event is None


def test_percent_decoding_is_case_tolerant_and_plus_is_literal():
    assert percent_decode("%aB%Ab+") == b"\xab\xab+"
    assert percent_encode(b"+ ~") == "%2B%20~"
    q = parse_query("a=%ab&b=%AB")
    assert q.style.uppercase  # mixed: one spelling cannot be reproduced, uppercase is RFC 3986's


def test_query_limits():
    with pytest.raises(LimitExceeded):
        parse_query("a" * (MAX_QUERY_SIZE + 1))
    with pytest.raises(LimitExceeded):
        parse_query("&".join(["a=1"] * (MAX_PARAMETERS + 1)))
    assert len(parse_query("&".join(["a=1"] * MAX_PARAMETERS)).parameters) == MAX_PARAMETERS


def test_empty_segments_and_bare_names():
    q = parse_query("a=1&&b&")
    assert q.parameters == (QueryParameter(name="a", value=b"1"),
                            QueryParameter(name="b", value=b""))


def test_request_line_forms():
    req = parse_http_request(b"GET http://t.example/x/announce.php?info_hash=aaaaaaaaaaaaaaaaaaaa"
                             b"&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1 HTTP/1.0\r\n\r\n")
    assert req.kind == "announce" and req.path == "http://t.example/x/announce.php"
    req = parse_http_request(b"GET /favicon.ico HTTP/1.1\r\nHost:x\r\n\r\nrest")
    assert req.kind is None and req.message is None and req.query is None
    assert req.headers == (HttpHeader(name="Host", value="x"),)
    assert req.size == len(b"GET /favicon.ico HTTP/1.1\r\nHost:x\r\n\r\n")
    assert build_http_request(req) == b"GET /favicon.ico HTTP/1.1\r\nHost:x\r\n\r\n"


def test_query_errors_point_into_the_request():
    data = b"GET /announce?info_hash=%zz HTTP/1.1\r\n\r\n"
    with pytest.raises(ParseError) as info:
        parse_http_request(data)
    assert data[info.value.offset:].startswith(b"%zz")


@pytest.mark.parametrize(
    "data",
    [
        b"GET /announce HTTP/1.1\r\nHost: x\r\n",  # no blank line
        b"GET /announce\r\n\r\n",
        b"get /announce HTTP/1.1 extra\r\n\r\n",
        b"GET /announce HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET /announce HTTP/1.1\r\n folded: x\r\n\r\n",
    ],
)
def test_malformed_requests(data):
    with pytest.raises(ParseError):
        parse_http_request(data)


def test_head_is_bounded():
    with pytest.raises(LimitExceeded):
        parse_http_request(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n")
    with pytest.raises(LimitExceeded):
        parse_http_request(b"GET /" + b"a" * 40000)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nde",
        b"HTTP/1.1 2000 OK\r\n\r\nde",
        b"ICY 200 OK\r\n\r\nde",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nde",
        "HTTP/1.1 200 OK\r\nContent-Length: \u00b9\r\n\r\nde".encode("latin-1"),  # a digit
        b"HTTP/1.\xff 200 OK\r\n\r\nde",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nde",
    ],
)
def test_malformed_responses(data):
    with pytest.raises(ParseError):
        parse_http_response(data)


def test_body_errors_point_into_the_response():
    data = b"HTTP/1.1 200 OK\r\n\r\nd8:intervali1e5:peers5:12345e"
    with pytest.raises(ParseError) as info:
        parse_http_response(data)
    assert info.value.path == "body -> peers"


def test_gzip_body_and_no_content_length():
    body = b"d8:intervali60e5:peers0:e"
    data = b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(body)
    resp = parse_http_response(data)
    assert resp.message.interval == 60
    assert build_http_response(resp) == data


def test_wrong_types_are_p2pkit_errors():
    with pytest.raises(ParseError):
        parse_http_request("GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(ParseError):
        parse_query(42)
    with pytest.raises(BuildError):
        build_announce_query(AnnounceRequest(info_hash="a" * 20, peer_id=b"b" * 20, port=1))
    with pytest.raises(BuildError):
        build_scrape_query(ScrapeRequest(extra=(QueryParameter(name="€", value=b""),)))


def test_build_errors():
    with pytest.raises(BuildError):
        build_announce_query(AnnounceRequest(info_hash=b"a" * 20, peer_id=b"b" * 20, port=-1))
    with pytest.raises(BuildError):
        encode_body(Container(interval=1, peers=[Container(ip="::1", port=1)]))
    with pytest.raises(BuildError):
        encode_body(Container(), kind="bogus")
    with pytest.raises(BuildError):
        build_http_response(TrackerHttpResponse(version="HTTP/1.1", status=200, reason="ÖK€"))


# --------------------------------------------------------------------------- hypothesis

nat = st.integers(0, 2**63)
announces = st.builds(
    AnnounceRequest,
    info_hash=st.binary(min_size=20, max_size=20),
    peer_id=st.binary(min_size=20, max_size=20),
    port=st.integers(0, 65535),
    uploaded=st.none() | nat, downloaded=st.none() | nat, left=st.none() | nat,
    compact=st.none() | st.integers(0, 1), no_peer_id=st.none() | st.integers(0, 1),
    event=st.none() | st.sampled_from(["started", "completed", "stopped", "empty", ""]),
    ip=st.none() | st.sampled_from(["127.0.0.1", "::1", "example.org"]),
    numwant=st.none() | st.integers(0, 500),
    key=st.none() | st.binary(max_size=8), trackerid=st.none() | st.binary(max_size=8),
    extra=st.lists(st.builds(QueryParameter, name=st.sampled_from(["corrupt", "x y", "ä"]),
                             value=st.binary(max_size=6)), max_size=3).map(tuple),
    style=st.builds(PercentStyle, uppercase=st.booleans(),
                    literal=st.frozensets(st.sampled_from(b"()!*'$,;:@/?"))),
)


@settings(max_examples=200, deadline=None)
@given(announces)
def test_announce_round_trip(request):
    query = build_announce_query(request)
    parsed = parse_announce_query(query)
    assert parsed == request
    assert build_announce_query(parsed) == query


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), max_size=5), st.booleans())
def test_scrape_round_trip(hashes, upper):
    request = ScrapeRequest(info_hashes=tuple(hashes), style=PercentStyle(uppercase=upper))
    query = build_scrape_query(request)
    parsed = parse_scrape_query(query)
    assert parsed == request
    assert build_scrape_query(parsed) == query


peers4 = st.lists(st.builds(Container, ip=st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)),
                            port=st.integers(0, 65535)), max_size=4)
responses = st.builds(
    Container,
    failure_reason=st.none() | st.text(max_size=10),
    warning_message=st.none() | st.text(max_size=10),
    interval=st.integers(0, 10**6), min_interval=st.none() | st.integers(0, 10**6),
    tracker_id=st.none() | st.binary(max_size=6),
    complete=st.none() | st.integers(0, 99), incomplete=st.none() | st.integers(0, 99),
    peers=peers4, peers_compact=st.just(True),
    peers6=st.none() | st.lists(st.builds(
        Container, ip=st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1)),
        port=st.integers(0, 65535)), max_size=3),
    extra=st.dictionaries(st.sampled_from([b"downloaded", b"external ip"]),
                          st.integers(0, 9) | st.binary(max_size=4)),
)


@settings(max_examples=150, deadline=None)
@given(responses)
def test_announce_response_round_trip(resp):
    body = AnnounceResponse.build(resp)
    parsed = AnnounceResponse.parse(body)
    assert parsed == resp
    assert AnnounceResponse.build(parsed) == body


counts = st.none() | st.integers(0, 10**6)
scrapes = st.builds(
    Container,
    failure_reason=st.none() | st.text(max_size=10),
    files=st.dictionaries(st.binary(min_size=20, max_size=20), st.builds(
        Container, complete=counts, downloaded=counts, incomplete=counts,
        name=st.none() | st.text(max_size=8), extra=st.just({})), max_size=3),
    flags=st.none() | st.builds(Container, min_request_interval=counts, extra=st.just({})),
    extra=st.dictionaries(st.sampled_from([b"x", b"y"]), st.integers(0, 9), max_size=2),
)


@settings(max_examples=100, deadline=None)
@given(scrapes)
def test_scrape_response_round_trip(resp):
    body = ScrapeResponse.build(resp)
    parsed = ScrapeResponse.parse(body)
    assert parsed == resp
    assert ScrapeResponse.build(parsed) == body


bencoded = st.recursive(
    st.integers(-5, 99) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from([b"interval", b"peers", b"peers6", b"files", b"flags", b"ip", b"port",
                         b"failure reason", b"complete", b"peer id", b"x" * 20]), inner,
        max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(bencoded)
def test_bencoded_values_raise_only_parse_error(value):
    from p2pkit.bencode import encode

    body = encode(value)
    for schema in (AnnounceResponse, ScrapeResponse):
        try:
            parsed = schema.parse(body)
        except ParseError:
            continue
        assert schema.build(parsed) == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    for parse in (parse_http_request, parse_http_response, parse_query, parse_announce_query,
                  parse_scrape_query, AnnounceResponse.parse, ScrapeResponse.parse):
        try:
            parse(data)
        except ParseError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=&%09AFaf_+~(í", max_size=40))
def test_random_query_strings_raise_only_parse_error(text):
    for parse in (parse_query, parse_announce_query, parse_scrape_query):
        try:
            parse(text)
        except ParseError:
            pass


REAL = [d for pair in exchanges() for d in pair]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                       max_size=3), st.integers(0, 400))
def test_mutated_real_messages_raise_only_parse_error(data, flips, cut):
    mutated = bytearray(data)
    for pos, value in flips:
        if pos < len(mutated):
            mutated[pos] = value
    mutated = bytes(mutated[:cut or None])
    try:
        req = parse_http_request(mutated)
    except ParseError:
        pass
    else:
        build_http_request(req)
    for kind in ("announce", "scrape", None):
        try:
            parse_http_response(mutated, kind=kind)
        except ParseError:
            pass


# --------------------------------------------------------------------------- one head codec


def test_heads_are_read_by_http1_on_real_bytes():
    from p2pkit import http1

    assert HttpHeader is http1.HeaderField
    for request, response in exchanges():
        for data, parsed in ((request, parse_http_request(request)),
                             (response, parse_http_response(response, kind=None))):
            head = http1.parse_head(data)
            assert parsed.headers == head.headers.fields and parsed.deviations == ()
            assert data[: head.size] == http1.build_head(head.start_line, parsed.headers)


def test_trailing_whitespace_is_rfc_9112_ows_and_round_trips():
    # RFC 9112 §5: "field-line = field-name ":" OWS field-value OWS"
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 2 \r\nServer:\topentracker\t\r\n\r\nde"
    resp = parse_http_response(data, kind=None)
    assert resp.body == b"de" and [h.value for h in resp.headers] == ["2", "opentracker"]
    assert build_http_response(resp) == data


def test_lenient_heads_report_deviations():
    data = (b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1"
            b" HTTP/1.1\r\nHost : t\r\n\r\n")
    with pytest.raises(ParseError) as info:
        parse_http_request(data)
    assert info.value.path == "headers" and data[info.value.offset:].startswith(b"Host :")
    req = parse_http_request(data, strict=False)
    assert [d.rule for d in req.deviations] == ["http/field/space-before-colon"]
    assert build_http_request(req) == data
    resp = parse_http_response(b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", kind=None,
                               strict=False)
    assert [d.rule for d in resp.deviations] == ["http/field/obs-fold"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                       max_size=3))
def test_mutated_real_messages_lenient_raise_only_parse_error(data, flips):
    mutated = bytearray(data)
    for pos, value in flips:
        if pos < len(mutated):
            mutated[pos] = value
    mutated = bytes(mutated)
    try:
        req = parse_http_request(mutated, strict=False)
    except ParseError:
        pass
    else:
        if not req.deviations:  # the query may be re-spelt; the header lines may not
            built = build_http_request(req)
            assert built.partition(b"\r\n")[2] == mutated[: req.size].partition(b"\r\n")[2]
    try:
        resp = parse_http_response(mutated, kind=None, strict=False)
    except ParseError:
        pass
    else:
        if not resp.deviations:
            assert build_http_response(resp) == mutated[: resp.size]
