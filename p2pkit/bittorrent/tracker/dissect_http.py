"""HTTP tracker dissection (BEP 3 §trackers, BEP 23, BEP 48) of one reassembled direction.

The client direction carries ``GET /announce?…`` or ``GET /scrape?…`` request heads; the
tracker direction carries HTTP responses with bencoded bodies. Requests and responses on one
connection pair up in order (HTTP/1.1 keep-alive), which tells each response whether its body
is an announce or a scrape response. Decoding uses
:mod:`p2pkit.bittorrent.tracker.http`, leniently (real trackers send non-canonical bencoding).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from p2pkit import http1
from p2pkit.bittorrent.tracker.http import MAX_BODY_SIZE, parse_http_request, parse_http_response
from p2pkit.capture.record import Record, json_value
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import deviations_of
from p2pkit.errors import ParseError

__all__ = ["HttpTrackerStream"]

PROTOCOL = "bt-tracker-http"
#: Longest HTTP head looked for before the direction is given up as not HTTP.
MAX_HEAD = 64 * 1024


class HttpTrackerStream:
    """One direction of an HTTP tracker connection; ``peer`` is the other direction."""

    def __init__(self, *, transport: str, src: str, dst: str) -> None:
        self.transport = transport
        self.src = src
        self.dst = dst
        self.buffer = StreamBuffer()
        self.peer: HttpTrackerStream | None = None
        #: Kinds of the requests this direction sent that await a response.
        self.awaiting: deque[str | None] = deque()
        self.failed = False
        self.skipped = 0

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterator[Record]:
        if self.failed:
            self.skipped += len(data)
            return
        self.buffer.append(offset, data, frame, time)
        yield from self._decode(at_end=False)

    def gap(self, offset: int, length: int) -> None:
        self.skipped += len(self.buffer) + length
        self.buffer.reset(offset + length)
        self.failed = True  # no way to find the next HTTP message boundary reliably

    def end(self) -> Iterator[Record]:
        yield from self._decode(at_end=True)
        self.skipped += len(self.buffer)

    def _record(self, message: str, direction: str, value: Any, length: int,
                extra: dict[str, Any], decoded: Any = None) -> Record:
        """A record of ``value`` (the message); ``decoded`` is the lenient decoder's result,
        whose deviations the record carries."""
        frame, time = self.buffer.frame_of(length - 1)
        fields = {"direction": direction, **extra}
        if value is not None:
            doc = json_value(value)
            if isinstance(doc, dict):
                doc.pop("order", None)
                doc.pop("style", None)
                fields.update(doc)
        base = self.buffer.start
        return Record(frame=frame, time=time, transport=self.transport, src=self.src,
                      dst=self.dst, protocol=PROTOCOL, message=message, fields=fields,
                      offset=base, length=length, value=value,
                      deviations=deviations_of(decoded, base=base))

    def _decode(self, *, at_end: bool) -> Iterator[Record]:
        buf = self.buffer
        while buf.data:
            data = bytes(buf.data)
            try:
                if http1.head_end(data, max_size=MAX_HEAD, protocol=PROTOCOL) is None:
                    return
                if data.startswith(b"HTTP/"):
                    record, size = self._response(data, at_end)
                else:
                    record, size = self._request(data)
            except ParseError:  # LimitExceeded too: no head within MAX_HEAD
                self.failed = True
                return
            if record is None:
                return
            buf.skip(size)
            yield record

    def _request(self, data: bytes) -> tuple[Record | None, int]:
        request = parse_http_request(data, strict=False)
        self.awaiting.append(request.kind)
        extra = {"method": request.method, "path": request.path}
        return self._record(request.kind or "http_request", "request", request.message,
                            request.size, extra, request), request.size

    def _response(self, data: bytes, at_end: bool) -> tuple[Record | None, int]:
        head = http1.parse_head(data, max_size=MAX_HEAD, strict=False, protocol=PROTOCOL)
        length = head.headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY_SIZE:
                raise ParseError("bad Content-Length", protocol=PROTOCOL)
            total = head.size + int(length)
            if len(data) < total:
                return None, 0
        elif not at_end:
            return None, 0  # the body runs to the end of the connection
        else:
            total = len(data)
        kinds = self.peer.awaiting if self.peer is not None else deque()
        kind = kinds.popleft() if kinds else "announce"
        response = parse_http_response(data[:total], kind=kind, strict=False)
        extra = {"status": response.status}
        return self._record(kind or "http_response", "response", response.message, total,
                            extra, response), total
