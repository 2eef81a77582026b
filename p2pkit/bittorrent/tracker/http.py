"""HTTP tracker protocol: the HTTP messages and their bencoded bodies (BEP 3, 23, 7, 48).

The query strings of announce and scrape requests (percent-encoding, parameters) are
:mod:`p2pkit.bittorrent.tracker.query`; this module frames them in HTTP requests and reads the
responses. HTTP heads (request and status lines, header fields, limits) are read and written by
the one HTTP/1 head codec, :mod:`p2pkit.http1` (RFC 9112); ``strict=False`` reports its
departures from RFC 9112 as Deviations instead of failing (dissection).

Responses are bencoded dictionaries (:mod:`p2pkit.bencode`); :data:`AnnounceResponse` and
:data:`ScrapeResponse` turn them into Containers whose compact peer strings are parsed with the
:mod:`p2pkit.bittorrent.tracker.compact` schemas. Keys the BEPs do not name are kept in ``extra``.
An answer recorded from opentracker
(``tests/data/captures/tracker-01-opentracker-libtorrent-aria2.pcap``):

>>> resp = AnnounceResponse.parse(b"d8:completei2e10:downloadedi1e10:incompletei1e8:intervali1941e"
...     b"12:min intervali970e5:peers12:\\x7f\\x00\\x00\\x04\\x1a\\xe3\\x7f\\x00\\x00\\x02\\x1a\\xe1e")
>>> resp.interval, resp.complete, [(str(p.ip), p.port) for p in resp.peers], resp.extra
(1941, 2, [('127.0.0.4', 6883), ('127.0.0.2', 6881)], {b'downloaded': 1})
"""

from __future__ import annotations

import zlib
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
from p2pkit.bittorrent.tracker.query import (
    AnnounceRequest,
    ScrapeRequest,
    build_announce_query,
    build_scrape_query,
    parse_announce_query,
    parse_scrape_query,
)
from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.http1 import HeaderField
from p2pkit.schema import Schema

__all__ = [
    "MAX_BODY_SIZE",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "PROTOCOL",
    "AnnounceResponse",
    "AnnounceResponseLenient",
    "HttpHeader",
    "ScrapeResponse",
    "ScrapeResponseLenient",
    "TrackerHttpRequest",
    "TrackerHttpResponse",
    "build_http_request",
    "build_http_response",
    "encode_body",
    "parse_http_request",
    "parse_http_response",
    "request_kind",
]

PROTOCOL = "bt-tracker-http"
#: Longest HTTP head (start line and headers) accepted, in bytes.
MAX_HEAD_SIZE = 32768
#: Most header lines accepted.
MAX_HEADERS = 100
#: Largest response body accepted (after gzip/deflate decoding too), in bytes.
MAX_BODY_SIZE = 4 * 1024 * 1024

def _fail(reason: str, offset: int | None = None, path: str = "") -> ParseError:
    return ParseError(reason, protocol=PROTOCOL, path=path, offset=offset)


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
