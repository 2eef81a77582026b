"""HTTP tracker protocol: announce and scrape queries and responses (BEP 3, 23, 7, 48).

BEP 3 §trackers: "Tracker GET requests have the following keys: info_hash [...] This value will
almost certainly have to be escaped. peer_id [...] ip [...] port [...] uploaded [...]
downloaded [...] left [...] event". BEP 23 adds ``compact``, BEP 7 ``peers6`` and asks for a
``key``; ``numwant``, ``no_peer_id`` and ``trackerid`` are the de-facto extensions every tracker
understands. BEP 48 defines scrape: "There is only one key, the info_hash key [...] This key can
be appended multiple times".

Binary values are percent-encoded. Clients differ in how: libtorrent writes lowercase hex and
leaves ``( ) ! * '`` literal, aria2 writes uppercase hex and escapes every byte outside RFC 3986's
unreserved set. The parsers accept any spelling and record it in a :class:`PercentStyle`, so
that building a parsed request gives back the bytes that were sent; the parameter order and
unknown parameters (libtorrent's ``corrupt``, ``redundant``; aria2's ``supportcrypto``) are kept
the same way. ``+`` is taken literally (RFC 3986), not as a space.

HTTP heads (request and status lines, header fields, limits) are read and written by the one
HTTP/1 head codec, :mod:`p2pkit.http1` (RFC 9112); ``strict=False`` reports its departures
from RFC 9112 as Deviations instead of failing (dissection).

Responses are bencoded dictionaries (:mod:`p2pkit.bencode`); :data:`AnnounceResponse` and
:data:`ScrapeResponse` turn them into Containers whose compact peer strings are parsed with the
:mod:`p2pkit.bittorrent.tracker.compact` schemas. Keys the BEPs do not name are kept in ``extra``.

An announce recorded from aria2 1.36.0 to opentracker
(``tests/data/captures/tracker-01-opentracker-libtorrent-aria2.pcap``):

>>> query = ("info_hash=%91%95o%89y%17X%8B%D1%A6%DD%04%86U%94w%EA%CA%94s"
...     "&peer_id=A2-1-36-0-%A0%F3%87b%C2%D0%8A%94%F8%93&uploaded=0&downloaded=0&left=49152"
...     "&compact=1&key=%87b%C2%D0%8A%94%F8%93&numwant=50&no_peer_id=1&port=6883&event=started"
...     "&supportcrypto=1")
>>> req = parse_announce_query(query)
>>> req.info_hash.hex(), req.port, req.left, req.event, req.numwant
('91956f897917588bd1a6dd0486559477eaca9473', 6883, 49152, 'started', 50)
>>> req.extra
(QueryParameter(name='supportcrypto', value=b'1'),)
>>> build_announce_query(req) == query
True
>>> resp = AnnounceResponse.parse(b"d8:completei2e10:downloadedi1e10:incompletei1e8:intervali1941e"
...     b"12:min intervali970e5:peers12:\\x7f\\x00\\x00\\x04\\x1a\\xe3\\x7f\\x00\\x00\\x02\\x1a\\xe1e")
>>> resp.interval, resp.complete, [(str(p.ip), p.port) for p in resp.peers], resp.extra
(1941, 2, [('127.0.0.4', 6883), ('127.0.0.2', 6881)], {b'downloaded': 1})
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from construct import Container

from p2pkit import http1
from p2pkit.addresses import CompactPeer, CompactPeer6
from p2pkit.bencode import (
    ENCODE_ERRORS,
    AnyValue,
    BencodedDict,
    Context,
    Field,
    Integer,
    ListOf,
    MapOf,
    Mismatch,
    Records,
    Rules,
    String,
    Text,
)
from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.http1 import HeaderField
from p2pkit.schema import Schema

__all__ = [
    "EVENTS",
    "MAX_BODY_SIZE",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "MAX_PARAMETERS",
    "MAX_QUERY_SIZE",
    "PROTOCOL",
    "AnnounceRequest",
    "AnnounceResponse",
    "AnnounceResponseLenient",
    "HttpHeader",
    "PercentStyle",
    "Query",
    "QueryParameter",
    "ScrapeRequest",
    "ScrapeResponse",
    "ScrapeResponseLenient",
    "TrackerHttpRequest",
    "TrackerHttpResponse",
    "build_announce_query",
    "build_http_request",
    "build_http_response",
    "build_query",
    "build_scrape_query",
    "encode_body",
    "parse_announce_query",
    "parse_http_request",
    "parse_http_response",
    "parse_query",
    "parse_scrape_query",
    "percent_decode",
    "percent_encode",
    "request_kind",
]

PROTOCOL = "bt-tracker-http"
#: Longest query string accepted, in bytes (an announce is ~300; 74 scraped hashes ~4500).
MAX_QUERY_SIZE = 16384
#: Most query parameters accepted.
MAX_PARAMETERS = 256
#: Longest HTTP head (start line and headers) accepted, in bytes.
MAX_HEAD_SIZE = 32768
#: Most header lines accepted.
MAX_HEADERS = 100
#: Largest response body accepted (after gzip/deflate decoding too), in bytes.
MAX_BODY_SIZE = 4 * 1024 * 1024

#: BEP 3: "event [...] maps to started, completed, or stopped (or empty, which is the same as
#: not being present)". Real clients spell the latter both ``empty`` and as an empty value.
EVENTS = ("started", "completed", "stopped", "empty", "")

#: RFC 3986 §2.3 unreserved characters: never escaped by a conforming encoder.
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = b"0123456789ABCDEFabcdef"
# Bytes that can never be left literal in a query value.
_NEVER_LITERAL = frozenset(b"%&# \r\n\x7f") | frozenset(range(0x20))


def _fail(reason: str, offset: int | None = None, path: str = "") -> ParseError:
    return ParseError(reason, protocol=PROTOCOL, path=path, offset=offset)


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, str):
        try:
            return text.encode("ascii")
        except UnicodeEncodeError as e:
            raise _fail("non-ASCII character in a query string", e.start) from None
    if isinstance(text, (bytearray, memoryview)):
        return bytes(text)
    if not isinstance(text, bytes):
        raise _fail(f"expected str or bytes, got {type(text).__name__}")
    return text


# --------------------------------------------------------------------------- percent-encoding


@dataclass(frozen=True, kw_only=True)
class PercentStyle:
    """How a client spells percent-escapes: hex case and the reserved bytes it leaves literal.

    >>> percent_encode(b"\\xab(x)", PercentStyle(uppercase=False, literal=frozenset(b"()")))
    '%ab(x)'
    """

    uppercase: bool = True
    #: Bytes outside RFC 3986's unreserved set that this client does not escape.
    literal: frozenset[int] = frozenset()


def percent_encode(data: bytes, style: PercentStyle = PercentStyle()) -> str:
    """Escape every byte outside the unreserved set (and ``style.literal``) as ``%XX``.

    >>> percent_encode(bytes.fromhex("91956f8979"))
    '%91%95o%89y'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BuildError(f"expected bytes, got {type(data).__name__}", protocol=PROTOCOL)
    hexfmt = "%{:02X}" if style.uppercase else "%{:02x}"
    keep = UNRESERVED | (style.literal - _NEVER_LITERAL)
    return "".join(chr(b) if b in keep else hexfmt.format(b) for b in bytes(data))


