"""HTTP tracker query strings: percent-encoding, announce and scrape requests (BEP 3, 7, 23, 48).

BEP 3 §trackers: "Tracker GET requests have the following keys: info_hash [...] This value will
almost certainly have to be escaped. peer_id [...] ip [...] port [...] uploaded [...]
downloaded [...] left [...] event". BEP 23 adds ``compact``, BEP 7 asks for a ``key``;
``numwant``, ``no_peer_id`` and ``trackerid`` are the de-facto extensions every tracker
understands. BEP 48: "There is only one key, the info_hash key [...] This key can be appended
multiple times".

Binary values are percent-encoded. Clients differ in how: libtorrent writes lowercase hex and
leaves ``( ) ! * '`` literal, aria2 writes uppercase hex and escapes every byte outside RFC 3986's
unreserved set. The parsers accept any spelling and record it in a :class:`PercentStyle`, so
that building a parsed request gives back the bytes that were sent; the parameter order and
unknown parameters (libtorrent's ``corrupt``, ``redundant``; aria2's ``supportcrypto``) are kept
the same way. ``+`` is taken literally (RFC 3986), not as a space.

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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.errors import BuildError, LimitExceeded, ParseError

__all__ = [
    "EVENTS",
    "MAX_PARAMETERS",
    "MAX_QUERY_SIZE",
    "AnnounceRequest",
    "PercentStyle",
    "Query",
    "QueryParameter",
    "ScrapeRequest",
    "build_announce_query",
    "build_query",
    "build_scrape_query",
    "parse_announce_query",
    "parse_query",
    "parse_scrape_query",
    "percent_decode",
    "percent_encode",
]

PROTOCOL = "bt-tracker-http"
#: Longest query string accepted, in bytes (an announce is ~300; 74 scraped hashes ~4500).
MAX_QUERY_SIZE = 16384
#: Most query parameters accepted.
MAX_PARAMETERS = 256

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
