"""Protocol detection by content, not ports, with optional port overrides (``--decode-as``).

Streams are recognised by how a direction starts (a BitTorrent handshake, ``GNUTELLA CONNECT``,
an HTTP tracker request …) or, for captures that begin mid-connection, by a run of plausible
peer-wire messages. Datagrams are recognised one by one (a bencoded KRPC dictionary, the UDP
tracker protocol id, a uTP header), with state kept by the dissector for protocols whose later
packets carry no marker (UDP tracker connection ids, uTP connection ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pkit.capture.bittorrent import HANDSHAKE, HANDSHAKE_SEARCH_WINDOW, looks_like_peer_messages
from p2pkit.errors import ParseError

__all__ = ["DecodeAs", "detect_stream", "parse_decode_as"]

#: Protocol names accepted by ``--decode-as`` (Wireshark's filter names where one exists).
STREAM_PROTOCOLS = ("bittorrent", "bt-tracker-http", "gnutella")
DATAGRAM_PROTOCOLS = ("bt-dht", "bt-tracker", "bt-utp")

_TRACKER_REQUEST = re.compile(rb"GET /[^ ?]*(announce|scrape)[^ ]*\?|GET /[^ ]*[?&]info_hash=")
_GNUTELLA_HTTP = re.compile(rb"(GET|HEAD) /(uri-res/|get/|gnutella/)")


@dataclass(frozen=True)
class DecodeAs:
    """A port override: ``tcp.port==6881,bittorrent`` (Wireshark's ``-d`` syntax)."""

    transport: str
    port: int
    protocol: str


def parse_decode_as(text: str) -> DecodeAs:
    """Parse ``tcp.port==P,PROTO`` / ``udp.port==P,PROTO``.

    >>> parse_decode_as("udp.port==6881,bt-utp")
    DecodeAs(transport='udp', port=6881, protocol='bt-utp')
    """
    m = re.fullmatch(r"(tcp|udp)\.port==(\d{1,5}),([a-z0-9-]+)", text.strip())
    if not m or int(m.group(2)) > 65535:
        raise ParseError(f"expected tcp.port==PORT,PROTOCOL or udp.port==PORT,PROTOCOL, got {text!r}",
                         protocol="decode-as")
    transport, port, protocol = m.group(1), int(m.group(2)), m.group(3)
    known = STREAM_PROTOCOLS if transport == "tcp" else DATAGRAM_PROTOCOLS
    if protocol not in known:
        raise ParseError(f"unknown {transport} protocol {protocol!r} (known: {', '.join(known)})",
                         protocol="decode-as")
    return DecodeAs(transport, port, protocol)


def detect_stream(head: bytes, *, other: str | None = None, complete: bool = False,
                  from_start: bool = True) -> str | None:
    """The protocol of a TCP direction that begins with ``head``.

    ``other`` is the protocol already found for the opposite direction; ``complete`` says no
    more bytes will come (decide now). Returns ``""`` for "not ours", ``None`` for "need more
    bytes".

    >>> detect_stream(b"\\x13BitTorrent protocol" + bytes(48))
    'bittorrent'
    >>> detect_stream(b"GET /announce?info_hash=%12 HTTP/1.1\\r\\n")
    'bt-tracker-http'
    >>> detect_stream(b"HTTP/1.1 200 OK\\r\\n", other="bt-tracker-http")
    'bt-tracker-http'
    >>> detect_stream(b"SSH-2.0-OpenSSH", complete=True)
    ''
    """
    if head.startswith(HANDSHAKE[: len(head)]) and len(head) < len(HANDSHAKE) and not complete:
        return None
    if head.startswith(HANDSHAKE):
        return "bittorrent"
    if head.startswith((b"GNUTELLA", b"GIV ")) or _GNUTELLA_HTTP.match(head):
        return "gnutella"
    if _TRACKER_REQUEST.match(head):
        return "bt-tracker-http"
    if head.startswith(b"HTTP/1.") and other in ("bt-tracker-http", "gnutella"):
        return other
    if other == "bittorrent" or (not from_start and looks_like_peer_messages(head)):
        return "bittorrent"
    window = HANDSHAKE_SEARCH_WINDOW + len(HANDSHAKE)
    if HANDSHAKE in head[:window]:
        return "bittorrent"  # after an MSE/PE preamble that selected plaintext
    if len(head) < window and not complete:
        return None
    if looks_like_peer_messages(head):
        return "bittorrent"
    return ""