def percent_decode(text: str | bytes, *, offset: int = 0, path: str = "") -> bytes:
    """Undo ``%XX`` escapes (either hex case); a malformed escape raises ParseError.

    >>> percent_decode("%91%95o%89y"), percent_decode(b"%ab%AB")
    (b'\\x91\\x95o\\x89y', b'\\xab\\xab')
    """
    raw = _as_bytes(text)
    if b"%" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            pair = raw[i + 1 : i + 3]
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise _fail(f"malformed percent-escape {raw[i:i + 3]!r}", offset + i, path)
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _observe(raw: bytes, hex_cases: set[str], literal: set[int]) -> None:
    """Note the hex case and literal reserved bytes a client used in one raw value."""
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:
            pair = raw[i + 1 : i + 3]
            if any(0x61 <= x <= 0x66 for x in pair):
                hex_cases.add("lower")
            if any(0x41 <= x <= 0x46 for x in pair):
                hex_cases.add("upper")
            i += 3
            continue
        if c not in UNRESERVED:
            literal.add(c)
        i += 1


# --------------------------------------------------------------------------- query strings


@dataclass(frozen=True, kw_only=True)
class QueryParameter:
    """One ``name=value`` pair of a query string, percent-decoded."""

    name: str
    value: bytes


@dataclass(frozen=True, kw_only=True)
class Query:
    """A parsed query string: the decoded parameters in wire order and the client's style."""

    parameters: tuple[QueryParameter, ...]
    style: PercentStyle = PercentStyle()


