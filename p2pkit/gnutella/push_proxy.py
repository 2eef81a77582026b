"""The push proxy's HTTP request, both sides, sans-I/O (push_proxy §5).

Spec: push_proxy §5: "The resource name is: /gnutella/push-proxy?
ServerId=<ServentIdAsGivenInTheQueryHitAsABase32UrlEncodedString>"; "The D MUST also include
the X-Node header in this HTTP request. X-Node: <IP>:<PORT>" (where the firewalled servent
sends its GIV); the answers "202, Push Proxy: Message Sent", "410, Push Proxy: Servent not
connected", "400, Push Proxy: Bad Request"; "If the D receives either an error HTTP status code
(i.e. >= 400) or no response at all, it MUST not contact this PP again"; the proxy "constructs a
Gnutella Push packet (FileIndex=0) and directly sends this to the FS". gtk-gnutella also
answers ``/gnet/push-proxy?guid=<hex>``; both are read here, the spec's form is sent.
§4.1: the proxies of a firewalled servent travel in its query hits as GGEP ``PUSH``
(:func:`proxies_of`). Heads are parsed and built with :mod:`p2pkit.http1` only.

>>> guid = bytes(range(16))
>>> head = build_push_proxy_request(guid, ("127.0.0.5", 6346), host="127.0.0.1:6346")
>>> head.split(b"\\r\\n")[0]
b'GET /gnutella/push-proxy?ServerId=AAAQEAYEAUDAOCAJBIFQYDIOB4 HTTP/1.1'
>>> parse_push_proxy_request(head)
PushProxyRequest(servent_id=b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f', node=('127.0.0.5', 6346))
>>> push_proxy_response(202).split(b"\\r\\n")[0]
b'HTTP/1.1 202 Push Proxy: Message Sent'
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from dataclasses import dataclass
from typing import Any

from p2pkit.errors import ParseError
from p2pkit.gnutella.servent import USER_AGENT
from p2pkit.http1 import Headers, build_head, parse_head, parse_request_line, parse_status_line

__all__ = [
    "PUSH_PROXY_PATHS",
    "PushProxyRequest",
    "build_push_proxy_request",
    "is_push_proxy_target",
    "parse_push_proxy_request",
    "parse_push_proxy_status",
    "proxies_of",
    "push_proxy_request",
    "push_proxy_response",
]

PROTOCOL = "gnutella"
#: push_proxy §5's resource, and gtk-gnutella's own.
PUSH_PROXY_PATHS = ("/gnutella/push-proxy", "/gnet/push-proxy")
#: push_proxy §5: "Recommended responses to this HTTP Request".
REASONS = {202: "Push Proxy: Message Sent", 400: "Push Proxy: Bad Request",
           410: "Push Proxy: Servent not connected"}


@dataclass(frozen=True)
class PushProxyRequest:
    """What a downloader asks a push proxy: push ``servent_id`` to GIV ``node``."""

    servent_id: bytes
    node: tuple[str, int]


def is_push_proxy_target(target: str) -> bool:
    """True for a request target naming the push proxy's resource."""
    return target.partition("?")[0] in PUSH_PROXY_PATHS


def _servent_id(query: str) -> bytes:
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    try:
        if "ServerId" in params:  # push_proxy §5: base32, url-encoded
            raw = params["ServerId"][0].upper()
            value = base64.b32decode(raw + "=" * (-len(raw) % 8))
        elif "guid" in params:  # gtk-gnutella: hex
            value = bytes.fromhex(params["guid"][0])
        else:
            raise ParseError("no ServerId in the push-proxy request", protocol=PROTOCOL,
                             path="ServerId")
    except (binascii.Error, ValueError):
        raise ParseError("ServerId is not a base32 servent id", protocol=PROTOCOL,
                         path="ServerId") from None
    if len(value) != 16:
        raise ParseError(f"ServerId of {len(value)} bytes (a servent id has 16)",
                         protocol=PROTOCOL, path="ServerId")
    return value


def push_proxy_request(target: str, headers: Headers) -> PushProxyRequest:
    """The servent id and ``X-Node`` of a push-proxy request (its target and headers);
    :class:`ParseError` (answered 400) when either is missing or malformed."""
    path, _, query = target.partition("?")
    if path not in PUSH_PROXY_PATHS:
        raise ParseError(f"{path} is not the push-proxy resource", protocol=PROTOCOL,
                         path="target")
    servent_id = _servent_id(query)
    node = headers.get("X-Node")
    host, sep, port = (node or "").strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ParseError(f"X-Node {node!r} is not IP:PORT", protocol=PROTOCOL, path="X-Node")
    return PushProxyRequest(servent_id, (host, int(port)))


def parse_push_proxy_request(head: bytes) -> PushProxyRequest:
    """:func:`push_proxy_request` of a whole request head."""
    parsed = parse_head(head, protocol=PROTOCOL)
    line = parse_request_line(parsed.start_line, protocol=PROTOCOL)
    return push_proxy_request(line.target, parsed.headers)


def build_push_proxy_request(servent_id: bytes, node: tuple[str, int], *, host: str) -> bytes:
    """push_proxy §5's request: the servent id in base32 (no padding), ``X-Node`` our GIV
    address."""
    server_id = base64.b32encode(servent_id).decode("ascii").rstrip("=")
    return build_head(f"GET /gnutella/push-proxy?ServerId={server_id} HTTP/1.1",
                      [("Host", host), ("User-Agent", USER_AGENT),
                       ("X-Node", f"{node[0]}:{node[1]}"), ("Connection", "close")],
                      protocol=PROTOCOL)


def push_proxy_response(status: int) -> bytes:
    """The proxy's answer head: 202, 400 or 410 (push_proxy §5)."""
    return build_head(f"HTTP/1.1 {status} {REASONS[status]}",
                      [("Server", USER_AGENT), ("Content-Length", "0"),
                       ("Connection", "close")], protocol=PROTOCOL)


def parse_push_proxy_status(head: bytes) -> int:
    """The status code of a proxy's answer head (:class:`ParseError` if it is not one)."""
    return parse_status_line(parse_head(head, protocol=PROTOCOL).start_line).status


def proxies_of(hit: Any) -> list[tuple[str, int]]:
    """push_proxy §4.1: the GGEP ``PUSH`` proxies of a query hit (in its QHD private area, as
    gtk-gnutella and this servent put them, or its results' extensions)."""
    blocks = list((hit.trailer.get("private_extensions") or ()) if hit.get("trailer") else ())
    out = []
    for block in blocks:
        if block.get("kind") != "ggep":
            continue
        for ext in block.extensions:
            if ext.id == "PUSH" and isinstance(ext.get("value"), list):
                out += [(p.ip, p.port) for p in ext.value]
    return out
