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

Headers are an ordered multi-map (:class:`Headers`) that keeps every name's case and the order
of the lines, so a block re-builds byte-identically. A gtk-gnutella 1.2.3 answer, shortened:

>>> hs = Handshake.parse(b"GNUTELLA/0.6 200 OK\\r\\nUser-Agent: gtk-gnutella/1.2.3\\r\\n"
...                      b"X-Ultrapeer: True\\r\\nX-Query-Routing: 0.2\\r\\n\\r\\n")
>>> hs.kind, hs.status_code, hs.reason, hs.headers["x-ultrapeer"]
('response', 200, 'OK', 'True')
>>> Handshake.build(hs)[:21]
b'GNUTELLA/0.6 200 OK\\r\\n'
>>> Handshake.parse(b"GNUTELLA CONNECT/0.4\\n\\n").kind
'connect_0_4'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import construct
from construct import Container

from p2pkit.errors import LimitExceeded
from p2pkit.schema import Schema

__all__ = [
    "CONNECT_0_4",
    "MAX_HANDSHAKE_SIZE",
    "MAX_HEADERS",
    "OK_0_4",
    "Handshake",
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


class Headers:
    """An ordered multi-map of handshake headers: names keep their case, lines their order.

    Lookup ignores case (HTTP's rule); a name may appear more than once.

    >>> h = Headers([("X-Ultrapeer", "True"), ("X-Try", "a"), ("x-try", "b")])
    >>> h["x-ultrapeer"], h.get_all("X-TRY"), "Accept-Encoding" in h
    ('True', ['a', 'b'], False)
    >>> list(h)[0]
    ('X-Ultrapeer', 'True')
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (any case), or ``default``."""
        lowered = name.lower()
        for key, value in self._items:
            if key.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order."""
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered]

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every ``name`` line (``Accept-Encoding: deflate, x``)."""
        return [t.strip() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        if isinstance(other, list):
            return self._items == [tuple(x) for x in other]
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


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
    end = data.find(b"\r\n\r\n", start, start + MAX_HANDSHAKE_SIZE)
    if end >= 0:
        return end + 4
    if len(data) - start >= MAX_HANDSHAKE_SIZE:
        raise LimitExceeded(f"no end of handshake within MAX_HANDSHAKE_SIZE "
                            f"({MAX_HANDSHAKE_SIZE}) bytes", protocol=PROTOCOL, offset=start)
    return None


def detect_greeting(data: bytes) -> str | None:
    """``"0.6"``, ``"0.4"`` or ``None``: which Gnutella greeting ``data`` starts with.

    >>> detect_greeting(b"GNUTELLA CONNECT/0.6\\r\\nUser-Agent: x"), detect_greeting(CONNECT_0_4)
    ('0.6', '0.4')
    >>> detect_greeting(b"GET /uri-res/N2R?urn:sha1:"), detect_greeting(b"GNUTELLA/0.6 503")
    (None, '0.6')
    """
    if data.startswith(CONNECT_0_4[:20]) or data.startswith(OK_0_4):
        return "0.4"
    for prefix in (b"GNUTELLA CONNECT/0.6", b"GNUTELLA/0.6"):
        if data.startswith(prefix):
            return "0.6"
    return None


class _Handshake(construct.Construct):
    """One handshake block. Parses to ``Container(kind, version, status_code, reason, headers)``.

    ``kind`` is ``"connect"`` (``GNUTELLA CONNECT/<version>``), ``"response"``
    (``GNUTELLA/<version> <code> <reason>``), ``"connect_0_4"`` or ``"ok_0_4"``. Continuation
    lines (starting with a space or tab) stay part of their header's value, joined by CRLF.
    """

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
        text = block[:-4].decode("latin-1")
        lines = text.split("\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise LimitExceeded(f"more than MAX_HEADERS ({MAX_HEADERS}) header lines",
                                protocol=PROTOCOL, offset=start)
        out = _status_line(lines[0], path)
        items: list[list[str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and items:
                items[-1][1] += "\r\n" + line
                continue
            name, sep, value = line.partition(": ")
            if not sep or not name or name != name.strip():
                raise construct.ExplicitError(f"header line {line[:40]!r} is not 'Name: value'",
                                              path=path)
            items.append([name, value])
        out.headers = Headers((k, v) for k, v in items)
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
            headers = obj.get("headers") or ()
            lines = [line] + [f"{name}: {value}" for name, value in headers]
            for name, _ in headers:
                if not name or ":" in name or "\r" in name or "\n" in name:
                    raise construct.ExplicitError(f"bad header name {name!r}", path=path)
            data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("handshake blocks have no fixed size", path=path)


def _status_line(line: str, path: str) -> Container:
    if line.startswith(_CONNECT_PREFIX):
        version = line[len(_CONNECT_PREFIX) :]
        if not version or " " in version:
            raise construct.ExplicitError(f"bad connect line {line[:40]!r}", path=path)
        return Container(kind="connect", version=version, status_code=None, reason=None)
    if line.startswith(_STATUS_PREFIX):
        version, _, rest = line[len(_STATUS_PREFIX) :].partition(" ")
        code, space, reason = rest.partition(" ")
        if not version or len(code) != 3 or not code.isdigit():
            raise construct.ExplicitError(f"bad status line {line[:40]!r}", path=path)
        return Container(kind="response", version=version, status_code=int(code),
                         reason=reason if space else None)
    raise construct.ExplicitError(f"not a Gnutella handshake line: {line[:40]!r}", path=path)


#: One handshake block (see the module docstring).
Handshake = Schema(_Handshake(), protocol=PROTOCOL, name="handshake")