def parse_query(query: str | bytes, *, offset: int = 0) -> Query:
    """Split a query string into decoded parameters, noting how the client escaped them.

    ``offset`` is where the query starts in a larger input, for error offsets. Empty segments
    (``a=1&&b=2``) are skipped; a segment without ``=`` has an empty value.

    >>> q = parse_query("info_hash=%ab%ab&port=6881")
    >>> [(p.name, p.value) for p in q.parameters], q.style.uppercase
    ([('info_hash', b'\\xab\\xab'), ('port', b'6881')], False)
    """
    raw = _as_bytes(query)
    if len(raw) > MAX_QUERY_SIZE:
        raise LimitExceeded(f"query string longer than {MAX_QUERY_SIZE} bytes", protocol=PROTOCOL,
                            offset=offset)
    if raw.count(b"&") >= MAX_PARAMETERS:
        raise LimitExceeded(f"more than {MAX_PARAMETERS} query parameters", protocol=PROTOCOL,
                            offset=offset)
    params = []
    hex_cases: set[str] = set()
    literal: set[int] = set()
    pos = 0
    for segment in raw.split(b"&"):
        start = offset + pos
        pos += len(segment) + 1
        if not segment:
            continue
        bad = next((i for i, c in enumerate(segment) if c in b"# \r\n" or c < 0x20), None)
        if bad is not None:
            raise _fail(f"byte {segment[bad:bad + 1]!r} is not allowed in a query", start + bad)
        name_raw, eq, value_raw = segment.partition(b"=")
        name = percent_decode(name_raw, offset=start).decode("latin-1")
        value = percent_decode(value_raw, offset=start + len(name_raw) + len(eq), path=name)
        _observe(name_raw, hex_cases, literal)
        _observe(value_raw, hex_cases, literal)
        params.append(QueryParameter(name=name, value=value))
    style = PercentStyle(uppercase=hex_cases != {"lower"}, literal=frozenset(literal))
    return Query(parameters=tuple(params), style=style)


def build_query(parameters: Iterable[QueryParameter], style: PercentStyle = PercentStyle()) -> str:
    """Join parameters into a query string, escaping names and values in ``style``.

    >>> build_query([QueryParameter(name="info_hash", value=b"\\xab!"),
    ...              QueryParameter(name="port", value=b"1")])
    'info_hash=%AB%21&port=1'
    """
    try:
        return "&".join(
            f"{percent_encode(p.name.encode('latin-1'), style)}={percent_encode(p.value, style)}"
            for p in parameters
        )
    except (AttributeError, TypeError, ValueError) as e:  # UnicodeEncodeError is a ValueError
        raise BuildError(f"cannot encode query parameter: {e}", protocol=PROTOCOL) from None


# --------------------------------------------------------------------------- announce / scrape


@dataclass(kw_only=True)
class AnnounceRequest:
    """An announce (BEP 3 §trackers): what a peer tells the tracker about itself.

    ``None`` means the parameter was not sent. ``extra`` keeps parameters the BEPs do not name;
    ``order`` and ``style`` record how the client wrote the query (they are ignored by ``==``).
    """

    #: "The 20 byte sha1 hash of the bencoded form of the info value".
    info_hash: bytes
    #: "A string of length 20 which this downloader uses as its id."
    peer_id: bytes
    #: "The port number this peer is listening on."
    port: int
    #: "The total amount uploaded so far, encoded in base ten ascii."
    uploaded: int | None = None
    #: "The total amount downloaded so far, encoded in base ten ascii."
    downloaded: int | None = None
    #: "The number of bytes this peer still has to download, encoded in base ten ascii."
    left: int | None = None
    #: BEP 23: "compact=0 [...] prefers the original format [...] compact=1 [...] compact format".
    compact: int | None = None
    #: Ask the tracker to leave ``peer id`` out of dictionary-model peers.
    no_peer_id: int | None = None
    #: One of :data:`EVENTS`.
    event: str | None = None
    #: "An optional parameter giving the IP (or dns name) which this peer is at."
    ip: str | None = None
    #: How many peers the client would like.
    numwant: int | None = None
    #: BEP 7: "The client SHOULD include a key parameter in its announces." Opaque bytes.
    key: bytes | None = None
    #: The ``tracker id`` a previous response asked to be sent back.
    trackerid: bytes | None = None
    extra: tuple[QueryParameter, ...] = ()
    order: tuple[str, ...] = field(default=(), compare=False)
    style: PercentStyle = field(default=PercentStyle(), compare=False)


@dataclass(kw_only=True)
class ScrapeRequest:
    """A scrape (BEP 48): "the info_hash key [...] can be appended multiple times"."""

    info_hashes: tuple[bytes, ...] = ()
    extra: tuple[QueryParameter, ...] = ()
    order: tuple[str, ...] = field(default=(), compare=False)
    style: PercentStyle = field(default=PercentStyle(), compare=False)


