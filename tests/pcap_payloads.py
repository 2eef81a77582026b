"""Test support: payload bytes out of the committed real captures, via scapy's reader.

This is deliberately simple (no gap handling, no mid-stream resynchronisation): it gives the
schema tests real wire bytes. The dissector's own reassembly lives in ``p2pkit.capture`` and is
tested separately.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

CAPTURES = Path(__file__).parent / "data" / "captures"

Endpoint = tuple[str, int]


def _ip(pkt):
    if IP in pkt:
        return pkt[IP]
    if IPv6 in pkt:
        return pkt[IPv6]
    return None


@lru_cache(maxsize=16)
def tcp_streams(name: str) -> dict[tuple[Endpoint, Endpoint], bytes]:
    """Each direction of each TCP connection in ``captures/name``: ``(src, dst) -> bytes``.

    Segments are ordered by sequence number and retransmissions dropped. A direction whose
    capture misses a segment is cut at the first gap.
    """
    segments: dict[tuple[Endpoint, Endpoint], dict[int, bytes]] = defaultdict(dict)
    isn: dict[tuple[Endpoint, Endpoint], int] = {}
    with PcapReader(str(CAPTURES / name)) as reader:
        for pkt in reader:
            ip = _ip(pkt)
            if ip is None or TCP not in pkt:
                continue
            tcp = pkt[TCP]
            key = ((ip.src, tcp.sport), (ip.dst, tcp.dport))
            if tcp.flags & 0x02:  # SYN
                isn[key] = tcp.seq + 1
                continue
            payload = bytes(tcp.payload)
            if payload:
                segments[key].setdefault(tcp.seq, payload)
    streams = {}
    for key, segs in segments.items():
        pos = isn.get(key, min(segs))
        out = bytearray()
        for seq in sorted(segs):
            data = segs[seq]
            if seq > pos:
                break  # gap: stop here
            skip = pos - seq
            if skip < len(data):
                out += data[skip:]
                pos += len(data) - skip
        streams[key] = bytes(out)
    return streams


@lru_cache(maxsize=16)
def udp_datagrams(name: str) -> list[tuple[Endpoint, Endpoint, bytes]]:
    """Every UDP datagram in ``captures/name`` in capture order: ``(src, dst, payload)``."""
    out = []
    with PcapReader(str(CAPTURES / name)) as reader:
        for pkt in reader:
            ip = _ip(pkt)
            if ip is None or UDP not in pkt:
                continue
            udp = pkt[UDP]
            out.append(((ip.src, udp.sport), (ip.dst, udp.dport), bytes(udp.payload)))
    return out


@lru_cache(maxsize=16)
def tcp_segments(name: str) -> list[tuple[Endpoint, Endpoint, bytes]]:
    """Every TCP payload in ``captures/name`` in capture order, ``(src, dst, payload)``, with
    retransmissions (a sequence number seen before) dropped: replays both directions of a
    connection in the order the two peers saw them."""
    seen: set[tuple[Endpoint, Endpoint, int]] = set()
    out = []
    with PcapReader(str(CAPTURES / name)) as reader:
        for pkt in reader:
            ip = _ip(pkt)
            if ip is None or TCP not in pkt:
                continue
            tcp = pkt[TCP]
            payload = bytes(tcp.payload)
            key = ((ip.src, tcp.sport), (ip.dst, tcp.dport), tcp.seq)
            if payload and key not in seen:
                seen.add(key)
                out.append((key[0], key[1], payload))
    return out
