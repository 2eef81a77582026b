"""One HTTP/1 head codec: start line, ordered multi-map headers, limits (RFC 9112 §2-§5).

Used by everything in p2pkit that speaks or reads an HTTP/1-shaped head: the HTTP tracker
(BEP 3 §trackers, BEP 48), the Gnutella 0.6 handshake (handshaking_0.6 §3: "GNUTELLA
CONNECT/0.6" and "GNUTELLA/0.6 200 OK" heads with HTTP-style headers), Gnutella's HTTP
downloads (HUGE §4, with ``Range``) and the dissector.

RFC 9112 §2.1: ``HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]``.
RFC 9112 §5: ``field-line = field-name ":" OWS field-value OWS``; "No whitespace is allowed
between the field name and colon." RFC 9110 §5.3: a recipient may combine field lines of the
same name in order, so :class:`Headers` keeps every line, in order, and looks names up without
regard to case (RFC 9110 §5.1: "Field names are case-insensitive").

Limits are checked before anything is kept: :data:`MAX_HEAD_SIZE` bytes and
:data:`MAX_HEADERS` lines by default, overridable per protocol (the Gnutella handshake allows
less).

Strict parsing (inside a tracker, a client, a servent) refuses what RFC 9112 says to refuse;
``strict=False`` (the dissector) accepts it and reports each departure as a
:class:`~p2pkit.deviations.Deviation` in :attr:`Head.deviations`:

>>> head = parse_head(b"HTTP/1.1 200 OK\\r\\nServer : x\\r\\nno colon\\r\\n\\r\\n", strict=False)
>>> head.headers["server"], [d.rule for d in head.deviations]
('x', ['http/field/space-before-colon', 'http/field/malformed'])

>>> head = parse_head(b"GET /announce?x=1 HTTP/1.1\\r\\nHost: a\\r\\nX-Try: 1\\r\\nx-try: 2\\r\\n\\r\\nbody")
>>> head.start_line, head.headers["host"], head.headers.get_all("X-TRY"), head.size
('GET /announce?x=1 HTTP/1.1', 'a', ['1', '2'], 59)
>>> parse_request_line(head.start_line)
RequestLine(method='GET', target='/announce?x=1', version='HTTP/1.1')
>>> parse_status_line("GNUTELLA/0.6 503 Full", protocols=("GNUTELLA",))
StatusLine(version='GNUTELLA/0.6', status=503, reason='Full')
>>> build_head("HTTP/1.1 200 OK", head.headers) == (b"HTTP/1.1 200 OK\\r\\nHost: a\\r\\n"
...                                                  b"X-Try: 1\\r\\nx-try: 2\\r\\n\\r\\n")
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, LimitExceeded, ParseError

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "ByteRange",
    "Head",
    "HeaderField",
    "Headers",
    "RequestLine",
    "StatusLine",
    "build_head",
    "head_end",
    "parse_head",
    "parse_range",
    "parse_request_line",
    "parse_status_line",
]

PROTOCOL = "http"
#: Default bound on a head (start line, field lines and the blank line).
MAX_HEAD_SIZE = 32 * 1024
#: Default bound on the number of field lines.
MAX_HEADERS = 100

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 9110 §5.6.2 token
_INVALID = re.compile(r"[\r\n\0]")


@dataclass(frozen=True)
class HeaderField:
    """One field line. ``separator`` is what the sender put between name and value (``": "``
    by default), ``trailing`` the whitespace it put after the value (RFC 9112 §5: "OWS" that
    is not part of the value); both are kept so that a parsed head builds back to the same
    bytes, and neither takes part in ``==``."""

    name: str
    value: str
    separator: str = field(default=": ", compare=False)
    trailing: str = field(default="", compare=False)


class Headers:
    """An ordered multi-map of field lines: names keep their case, lines their order, lookup
    ignores case.

    >>> h = Headers([("X-Ultrapeer", "True"), ("X-Try", "a"), ("x-try", "b")])
    >>> h["x-ultrapeer"], h.get_all("X-TRY"), "Accept-Encoding" in h
    ('True', ['a', 'b'], False)
    >>> list(h)[0], h.fields[1].name
    (('X-Ultrapeer', 'True'), 'X-Try')
    """

    __slots__ = ("fields",)

    def __init__(self, items: Iterable[tuple[str, str] | HeaderField] = ()) -> None:
        self.fields: tuple[HeaderField, ...] = tuple(
            item if isinstance(item, HeaderField) else HeaderField(str(item[0]), str(item[1]))
            for item in items)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (any case), or ``default``."""
        lowered = name.lower()
        for f in self.fields:
            if f.name.lower() == lowered:
                return f.value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order."""
        lowered = name.lower()
        return [f.value for f in self.fields if f.name.lower() == lowered]

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every ``name`` line (``Accept-Encoding: deflate, x``)."""
        return [t.strip() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((f.name, f.value) for f in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return list(self) == list(other)
        if isinstance(other, list):
            return list(self) == [tuple(x) for x in other]
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


@dataclass(frozen=True)
class Head:
    """A parsed head: the start line as text, the field lines, and the bytes it took."""

    start_line: str
    headers: Headers
    #: Bytes from the first byte of the start line to the end of the blank line.
    size: int
    #: What a lenient parse (``strict=False``) accepted against RFC 9112, with offsets.
    deviations: tuple[Deviation, ...] = ()


@dataclass(frozen=True)
class RequestLine:
    """RFC 9112 §3: "request-line = method SP request-target SP HTTP-version"."""

    method: str
    target: str
    version: str


@dataclass(frozen=True)
class StatusLine:
    """RFC 9112 §4: "status-line = HTTP-version SP status-code SP [ reason-phrase ]"."""

    version: str
    status: int
    reason: str


def _fail(reason: str, offset: int | None, protocol: str, path: str = "") -> ParseError:
    return ParseError(reason, protocol=protocol, path=path, offset=offset)


def head_end(data: bytes | bytearray, start: int = 0, *, max_size: int = MAX_HEAD_SIZE,
             protocol: str = PROTOCOL) -> int | None:
    """The offset just past the head that starts at ``start``, or ``None`` while incomplete.

    Raises :class:`LimitExceeded` once ``max_size`` bytes hold no blank line.

    >>> head_end(b"HTTP/1.1 200 OK\\r\\n\\r\\nbody"), head_end(b"HTTP/1.1 200 OK\\r\\n")
    (19, None)
    """
    end = data.find(b"\r\n\r\n", start, start + max_size)
    if end >= 0:
        return end + 4
    if len(data) - start >= max_size:
        raise LimitExceeded(f"head longer than {max_size} bytes", protocol=protocol, offset=start)
    return None


def parse_head(data: bytes | bytearray, *, max_size: int = MAX_HEAD_SIZE,
               max_headers: int = MAX_HEADERS, folding: bool = False, strict: bool = True,
               protocol: str = PROTOCOL) -> Head:
    """Parse the head at the start of ``data`` (bytes after it are not read).

    ``folding`` accepts obsolete line folding (RFC 9112 §5.2: a line starting with a space or
    tab continues the previous field; kept joined by CRLF), which Gnutella servents still
    send; plain HTTP refuses it. Raises :class:`ParseError` (protocol, field path, offset),
    :class:`LimitExceeded` beyond the limits, and a ``truncated`` ParseError when no blank line
    ends the head yet. ``strict=False`` accepts whitespace before a colon, unasked-for folding
    and lines that are no field line (skipped), reporting each in :attr:`Head.deviations`;
    limits and a missing blank line still raise.

    >>> parse_head(b"GET / HTTP/1.1\\r\\nHost : a\\r\\n\\r\\n")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: http, field headers, offset 16: header line 'Host : a' is not ...
    """
    if not isinstance(data, (bytes, bytearray)):
        raise _fail(f"expected bytes, got {type(data).__name__}", None, protocol)
    end = head_end(data, 0, max_size=max_size, protocol=protocol)
    if end is None:
        raise _fail("truncated: no blank line ends the head", len(data), protocol)
    text = bytes(data[: end - 4]).decode("latin-1")
    lines = text.split("\r\n")
    if len(lines) > max_headers + 1:
        raise LimitExceeded(f"more than {max_headers} header lines", protocol=protocol, offset=0)
    start_line = lines[0]
    if not start_line:
        raise _fail("empty start line", 0, protocol, "start_line")
    # Every CR and LF is in a CRLF that split the lines, and there is no NUL: nothing to look
    # for line by line (the common case).
    clean = "\0" not in text and text.count("\r") == text.count("\n") == len(lines) - 1
    if not clean:
        bad = _INVALID.search(start_line)
        if bad:  # RFC 9112 §2.2: "A sender MUST NOT generate a bare CR"; a bare LF ends a line
            raise _fail(f"{bad.group()!r} in the start line", bad.start(), protocol,
                        "start_line")
    fields: list[HeaderField] = []
    deviations: list[Deviation] = []
    token = _TOKEN.match
    for i in range(1, len(lines)):
        line = lines[i]
        name, colon, rest = line.partition(":")
        if colon and token(name) and clean:  # the common case: a well-formed field line
            value = rest.strip(" \t")
            if len(rest) == len(value) + 1 and rest[:1] == " ":
                fields.append(_field(name, value, ": ", ""))
            else:
                kept = rest.rstrip(" \t")
                fields.append(_field(name, value, ":" + rest[: len(rest) - len(rest.lstrip(" \t"))],
                                     rest[len(kept) :]))
            continue
        _odd_line(lines, i, fields, deviations, folding=folding, strict=strict,
                  protocol=protocol)
    headers = Headers.__new__(Headers)
    headers.fields = tuple(fields)
    return Head(start_line, headers, end, tuple(deviations))


def _field(name: str, value: str, separator: str, trailing: str,
           _new: Any = object.__new__, _set: Any = object.__setattr__) -> HeaderField:
    """A :class:`HeaderField` without the frozen dataclass's ``__init__`` (the hot path of
    :func:`parse_head`; the fields are already checked)."""
    f = _new(HeaderField)
    _set(f, "__dict__", {"name": name, "value": value, "separator": separator,
                         "trailing": trailing})
    return f


def _odd_line(lines: list[str], i: int, fields: list[HeaderField], deviations: list[Deviation],
              *, folding: bool, strict: bool, protocol: str) -> None:
    """A field line off the common path: folded, malformed, or with CR, LF or NUL in it."""
    line = lines[i]
    offset = sum(len(x) + 2 for x in lines[:i])

    def bent(at: int, rule: str, message: str, spec: str) -> None:
        if strict:
            raise _fail(message, at, protocol, "headers")
        deviations.append(Deviation(offset=at, rule=f"http/field/{rule}", message=message,
                                    spec=spec))

    if line[:1] in (" ", "\t") and line and fields:
        if not folding:
            bent(offset, "obs-fold", "obsolete line folding", "RFC 9112 §5.2")
        bad = _INVALID.search(line)
        if bad:
            bent(offset + bad.start(), "invalid-character",
                 f"{bad.group()!r} in the value of {fields[-1].name}", "RFC 9110 §5.5")
        last = fields[-1]
        value = last.value + last.trailing + "\r\n" + line.rstrip(" \t")
        fields[-1] = _field(last.name, value, last.separator, line[len(line.rstrip(" \t")) :])
        return
    name, colon, rest = line.partition(":")
    stripped = name.rstrip(" \t")
    if not colon or not _TOKEN.match(stripped):
        bent(offset, "malformed", f"header line {line[:40]!r} is not 'Name: value'",
             "RFC 9112 §5")
        return
    if stripped != name:  # RFC 9112 §5.1: "No whitespace is allowed between the field name
        # and colon."
        bent(offset, "space-before-colon",
             f"header line {line[:40]!r} is not 'Name: value' (whitespace before the colon)",
             "RFC 9112 §5.1")
    bad = _INVALID.search(rest)
    if bad:  # RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid
        # and dangerous [...] a recipient [...] MUST either reject the message or replace"
        bent(offset + len(name) + 1 + bad.start(), "invalid-character",
             f"{bad.group()!r} in the value of {stripped}", "RFC 9110 §5.5")
    value = rest.lstrip(" \t")
    leading = rest[: len(rest) - len(value)]
    kept = value.rstrip(" \t")
    fields.append(_field(stripped, kept, name[len(stripped) :] + ":" + leading,
                         value[len(kept) :]))


def parse_request_line(line: str, *, protocol: str = PROTOCOL) -> RequestLine:
    """Split a request line into method, target and version (RFC 9112 §3)."""
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] or "/" not in parts[2]:
        raise _fail(f"not a request line: {line[:60]!r}", 0, protocol, "start_line")
    return RequestLine(*parts)


def parse_status_line(line: str, *, protocols: tuple[str, ...] = ("HTTP",),
                      protocol: str = PROTOCOL) -> StatusLine:
    """Split a status line (``HTTP/1.1 200 OK``; Gnutella's ``GNUTELLA/0.6 200 OK``)."""
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    name, slash, number = version.partition("/")
    # str.isdigit() is true for '¹' and other Unicode digits: the status code is three ASCII ones
    if (name not in protocols or not slash or not number or len(code) != 3
            or not (code.isascii() and code.isdigit())):
        raise _fail(f"not a status line: {line[:60]!r}", 0, protocol, "start_line")
    return StatusLine(version, int(code), reason)


def build_head(start_line: str, headers: Iterable[tuple[str, str] | HeaderField] | Headers,
               *, protocol: str = PROTOCOL) -> bytes:
    """The bytes of a head: start line, field lines (with their separators), blank line."""
    fields = headers.fields if isinstance(headers, Headers) else Headers(headers).fields
    lines = [start_line]
    token = _TOKEN.match
    for f in fields:
        name, value, separator, trailing = f.name, f.value, f.separator, f.trailing
        if not token(name):
            raise BuildError(f"bad header name {name!r}", protocol=protocol, path="headers")
        if "\r" in value or "\n" in value or "\0" in value:
            first, *folded = value.split("\r\n")
            if any(_INVALID.search(x) for x in (first, *folded)) or any(
                    x[:1] not in (" ", "\t") for x in folded):  # only RFC 9112 §5.2 folds
                raise BuildError(f"header {name} has a line break in its value",
                                 protocol=protocol, path="headers")
        if (separator != ": " and separator.strip(" \t") != ":") or (
                trailing and trailing.strip(" \t")):
            raise BuildError(f"header {name} has a bad separator {separator!r}",
                             protocol=protocol, path="headers")
        lines.append(name + separator + value + trailing)
    if "\r" in start_line or "\n" in start_line:
        raise BuildError("line break in the start line", protocol=protocol, path="start_line")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as e:
        raise BuildError(f"head is not latin-1: {e.reason}", protocol=protocol) from None


@dataclass(frozen=True)
class ByteRange:
    """A satisfiable byte range: ``first`` to ``last`` inclusive (RFC 9110 §14.1.2)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*\Z", re.ASCII)


def parse_range(value: str, size: int) -> ByteRange | None:
    """One ``Range: bytes=a-b`` against a representation of ``size`` bytes (RFC 9110 §14.2).

    Returns ``None`` when the range is not satisfiable (answer 416), raises
    :class:`ParseError` when it is not a single byte range this codec understands.

    >>> parse_range("bytes=0-9", 100), parse_range("bytes=90-", 100), parse_range("bytes=-5", 100)
    (ByteRange(first=0, last=9), ByteRange(first=90, last=99), ByteRange(first=95, last=99))
    >>> parse_range("bytes=200-", 100) is None
    True
    """
    m = _RANGE.match(value)
    if not m or (not m.group(1) and not m.group(2)):
        raise _fail(f"not a single byte range: {value[:40]!r}", None, PROTOCOL, "Range")
    first_text, last_text = m.group(1), m.group(2)
    if not first_text:  # suffix range: the last N bytes
        n = int(last_text)
        if n == 0 or size == 0:
            return None
        return ByteRange(max(0, size - n), size - 1)
    first = int(first_text)
    last = int(last_text) if last_text else max(first, size - 1)
    if last < first:
        raise _fail(f"range ends before it starts: {value[:40]!r}", None, PROTOCOL, "Range")
    if first >= size:
        return None
    return ByteRange(first, min(last, size - 1))