_INTEGER_PARAMS = ("port", "uploaded", "downloaded", "left", "compact", "no_peer_id", "numwant")
_BYTES_PARAMS = ("info_hash", "peer_id", "key", "trackerid")
_ANNOUNCE_ORDER = ("info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "compact",
                   "no_peer_id", "event", "ip", "numwant", "key", "trackerid")


def _integer(value: bytes, name: str) -> int:
    # BEP 3: "encoded in base ten ascii"
    if not value.isdigit() or len(value) > 20:
        raise _fail(f"{name}={value[:24]!r} is not a base ten number", path=name)
    return int(value)


def parse_announce_query(query: str | bytes, *, offset: int = 0) -> AnnounceRequest:
    """Decode an announce query string (the part after ``?``) strictly.

    info_hash and peer_id must be 20 bytes, port and the counters base ten numbers, event one
    of :data:`EVENTS`; each known parameter at most once.

    >>> r = parse_announce_query("info_hash=%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab"
    ...                          "%ab%ab%ab&peer_id=-LT2080-HE6WK6KTFNrY&port=6882&left=16384")
    >>> r.peer_id, r.port, r.left, r.event
    (b'-LT2080-HE6WK6KTFNrY', 6882, 16384, None)
    """
    parsed = parse_query(query, offset=offset)
    values: dict[str, Any] = {}
    extra = []
    for p in parsed.parameters:
        if p.name in _INTEGER_PARAMS:
            value: Any = _integer(p.value, p.name)
        elif p.name in _BYTES_PARAMS:
            value = p.value
        elif p.name in ("event", "ip"):
            value = p.value.decode("utf-8", "surrogateescape")
        else:
            extra.append(p)
            continue
        if p.name in values:
            raise _fail(f"parameter {p.name} given twice", path=p.name)
        values[p.name] = value
    for name in ("info_hash", "peer_id", "port"):
        if name not in values:
            raise _fail(f"missing parameter {name}", path=name)
    for name in ("info_hash", "peer_id"):
        if len(values[name]) != 20:
            raise _fail(f"{name} is {len(values[name])} bytes, not 20", path=name)
    if values["port"] > 0xFFFF:
        raise _fail(f"port {values['port']} is beyond 65535", path="port")
    if values.get("event") not in (None, *EVENTS):
        raise _fail(f"unknown event {values['event']!r}", path="event")
    return AnnounceRequest(**values, extra=tuple(extra),
                           order=tuple(p.name for p in parsed.parameters), style=parsed.style)


def _ordered(names: tuple[str, ...], present: dict[str, list[bytes]],
             extra: tuple[QueryParameter, ...]) -> list[QueryParameter]:
    """Parameters in the recorded wire order; anything not covered by it goes last."""
    queues = {name: list(values) for name, values in present.items()}
    for p in extra:
        queues.setdefault(p.name, []).append(p.value)
    if not names:
        names = tuple(n for n, values in present.items() for _ in values) + tuple(
            p.name for p in extra)
    out = []
    for name in names:
        if queues.get(name):
            out.append(QueryParameter(name=name, value=queues[name].pop(0)))
    for name, values in queues.items():
        out.extend(QueryParameter(name=name, value=v) for v in values)
    return out


def build_announce_query(request: AnnounceRequest) -> str:
    """Encode an announce query string (without ``?``), in the request's order and style.

    >>> query = build_announce_query(AnnounceRequest(info_hash=b"\\xab" * 20,
    ...     peer_id=b"-XX0000-abcdefghijkl", port=6881, left=0, event="started"))
    >>> query.split("&")[1:]
    ['peer_id=-XX0000-abcdefghijkl', 'port=6881', 'left=0', 'event=started']
    """
    present: dict[str, list[bytes]] = {}
    for name in _ANNOUNCE_ORDER:
        value = getattr(request, name)
        if value is None:
            continue
        if name in _INTEGER_PARAMS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BuildError(f"{name} must be a non-negative int", protocol=PROTOCOL,
                                 path=name)
            value = str(value).encode("ascii")
        elif name in ("event", "ip"):
            if not isinstance(value, str):
                raise BuildError(f"{name} must be a str", protocol=PROTOCOL, path=name)
            value = value.encode("utf-8", "surrogateescape")
        elif not isinstance(value, (bytes, bytearray, memoryview)):
            raise BuildError(f"{name} must be bytes", protocol=PROTOCOL, path=name)
        present[name] = [bytes(value)]
    return build_query(_ordered(request.order, present, request.extra), request.style)


