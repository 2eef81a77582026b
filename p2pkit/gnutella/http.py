"""Gnutella's HTTP side, sans-I/O: what an upload answers, download requests, and GIV.

Specs: HUGE §6.1 ("Traditional Gnutella GETs are of the form: GET /get/[file-index]/[file-name]
HTTP/1.0 [...] Servents reporting URNs must also accept requests of the form: GET
/uri-res/N2R?[URN] HTTP/1.0"), HUGE §6.2.1 (``X-Gnutella-Content-URN``: "The URN MUST be for
the full file, even when responding to 'Range' requests"), RFC 9110 §9.3.2 (``HEAD``: the same
head as ``GET``, no body), RFC 9110 §14 (``Range: bytes=first-last``: ``206 Partial Content``
with ``Content-Range``; ``416 Range Not Satisfiable`` with ``Content-Range: bytes */size``)
and the Gnutella 0.4 Push / push_proxy § callback: the pushed servent connects out and sends
``GIV <File Index>:<Servent Identifier in hex>/<File Name>\\n\\n``, then the requester sends its
GET on that connection. Heads are parsed and built with :mod:`p2pkit.http1` only.

:func:`respond` decides an answer (status, head, which bytes of which shared file) from the
request's bytes; :class:`Upload` is one serving connection around it (a
:class:`~p2pkit.core.StreamCore`: bytes in, a :class:`Request` event and the response head out,
a request timeout); a driver writes the head and streams the body's byte range from disk.

>>> f = SharedFile(index=1, name="a.txt", size=10, sha1=bytes(20))
>>> r = respond(b"GET /get/1/a.txt HTTP/1.1\\r\\nRange: bytes=2-4\\r\\n\\r\\n", [f])
>>> r.status, r.body, r.head.split(b"\\r\\n")[0]
(206, ByteRange(first=2, last=4), b'HTTP/1.1 206 Partial Content')
>>> parse_giv(build_giv(3, bytes(range(16)), "x y.txt"))
Giv(file_index=3, servent_guid=b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f', file_name='x y.txt')
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError
from p2pkit.gnutella.events import ConnectionClosed
from p2pkit.gnutella.servent import USER_AGENT, SharedFile
from p2pkit.http1 import (
    ByteRange,
    Headers,
    build_head,
    head_end,
    parse_head,
    parse_range,
    parse_request_line,
)

__all__ = [
    "GIV_TIMEOUT",
    "MAX_GIV_SIZE",
    "MAX_REQUEST_HEAD",
    "REQUEST_TIMEOUT",
    "Giv",
    "Request",
    "Response",
    "Upload",
    "build_giv",
    "build_request",
    "giv_end",
    "parse_giv",
    "respond",
    "target_for",
]

PROTOCOL = "gnutella-http"
#: Bound on a request head (request line and headers); beyond it the answer is 431.
MAX_REQUEST_HEAD = 8 * 1024
#: Bound on a GIV line (the file name is the only free part).
MAX_GIV_SIZE = 4 * 1024
#: Seconds a serving connection waits for its request head (then answers 408 and closes).
REQUEST_TIMEOUT = 10.0
#: Seconds a pushed servent, or a requester waiting for it, waits for the GIV exchange.
GIV_TIMEOUT = 10.0

_REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 404: "Not Found",
            408: "Request Timeout", 416: "Range Not Satisfiable",
            431: "Request Header Fields Too Large", 501: "Not Implemented"}
_GET = re.compile(r"/get/([0-9]+)/(.*)")
_GIV = re.compile(rb"GIV (\d+):([0-9A-Fa-f]{32})/([^\n]*)\n\n\Z")


@dataclass(frozen=True, kw_only=True)
class Request(Event):
    """An HTTP request read by an :class:`Upload`, with the answer it decided."""

    method: str
    target: str
    headers: Headers
    response: Response


@dataclass(frozen=True, kw_only=True)
class Response:
    """What to send: ``head`` (the bytes of the status line and headers), then, when ``body``
    is set, those bytes of ``file`` (``None`` for HEAD, errors and empty files)."""

    status: int
    head: bytes
    file: SharedFile | None = None
    body: ByteRange | None = None


@dataclass(frozen=True, kw_only=True)
class Giv(Event):
    """0.4 Push: ``GIV <File Index>:<Servent Identifier>/<File Name>``, from a pushed servent."""

    file_index: int
    servent_guid: bytes
    file_name: str

    def __post_init__(self) -> None:
        # 0.4 Push: "Servent Identifier: 16 bytes"; the index is a 32-bit field of the hit.
        if len(self.servent_guid) != 16:
            raise LocalProtocolError("a servent identifier is 16 bytes (0.4 Push)")
        if not 0 <= self.file_index < 1 << 32:
            raise LocalProtocolError("a file index is a 32-bit number (0.4 QueryHit)")
        # The line ends at the first LF: a name holding one could not be read back.
        if "\n" in self.file_name:
            raise LocalProtocolError("a GIV file name cannot hold a line feed")


# --- the serving side ------------------------------------------------------------------------

def _head(status: int, fields: Iterable[tuple[str, str]] = ()) -> bytes:
    return build_head(f"HTTP/1.1 {status} {_REASONS[status]}",
                      [("Server", USER_AGENT), ("Connection", "close"), *fields],
                      protocol=PROTOCOL)


def _find(target: str, shared: Iterable[SharedFile]) -> SharedFile | None:
    """HUGE §6.1: ``/uri-res/N2R?urn:sha1:<base32>`` or ``/get/<index>/<name>``."""
    path, _, query = target.partition("?")
    if path == "/uri-res/N2R":
        if not query.lower().startswith("urn:sha1:"):
            return None
        try:
            sha1 = base64.b32decode(query[9:].upper())
        except ValueError:
            return None
        return next((f for f in shared if f.sha1 == sha1), None)
    match = _GET.fullmatch(path)
    if match:
        index, name = int(match.group(1)), urllib.parse.unquote(match.group(2))
        return next((f for f in shared if f.index == index and f.name == name), None)
    return None


def respond(data: bytes, shared: Iterable[SharedFile]) -> Response:
    """The answer to the request head at the start of ``data`` (one request per connection:
    every answer says ``Connection: close``).

    ``200`` with the whole file; ``206`` for a satisfiable ``Range``; ``416`` when it is not
    (or cannot be read); ``404`` for a file not shared; ``400`` for a head that is not an HTTP
    request; ``431`` beyond :data:`MAX_REQUEST_HEAD`; ``501`` for a method other than
    ``GET``/``HEAD``. A ``HEAD`` gets the head a ``GET`` would, and no body.
    """
    try:
        end = head_end(data, max_size=MAX_REQUEST_HEAD, protocol=PROTOCOL)
    except LimitExceeded:
        return Response(status=431, head=_head(431))
    try:
        if end is None:
            raise ParseError("no blank line ends the head", protocol=PROTOCOL)
        head = parse_head(data[:end], max_size=MAX_REQUEST_HEAD, protocol=PROTOCOL)
        line = parse_request_line(head.start_line, protocol=PROTOCOL)
        if not line.version.startswith("HTTP/1."):
            raise ParseError(f"not HTTP/1.x: {line.version!r}", protocol=PROTOCOL)
    except LimitExceeded:
        return Response(status=431, head=_head(431))
    except ParseError:
        return Response(status=400, head=_head(400))
    if line.method not in ("GET", "HEAD"):
        return Response(status=501, head=_head(501))
    found = _find(line.target, shared)
    if found is None:
        return Response(status=404, head=_head(404, [("Content-Length", "0")]))
    size = found.size
    fields = [("Content-Type", "application/binary"), ("X-Gnutella-Content-URN", found.urn)]
    status, body = 200, ByteRange(0, size - 1) if size else None
    ranges = head.headers.get_all("Range")
    if ranges:
        try:
            body = parse_range(ranges[0], size) if len(ranges) == 1 else None
        except ParseError:
            body = None  # not a range we understand: answered as unsatisfiable
        if body is None:
            return Response(status=416, head=_head(416, [("Content-Range", f"bytes */{size}")]))
        status = 206
        fields.append(("Content-Range", f"bytes {body.first}-{body.last}/{size}"))
    fields.append(("Content-Length", str(body.length if body else 0)))
    return Response(status=status, head=_head(status, fields), file=found,
                    body=body if line.method == "GET" else None)


#: :class:`Upload` states.
AWAIT_REQUEST = "AWAIT_REQUEST"
RESPONDED = "RESPONDED"
CLOSED = "CLOSED"


class Upload(Outbox):
    """One serving HTTP connection (a direct GET, or the one a GIV opened), sans-I/O.

    Feed the request's bytes; :meth:`next_event` returns a :class:`Request` (its ``response``
    says what to stream after :meth:`~p2pkit.core.Outbox.data_to_send`'s head), or :class:`ConnectionClosed` when
    the peer closed first or :data:`REQUEST_TIMEOUT` passed (a ``408`` head is then queued).

    >>> up = Upload([SharedFile(index=1, name="a", size=3, sha1=bytes(20))], now=0.0)
    >>> up.receive_data(b"HEAD /get/1/a HTTP/1.1\\r\\n\\r\\n", 0.5)
    >>> event = up.next_event()
    >>> event.method, event.response.status, event.response.body, up.data_to_send()[:15]
    ('HEAD', 200, None, b'HTTP/1.1 200 OK')
    """

    def __init__(self, shared: Iterable[SharedFile], now: float) -> None:
        self.shared = list(shared)
        self.state = AWAIT_REQUEST
        self.opened_at = now
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()

    def receive_data(self, data: bytes, now: float) -> None:
        """Request bytes (``b""``: the peer closed)."""
        if self.state != AWAIT_REQUEST:
            return
        if not data:
            self._close(0, "connection closed", by_peer=True)
            return
        self._buffer += data
        try:
            end = head_end(self._buffer, max_size=MAX_REQUEST_HEAD, protocol=PROTOCOL)
        except LimitExceeded:
            end = len(self._buffer)
        if end is None:
            return
        request = bytes(self._buffer[:end])
        response = respond(request, self.shared)
        self._out += response.head
        self.state = RESPONDED
        try:
            head = parse_head(request, max_size=MAX_REQUEST_HEAD, protocol=PROTOCOL)
            line = parse_request_line(head.start_line, protocol=PROTOCOL)
            method, target, headers = line.method, line.target, head.headers
        except ParseError:  # LimitExceeded too: the answer (400, 431) says it
            method, target, headers = "", "", Headers()
        self._events.append(Request(method=method, target=target, headers=headers,
                                    response=response))

    def next_event(self) -> Event | NeedData:
        """A :class:`Request`, a :class:`ConnectionClosed`, or :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    def send(self, event: Event, now: float) -> bytes:
        """Nothing to send: the upload answers by itself (the body is the driver's)."""
        raise LocalProtocolError(f"an upload sends no {type(event).__name__}")

    def get_timer(self) -> float | None:
        """The request timeout while waiting for the head, else ``None``."""
        return self.opened_at + REQUEST_TIMEOUT if self.state == AWAIT_REQUEST else None

    def handle_timer(self, now: float) -> None:
        """:data:`REQUEST_TIMEOUT` passed without a request head: ``408`` and close."""
        if self.state == AWAIT_REQUEST and now >= self.opened_at + REQUEST_TIMEOUT:
            self._out += _head(408)
            self._close(408, "Request Timeout", by_peer=False)

    def _close(self, code: int, reason: str, *, by_peer: bool) -> None:
        self.state = CLOSED
        self._events.append(ConnectionClosed(conn_id=None, code=code, reason=reason,
                                             by_peer=by_peer))


