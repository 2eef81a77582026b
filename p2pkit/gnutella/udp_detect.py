"""Recognising a Gnutella descriptor sent as one UDP datagram by its header (Gnutella 0.4 §2.2,
0.6 §UDP): the ``gnutella`` descriptor's datagram detector, in a module of its own so that
detection (asked of every datagram a capture's earlier protocols did not take) imports the
descriptor constants only, none of the dissector's stream side.
"""

from __future__ import annotations

from p2pkit.gnutella.descriptors import (
    HEADER_AFTER_GUID,
    HEADER_LENGTH,
    MAX_PAYLOAD_LENGTH,
    PAYLOADS,
)

__all__ = ["MAX_UDP_TTL_HOPS", "detect_gnutella_udp", "udp_header"]

#: TTL + hops above this is not taken for Gnutella over UDP (0.6 keeps TTL + hops <= 7; some
#: servents allow a little more; gtk-gnutella marks a deflated UDP payload with TTL's top bit).
MAX_UDP_TTL_HOPS = 16


def udp_header(payload: bytes) -> tuple[int, int, int, int] | None:
    """``(payload type, TTL without its top bit, hops, payload length)`` of a datagram's
    descriptor header (0.4 §2.2), or None when the datagram is shorter than a header."""
    if len(payload) < HEADER_LENGTH:
        return None
    kind, ttl, hops, length = HEADER_AFTER_GUID.unpack_from(payload, 16)
    return kind, ttl & 0x7F, hops, length


def detect_gnutella_udp(payload: bytes) -> bool:
    """A datagram that is exactly one descriptor: a 23-byte header whose payload length is the
    rest of the datagram, a small TTL + hops (Gnutella 0.4 §2.2 and 0.6 §UDP).

    >>> ping = bytes(16) + bytes([0x00, 1, 0]) + (0).to_bytes(4, "little")
    >>> detect_gnutella_udp(ping), detect_gnutella_udp(ping + b"x"), detect_gnutella_udp(b"d1:")
    (True, False, False)

    A known descriptor cut short is taken too (to be reported as truncated).
    """
    size = len(payload)
    if size < HEADER_LENGTH:
        return False
    # (udp_header inline: the detector is asked of nearly every datagram)
    kind, ttl, hops, length = HEADER_AFTER_GUID.unpack_from(payload, 16)
    if (ttl & 0x7F) + hops > MAX_UDP_TTL_HOPS:
        return False
    return length == size - HEADER_LENGTH or cut_short(kind, length, size)


def cut_short(kind: int, length: int, size: int) -> bool:
    """A known descriptor whose payload runs past the end of the datagram (truncated)."""
    return kind in PAYLOADS and size - HEADER_LENGTH < length <= MAX_PAYLOAD_LENGTH