def parse_scrape_query(query: str | bytes, *, offset: int = 0) -> ScrapeRequest:
    """Decode a scrape query string: every ``info_hash`` (20 bytes each), others in ``extra``.

    >>> parse_scrape_query("info_hash=%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab%ab"
    ...                    "%ab%ab&info_hash=aaaaaaaaaaaaaaaaaaaa").info_hashes[1]
    b'aaaaaaaaaaaaaaaaaaaa'
    """
    parsed = parse_query(query, offset=offset)
    hashes = []
    extra = []
    for p in parsed.parameters:
        if p.name == "info_hash":
            if len(p.value) != 20:
                raise _fail(f"info_hash is {len(p.value)} bytes, not 20", path="info_hash")
            hashes.append(p.value)
        else:
            extra.append(p)
    return ScrapeRequest(info_hashes=tuple(hashes), extra=tuple(extra),
                         order=tuple(p.name for p in parsed.parameters), style=parsed.style)


def build_scrape_query(request: ScrapeRequest) -> str:
    """Encode a scrape query string (without ``?``).

    >>> build_scrape_query(ScrapeRequest(info_hashes=(b"a" * 20, b"\\xff" * 20)))[:40]
    'info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash'
    """
    if not all(isinstance(h, (bytes, bytearray, memoryview)) for h in request.info_hashes):
        raise BuildError("info_hashes must be bytes", protocol=PROTOCOL, path="info_hash")
    present = {"info_hash": [bytes(h) for h in request.info_hashes]} if request.info_hashes else {}
    return build_query(_ordered(request.order, present, request.extra), request.style)


# --------------------------------------------------------------------------- HTTP framing


#: One header line (name, value, and the separator kept for byte-exact round trips).
HttpHeader = HeaderField


@dataclass(kw_only=True)
class TrackerHttpRequest:
    """An HTTP request to a tracker: the request line, headers and the decoded query.

    ``message`` is an :class:`AnnounceRequest` or :class:`ScrapeRequest` when ``kind`` says
    which (see :func:`request_kind`), else ``None`` with the raw ``query`` kept.
    """

    method: str
    path: str
    query: str | None
    version: str
    headers: tuple[HttpHeader, ...] = ()
    kind: str | None = None
    message: AnnounceRequest | ScrapeRequest | None = None
    #: Bytes the head took in the input (start line to the blank line included).
    size: int = 0
    #: What a lenient parse (``strict=False``) accepted against RFC 9112.
    deviations: tuple[Deviation, ...] = field(default=(), compare=False)


@dataclass(kw_only=True)
class TrackerHttpResponse:
    """An HTTP response from a tracker; ``message`` is the decoded bencoded body (if any)."""

    version: str
    status: int
    reason: str
    headers: tuple[HttpHeader, ...] = ()
    body: bytes = b""
    message: Container | None = None
    size: int = 0
    #: What a lenient parse (``strict=False``) accepted against RFC 9112.
    deviations: tuple[Deviation, ...] = field(default=(), compare=False)


def request_kind(path: str) -> str | None:
    """``"announce"`` or ``"scrape"`` from the last component of a tracker URL path.

    BEP 48: the scrape URL is found "by locating the string announce in the path section of
    the announce URL and replacing it with the string scrape", so ``/x/announce.php`` pairs
    with ``/x/scrape.php``.

    >>> request_kind("/announce"), request_kind("/pass/scrape.php"), request_kind("/")
    ('announce', 'scrape', None)
    """
    last = path.rsplit("/", 1)[-1]
    if "announce" in last:
        return "announce"
    if "scrape" in last:
        return "scrape"
    return None