# --- the downloading side ----------------------------------------------------------------

def target_for(*, urn: str | None = None, file_index: int | None = None,
               file_name: str | None = None) -> str:
    """HUGE §6.1's request target: by ``urn`` when given, else ``/get/<index>/<name>``.

    >>> target_for(file_index=2, file_name="a b.txt")
    '/get/2/a%20b.txt'
    """
    if urn is not None:
        return f"/uri-res/N2R?{urn}"
    if file_index is None or file_name is None:
        raise LocalProtocolError("a target needs a urn, or a file index and name")
    return f"/get/{file_index}/{urllib.parse.quote(file_name)}"


def build_request(target: str, *, host: str, first: int | None = None,
                  last: int | None = None) -> bytes:
    """A download request head (``Connection: close``), with ``Range`` when ``first`` is set.

    >>> build_request("/get/1/a", host="10.0.0.1:6346", first=10, last=19)
    b'GET /get/1/a HTTP/1.1\\r\\nHost: 10.0.0.1:6346\\r\\nUser-Agent: p2pkit/0.1\\r\\nConnection: close\\r\\nRange: bytes=10-19\\r\\n\\r\\n'
    """
    fields = [("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close")]
    if first is not None:
        fields.append(("Range", f"bytes={first}-{'' if last is None else last}"))
    return build_head(f"GET {target} HTTP/1.1", fields, protocol=PROTOCOL)


