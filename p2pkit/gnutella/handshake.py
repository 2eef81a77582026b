"""The Gnutella 0.6 connection handshake, and the 0.4 greeting it replaced.

Spec: handshaking_0.6 §2 and §3: the client sends "GNUTELLA CONNECT/0.6<cr><lf>" and
"HTTP-style capability headers, each terminated by <cr><lf>, with an extra <cr><lf> at the end";
the server answers "GNUTELLA/0.6 200 OK<cr><lf>" and its headers (or a refusal such as
"GNUTELLA/0.6 503 Service Unavailable"); the client ends the three-leg exchange with its own
status line and headers. §1: the 0.4 greeting "GNUTELLA CONNECT/0.4<lf><lf>", answered by
"GNUTELLA OK<lf><lf>". Headers in use: ultra-peers § (X-Ultrapeer, X-Ultrapeer-Needed,
X-Try-Ultrapeers), ultrapeer_qrp § and QRP (X-Query-Routing, X-Ultrapeer-Query-Routing),
compression § (Accept-Encoding / Content-Encoding: deflate), bye § (Bye-Packet), ping-pong §
(Pong-Caching), GGEP §, vendor_msg §3 (Vendor-Message), x-features § (X-Features).

The blocks are HTTP/1-shaped heads and are read by the one head codec, :mod:`p2pkit.http1`
(RFC 9112 §5 field lines, with §5.2 folding, which servents still send); the 0.4 greetings are
the only special case. Headers are an ordered multi-map (:class:`~p2pkit.http1.Headers`) that
keeps every name's case, the order of the lines and the separators, so a block re-builds
byte-identically. A gtk-gnutella 1.2.3 answer, shortened:

>>> hs = Handshake.parse(b"GNUTELLA/0.6 200 OK\\r\\nUser-Agent: gtk-gnutella/1.2.3\\r\\n"
...                      b"X-Ultrapeer: True\\r\\nX-Query-Routing: 0.2\\r\\n\\r\\n")
>>> hs.kind, hs.status_code, hs.reason, hs.headers["x-ultrapeer"]
('response', 200, 'OK', 'True')
>>> Handshake.build(hs)[:21]
b'GNUTELLA/0.6 200 OK\\r\\n'
>>> Handshake.parse(b"GNUTELLA CONNECT/0.4\\n\\n").kind
'connect_0_4'

For dissection, :data:`HandshakeLenient` keeps what RFC 9112 refuses and says so:

>>> from p2pkit.deviations import deviations_of
>>> hs = HandshakeLenient.parse(b"GNUTELLA CONNECT/0.6\\r\\nX-Ultrapeer : False\\r\\n\\r\\n")
>>> hs.headers["X-Ultrapeer"], [(d.offset, d.rule) for d in deviations_of(hs)]
('False', [(22, 'http/field/space-before-colon')])
"""

from __future__ import annotations

import re
from typing import Any

import construct
from construct import Container

from p2pkit import http1
from p2pkit.deviations import deviations_of, with_deviations
from p2pkit.errors import BuildError, ParseError
from p2pkit.http1 import Headers
from p2pkit.schema import Schema

__all__ = [
    "CONNECT_0_4",
    "MAX_HANDSHAKE_SIZE",
    "MAX_HEADERS",
    "OK_0_4",
    "Handshake",
    "HandshakeLenient",
    "Headers",
    "detect_greeting",
    "handshake_end",
]

PROTOCOL = "gnutella"
#: Bound on one handshake block (status line, headers, blank line). Real blocks are 0.3-3 KiB
#: (gtk-gnutella 1.2.3: 1 KiB; Shareaza with X-Try-Ultrapeers: 0.8 KiB).
MAX_HANDSHAKE_SIZE = 16 * 1024
#: Bound on the number of header lines in one block.
MAX_HEADERS = 128
#: handshaking_0.6 §1: the 0.4 greeting and its answer.
CONNECT_0_4 = b"GNUTELLA CONNECT/0.4\n\n"
OK_0_4 = b"GNUTELLA OK\n\n"
_CONNECT_PREFIX = "GNUTELLA CONNECT/"
_STATUS_PREFIX = "GNUTELLA/"


def handshake_end(data: bytes | bytearray, start: int = 0) -> int | None:
    """The offset just past the handshake block starting at ``start``, or ``None`` if incomplete.

    Raises :class:`LimitExceeded` when :data:`MAX_HANDSHAKE_SIZE` bytes hold no end.

    >>> handshake_end(b"GNUTELLA/0.6 200 OK\\r\\n\\r\\nbinary")
    23
    >>> handshake_end(b"GNUTELLA CONNECT/0.4\\n\\n")
    22
    """
    if data[start : start + len(CONNECT_0_4)] == CONNECT_0_4:
        return start + len(CONNECT_0_4)
    if data[start : start + len(OK_0_4)] == OK_0_4:
        return start + len(OK_0_4)
    return http1.head_end(data, start, max_size=MAX_HANDSHAKE_SIZE, protocol=PROTOCOL)