def _input(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise _fail(f"expected bytes, got {type(data).__name__}")


def _head(data: bytes, strict: bool) -> http1.Head:
    """The HTTP/1 head at the start of ``data`` (RFC 9112 §2.1), with this module's limits."""
    return http1.parse_head(data, max_size=MAX_HEAD_SIZE, max_headers=MAX_HEADERS,
                            strict=strict, protocol=PROTOCOL)


def parse_http_request(data: bytes, *, strict: bool = True) -> TrackerHttpRequest:
    """Parse an HTTP request head to a tracker (``GET /announce?... HTTP/1.x``).

    Bytes after the head are not read (``size`` says where the head ended). The query is
    decoded when the path names an announce or scrape. ``strict=False`` (dissection) accepts
    header lines RFC 9112 refuses and lists them in ``deviations``.

    >>> req = parse_http_request(b"GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\\r\\n"
    ...                          b"Host: 127.0.0.1:6969\\r\\n\\r\\n")
    >>> req.kind, req.message.info_hashes, req.headers[0].value
    ('scrape', (b'aaaaaaaaaaaaaaaaaaaa',), '127.0.0.1:6969')
    """
    data = _input(data)
    head = _head(data, strict)
    try:
        line = http1.parse_request_line(head.start_line, protocol=PROTOCOL)
    except ParseError:
        line = None
    if line is None or not line.version.startswith("HTTP/") or not line.method.isalpha():
        raise _fail(f"not an HTTP request line: {head.start_line[:60]!r}", 0, "request_line")
    path, question, query = line.target.partition("?")
    query_at = len(line.method) + 1 + len(path) + 1
    kind = request_kind(path)
    message: AnnounceRequest | ScrapeRequest | None = None
    if kind == "announce":
        message = parse_announce_query(query.encode("latin-1"), offset=query_at)
    elif kind == "scrape":
        message = parse_scrape_query(query.encode("latin-1"), offset=query_at)
    return TrackerHttpRequest(
        method=line.method, path=path, query=query if question else None, version=line.version,
        headers=head.headers.fields, kind=kind, message=message, size=head.size,
        deviations=head.deviations)


def build_http_request(request: TrackerHttpRequest) -> bytes:
    """Encode a request head; the query comes from ``message`` when there is one.

    >>> build_http_request(TrackerHttpRequest(method="GET", path="/scrape", query=None,
    ...     version="HTTP/1.0", message=ScrapeRequest(info_hashes=(b"a" * 20,))))
    b'GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\\r\\n\\r\\n'
    """
    query = request.query
    if isinstance(request.message, AnnounceRequest):
        query = build_announce_query(request.message)
    elif isinstance(request.message, ScrapeRequest):
        query = build_scrape_query(request.message)
    target = request.path if query is None else f"{request.path}?{query}"
    return http1.build_head(f"{request.method} {target} {request.version}", request.headers,
                            protocol=PROTOCOL)


def _content_decoded(body: bytes, coding: str | None, offset: int) -> bytes:
    if coding is None or coding.lower() == "identity":
        return body
    if coding.lower() not in ("gzip", "deflate", "x-gzip"):
        raise _fail(f"unsupported Content-Encoding {coding!r}", offset, "body")
    wbits = 47 if coding.lower() != "deflate" else 15
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_BODY_SIZE + 1)
    except zlib.error as e:
        raise _fail(f"bad {coding} body: {e}", offset, "body") from None
    if len(out) > MAX_BODY_SIZE:
        raise LimitExceeded(f"decoded body larger than {MAX_BODY_SIZE} bytes", protocol=PROTOCOL,
                            path="body", offset=offset)
    return out


def parse_http_response(data: bytes, *, kind: str | None = "announce",
                        strict: bool = True) -> TrackerHttpResponse:
    """Parse a tracker's HTTP response; decode the body as an announce or scrape response.

    The body ends at ``Content-Length`` or, without it, at the end of ``data`` (the tracker
    closes the connection). gzip/deflate bodies are decoded for ``message`` and kept as sent
    in ``body``. Chunked transfer coding is not supported. ``strict=False`` accepts
    non-canonical bencoding and header lines RFC 9112 refuses (listed in ``deviations``), for
    dissection.

    >>> resp = parse_http_response(b"HTTP/1.1 200 OK\\r\\nContent-Length: 85\\r\\n\\r\\n"
    ...     b"d14:failure reason63:Requested download is not authorized for use with this "
    ...     b"tracker.e")
    >>> resp.status, resp.message.failure_reason
    (200, 'Requested download is not authorized for use with this tracker.')
    """
    data = _input(data)
    head = _head(data, strict)
    size = head.size
    try:
        status_line = http1.parse_status_line(head.start_line, protocol=PROTOCOL)
    except ParseError:
        raise _fail(f"not an HTTP status line: {head.start_line[:60]!r}", 0,
                    "status_line") from None
    headers = head.headers
    if (headers.get("transfer-encoding") or "identity").lower() != "identity":
        raise _fail("chunked transfer coding is not supported", 0, "headers")
    length = headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()) or len(length) > 12:
            raise _fail(f"bad Content-Length {length!r}", 0, "headers")
        if int(length) > MAX_BODY_SIZE:
            raise LimitExceeded(f"body larger than {MAX_BODY_SIZE} bytes", protocol=PROTOCOL,
                                path="body", offset=size)
        if size + int(length) > len(data):
            raise _fail(f"truncated: body of {int(length)} bytes, {len(data) - size} present",
                        len(data), "body")
        body = data[size : size + int(length)]
    else:
        body = data[size : size + MAX_BODY_SIZE + 1]
        if len(body) > MAX_BODY_SIZE:
            raise LimitExceeded(f"body larger than {MAX_BODY_SIZE} bytes", protocol=PROTOCOL,
                                path="body", offset=size)
    message = None
    schemas = {"announce": (AnnounceResponse, AnnounceResponseLenient),
               "scrape": (ScrapeResponse, ScrapeResponseLenient)}
    if kind in schemas and body:
        decoded = _content_decoded(body, headers.get("content-encoding"), size)
        try:
            message = schemas[kind][0 if strict else 1].parse(decoded)
        except ParseError as e:
            if headers.get("content-encoding") is None:
                raise e.relocated(base=size, path_prefix="body") from None
            raise e.relocated(path_prefix="body") from None
    return TrackerHttpResponse(
        version=status_line.version, status=status_line.status, reason=status_line.reason,
        headers=headers.fields, body=body, message=message, size=size + len(body),
        deviations=head.deviations)


