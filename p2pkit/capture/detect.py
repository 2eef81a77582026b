"""Protocol detection by content, not ports, with optional port overrides (``--decode-as``).

Protocol-blind: every protocol in :mod:`p2pkit.registry` with a stream decoder brings its own
detector (a BitTorrent handshake, ``GNUTELLA CONNECT``, an HTTP tracker request …), asked in
the registry's priority order; the first that is sure wins, and one that needs more bytes
makes the dissector wait. Datagrams are recognised the same way, one by one, by
:class:`~p2pkit.capture.datagrams.DatagramDissector`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pkit import registry
from p2pkit.errors import ParseError

__all__ = ["DecodeAs", "decode_as_protocols", "detect_stream", "parse_decode_as"]


@dataclass(frozen=True)
class DecodeAs:
    """A port override: ``tcp.port==6881,bittorrent`` (Wireshark's ``-d`` syntax)."""

    transport: str
    port: int
    protocol: str


def decode_as_protocols(transport: str) -> tuple[str, ...]:
    """Names ``--decode-as`` accepts for ``tcp`` (stream decoders) or ``udp`` (datagrams).

    >>> decode_as_protocols("udp")
    ('bt-tracker', 'gnutella', 'bt-dht', 'kademlia-rpcudp', 'emule-kad', 'bt-utp')
    """
    chosen = registry.stream_protocols() if transport == "tcp" else registry.datagram_protocols()
    return tuple(d.name for d in chosen)


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
    known = decode_as_protocols(transport)
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
    for descriptor in registry.stream_protocols():
        if descriptor.stream_detector is None:
            continue
        verdict = registry.load(descriptor.stream_detector)(
            head, other=other, complete=complete, from_start=from_start)
        if verdict:
            return descriptor.name
        if verdict is None and not complete:
            return None  # a detector before the others needs more bytes to be sure
    return ""