def detect_greeting(data: bytes) -> str | None:
    """``"0.6"``, ``"0.4"`` or ``None``: which Gnutella greeting ``data`` starts with.

    >>> detect_greeting(b"GNUTELLA CONNECT/0.6\\r\\nUser-Agent: x"), detect_greeting(CONNECT_0_4)
    ('0.6', '0.4')
    >>> detect_greeting(b"GET /uri-res/N2R?urn:sha1:"), detect_greeting(b"GNUTELLA/0.6 503")
    (None, '0.6')
    >>> detect_greeting(b"GNUTELLA CONNECT/0.7\\r\\n"), detect_greeting(b"GNUTELLA CONNECT/0.5")
    ('0.6', None)
    """
    if data.startswith(CONNECT_0_4[:20]) or data.startswith(OK_0_4):
        return "0.4"
    # handshaking_0.6 §3: "servents should ignore higher version numbers in steps (2), (4),
    # and (6)": GNUTELLA CONNECT/0.7 is a 0.6 handshake to a 0.6 servent.
    match = _GREETING.match(data)
    if match and (int(match[1]), int(match[2])) >= (0, 6):
        return "0.6"
    return None


_GREETING = re.compile(rb"GNUTELLA(?: CONNECT)?/(\d{1,3})\.(\d{1,3})")


class _Handshake(construct.Construct):
    """One handshake block. Parses to ``Container(kind, version, status_code, reason, headers)``.

    ``kind`` is ``"connect"`` (``GNUTELLA CONNECT/<version>``), ``"response"``
    (``GNUTELLA/<version> <code> <reason>``), ``"connect_0_4"`` or ``"ok_0_4"``. Continuation
    lines (starting with a space or tab) stay part of their header's value, joined by CRLF.
    ``strict=False`` accepts header lines RFC 9112 refuses and lists them, as
    :class:`~p2pkit.deviations.Deviation` records, in the hidden ``_deviations`` field.
    """

    def __init__(self, *, strict: bool = True) -> None:
        super().__init__()
        self.strict = strict

    def _parse(self, stream: Any, context: Any, path: str) -> Container:
        start = construct.stream_tell(stream, path)
        head = construct.stream_read_entire(stream, path)
        end = handshake_end(head)
        if end is None:
            raise construct.ExplicitError("handshake block does not end with an empty line",
                                          path=path)
        construct.stream_seek(stream, start + end, 0, path)
        block = head[:end]
        if block == CONNECT_0_4:
            return Container(kind="connect_0_4", version="0.4", status_code=None, reason=None,
                             headers=Headers())
        if block == OK_0_4:
            return Container(kind="ok_0_4", version="0.4", status_code=200, reason="OK",
                             headers=Headers())
        try:
            head = http1.parse_head(block, folding=True, max_size=MAX_HANDSHAKE_SIZE,
                                    max_headers=MAX_HEADERS, strict=self.strict,
                                    protocol=PROTOCOL)
            out = _start_line(head.start_line)
        except ParseError as e:
            raise e.relocated(base=start or 0) from None
        out.headers = head.headers
        if not self.strict:
            with_deviations(out, deviations_of(head, base=start or 0))
        return out

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        kind = obj["kind"]
        if kind == "connect_0_4":
            data = CONNECT_0_4
        elif kind == "ok_0_4":
            data = OK_0_4
        else:
            version = obj.get("version") or "0.6"
            if kind == "connect":
                line = f"{_CONNECT_PREFIX}{version}"
            elif kind == "response":
                line = f"{_STATUS_PREFIX}{version} {int(obj['status_code']):03d}"
                if obj.get("reason") is not None:
                    line += f" {obj['reason']}"
            else:
                raise construct.ExplicitError(f"unknown handshake kind {kind!r}", path=path)
            try:
                data = http1.build_head(line, obj.get("headers") or (), protocol=PROTOCOL)
            except BuildError as e:
                raise construct.ExplicitError(e.reason, path=path) from None
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("handshake blocks have no fixed size", path=path)


def _start_line(line: str) -> Container:
    """handshaking_0.6 §3: ``GNUTELLA CONNECT/<version>`` or ``GNUTELLA/<version> <code> …``."""
    if line.startswith(_CONNECT_PREFIX):
        version = line[len(_CONNECT_PREFIX) :]
        if not version or " " in version:
            raise ParseError(f"bad connect line {line[:40]!r}", path="start_line", offset=0)
        return Container(kind="connect", version=version, status_code=None, reason=None)
    status = http1.parse_status_line(line, protocols=("GNUTELLA",), protocol=PROTOCOL)
    has_reason = line.count(" ") >= 2
    return Container(kind="response", version=status.version[len(_STATUS_PREFIX) :],
                     status_code=status.status, reason=status.reason if has_reason else None)


#: One handshake block (see the module docstring).
Handshake = Schema(_Handshake(), protocol=PROTOCOL, name="handshake")
#: The same for dissection: header lines RFC 9112 refuses are kept and listed in
#: ``_deviations``.
HandshakeLenient = Schema(_Handshake(strict=False), protocol=PROTOCOL, name="handshake")