def build_http_response(response: TrackerHttpResponse) -> bytes:
    """Encode a response: the head, then ``body`` (which :func:`encode_body` can produce).

    >>> build_http_response(TrackerHttpResponse(version="HTTP/1.0", status=200, reason="OK",
    ...                                         body=b"de"))
    b'HTTP/1.0 200 OK\\r\\n\\r\\nde'
    """
    head = http1.build_head(f"{response.version} {response.status:03d} {response.reason}",
                            response.headers, protocol=PROTOCOL)
    return head + bytes(response.body)


# --------------------------------------------------------------------------- bencoded bodies


#: How departures of a response body from BEP 3/23/48 are reported.
RULES = Rules(spec="BEP 3 §trackers", malformed="tracker/http/wrong-type",
              missing="tracker/http/missing-key")
_TEXT = Text("surrogateescape")
_INTEGER = Integer()
_BYTES = String()
#: BEP 23: "a string consisting of multiples of 6 bytes"; BEP 7: 18 bytes per IPv6 peer.
_COMPACT = Records(CompactPeer, "compact peers")
_COMPACT6 = Records(CompactPeer6, "compact peers")

# fmt: off
#: BEP 3: "each of which contains the keys peer id, ip, and port".
PeerEntry = BencodedDict([
    Field("peer id", _BYTES, name="peer_id", default=None),  # "the peer's self-selected ID"
    Field("ip", _TEXT, default=None),        # "IP address or dns name as a string"
    Field("port", _INTEGER, default=None),   # "port number"
], unknown="extra", keep_empty_extra=True, rules=RULES, protocol=PROTOCOL, name="peer")
_PEER_LIST = ListOf(PeerEntry)


class _AnnounceBody(BencodedDict):
    """An announce response; ``peers`` is BEP 3's list of dictionaries or BEP 23's compact
    string, and ``peers_compact`` says which (:meth:`check` reads it, :meth:`encode` keeps it)."""

    def check(self, value: Container, cx: Context, path: tuple) -> Container:
        peers = value.pop("peers", None)
        value.peers_compact = None
        value.peers = None
        if peers is not None:
            kind = {bytes: _COMPACT, list: _PEER_LIST}.get(type(peers))
            if kind is None:
                cx.report(RULES.malformed, "peers must be a string or a list",
                          (*path, b"peers"), RULES.spec)
            else:
                value.peers_compact = kind is _COMPACT
                try:
                    value.peers = kind.decode(peers, cx, (*path, b"peers"))
                except Mismatch as e:
                    cx.report(RULES.malformed, f"peers {e}", (*path, b"peers", *e.steps),
                              "BEP 23 §compact" if kind is _COMPACT else RULES.spec)
                    value.peers = peers
        value.setdefault("peers6", None)
        # BEP 3: "If a tracker response has a key failure reason [...] no other keys are
        # required. Otherwise, it must have two keys: interval [...] and peers."
        if value.failure_reason is None and value.interval is None:
            cx.report(RULES.missing, "no failure reason and no interval",
                      (*path, b"interval"), RULES.spec)
        return value

    def encode(self, value: Any, path: str = "", skip: tuple[str, ...] = ()) -> dict:
        out = super().encode(value, path, skip=("peers", "peers_compact"))
        peers = value.get("peers")
        if peers is not None:
            compact = value.get("peers_compact")
            if compact is None:
                compact = not any("peer_id" in p for p in peers)
            try:
                out[b"peers"] = (_COMPACT if compact else _PEER_LIST).encode(peers)
            except ENCODE_ERRORS as e:
                raise BuildError(f"peers: {e}", protocol=PROTOCOL, path="peers") from None
        return out