# --- GIV -----------------------------------------------------------------------------------

def build_giv(file_index: int, servent_guid: bytes, file_name: str) -> bytes:
    """The GIV line a pushed servent sends (0.4 Push), GUID in lowercase hex."""
    giv = Giv(file_index=file_index, servent_guid=servent_guid, file_name=file_name)
    return f"GIV {giv.file_index}:{giv.servent_guid.hex()}/{giv.file_name}\n\n".encode()


def giv_end(data: bytes | bytearray) -> int | None:
    """The offset just past the GIV line at the start of ``data``, or ``None`` while
    incomplete; :class:`LimitExceeded` beyond :data:`MAX_GIV_SIZE`."""
    end = data.find(b"\n\n", 0, MAX_GIV_SIZE)
    if end >= 0:
        return end + 2
    if len(data) >= MAX_GIV_SIZE:
        raise LimitExceeded(f"GIV longer than {MAX_GIV_SIZE} bytes", protocol=PROTOCOL)
    return None


def parse_giv(data: bytes) -> Giv:
    """Parse one whole GIV line (``\\n\\n`` included); :class:`ParseError` if it is not one."""
    match = _GIV.match(data)
    if match is None:
        raise ParseError(f"not a GIV line: {bytes(data[:60])!r}", protocol=PROTOCOL)
    return Giv(file_index=int(match.group(1)), servent_guid=bytes.fromhex(match.group(2).decode()),
               file_name=match.group(3).decode("utf-8", "replace"))