#: BEP 3 §trackers announce response, BEP 7 ``peers6``, BEP 23 compact peers.
AnnounceBody = _AnnounceBody([
    Field("failure reason", _TEXT, name="failure_reason", default=None),  # BEP 3: "a human
                                            # readable string which explains why the query failed"
    Field("warning message", _TEXT, name="warning_message", default=None),  # de-facto
    Field("interval", _INTEGER, default=None),  # BEP 3: "the number of seconds the downloader
                                                # should wait between regular rerequests"
    Field("min interval", _INTEGER, name="min_interval", default=None),  # de-facto
    Field("tracker id", _BYTES, name="tracker_id", default=None),        # de-facto
    Field("complete", _INTEGER, default=None),      # de-facto: seeders
    Field("incomplete", _INTEGER, default=None),    # de-facto: leechers
    Field("peers", AnyValue()),                     # BEP 3 list of dictionaries, BEP 23 string
    Field("peers6", _COMPACT6),                     # BEP 7: "compact IPv6 peers"
], unknown="extra", keep_empty_extra=True, rules=RULES, protocol=PROTOCOL, whole=True,
    name="AnnounceResponse")

#: BEP 48: "a dictionary of swarm metadata" per info-hash.
ScrapeFile = BencodedDict([
    Field("complete", _INTEGER, default=None),    # "number of active peers that have completed"
    Field("downloaded", _INTEGER, default=None),  # "number of peers that have ever completed"
    Field("incomplete", _INTEGER, default=None),  # "number of active peers that have not
                                                  # completed downloading"
    Field("name", _TEXT, default=None),           # de-facto: the torrent's name
], unknown="extra", keep_empty_extra=True, rules=RULES, protocol=PROTOCOL, name="file")
#: de-facto ``flags`` of a scrape response.
ScrapeFlags = BencodedDict([
    Field("min_request_interval", _INTEGER, default=None),  # seconds between scrapes
], unknown="extra", keep_empty_extra=True, rules=RULES, protocol=PROTOCOL, name="flags")


def _scrape_check(value: Container, cx: Context, path: tuple) -> None:
    if value.files is None and value.failure_reason is None:
        cx.report(RULES.missing, "no failure reason and no files", (*path, b"files"),
                  "BEP 48 §scrape")


#: BEP 48 scrape response: "the key files with the value being a dictionary of the 20-byte
#: string representation of an infohash paired with a dictionary of swarm metadata".
ScrapeBody = BencodedDict([
    Field("failure reason", _TEXT, name="failure_reason", default=None),
    Field("files", MapOf(ScrapeFile), default=None),   # info-hash -> swarm metadata
    Field("flags", ScrapeFlags, default=None),         # de-facto: min_request_interval
], unknown="extra", keep_empty_extra=True, rules=RULES, protocol=PROTOCOL, whole=True,
    check=_scrape_check, name="ScrapeResponse")

#: A bencoded announce response body, strict canonical bencoding.
AnnounceResponse = Schema(AnnounceBody, protocol=PROTOCOL, name="AnnounceResponse")
#: The same, accepting non-canonical bencoding (dissection).
AnnounceResponseLenient = Schema(AnnounceBody.lenient(), protocol=PROTOCOL,
                                 name="AnnounceResponseLenient")
#: A bencoded scrape response body (BEP 48), strict.
ScrapeResponse = Schema(ScrapeBody, protocol=PROTOCOL, name="ScrapeResponse")
#: The same, accepting non-canonical bencoding.
ScrapeResponseLenient = Schema(ScrapeBody.lenient(), protocol=PROTOCOL,
                               name="ScrapeResponseLenient")
# fmt: on


def encode_body(message: Container, *, kind: str = "announce") -> bytes:
    """Bencode an announce or scrape response Container (canonical key order).

    >>> encode_body(Container(interval=1800, peers=[Container(ip="127.0.0.2", port=6881)]))
    b'd8:intervali1800e5:peers6:\\x7f\\x00\\x00\\x02\\x1a\\xe1e'
    """
    schema = {"announce": AnnounceResponse, "scrape": ScrapeResponse}.get(kind)
    if schema is None:
        raise BuildError(f"unknown response kind {kind!r}", protocol=PROTOCOL)
    return schema.build(message)
