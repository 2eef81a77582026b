"""Writing libpcap files: frames copied out of a capture, or packets made up for bytes a
loopback proxy relayed.

The file header and the per-packet record header are the readers' construct schemas
(draft-ietf-opsawg-pcap §4 "File Header", §5 "Packet Record":
``PcapFileHeaderLE``,
``PcapRecordHeaderLE``), so the layout is written once. Packets the
writer makes up (:func:`ip_packet`) are raw IPv4/IPv6 (``LINKTYPE_RAW``) built with scapy.

>>> import io
>>> from p2pkit.capture.readers import LINKTYPE_RAW, CaptureReader
>>> out = io.BytesIO()
>>> with PcapWriter(out, LINKTYPE_RAW) as w:
...     w.write(ip_packet("udp", ("127.0.0.1", 1000), ("127.0.0.2", 6881), b"hi"), 1.5)
>>> [(f.number, f.time, len(f.data)) for f in CaptureReader(io.BytesIO(out.getvalue()))]
[(1, 1.5, 30)]
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import BinaryIO

from p2pkit.capture.readers import (
    PCAP_MAGIC_MICROSECONDS,
    PcapFileHeaderLE,
    PcapRecordHeaderLE,
)

__all__ = ["MAX_SNAPLEN", "PcapWriter", "ip_packet"]

#: The snaplen the writer declares (and the largest packet it writes).
MAX_SNAPLEN = 262_144

#: TCP control bits (RFC 9293 §3.1).
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


class PcapWriter:
    """A libpcap file of one link type, written packet by packet."""

    def __init__(self, target: str | Path | BinaryIO, linktype: int) -> None:
        self._own = not hasattr(target, "write")
        self.file: BinaryIO = open(target, "wb") if self._own else target  # noqa: SIM115
        self.linktype = linktype
        self.count = 0
        self.file.write(PcapFileHeaderLE.build(dict(
            magic_number=PCAP_MAGIC_MICROSECONDS, major_version=2, minor_version=4,
            thiszone=0, sigfigs=0, snaplen=MAX_SNAPLEN, linktype=linktype)))

    def write(self, data: bytes, time: float, original_length: int | None = None) -> None:
        """One packet record (``data`` as captured, ``time`` in seconds since the epoch)."""
        if len(data) > MAX_SNAPLEN:
            raise ValueError(f"pcap: a packet of {len(data)} bytes exceeds the snaplen")
        seconds = int(time)
        micros = min(int(round((time - seconds) * 1e6)), 999_999)
        self.file.write(PcapRecordHeaderLE.build(dict(
            ts_seconds=seconds, ts_fraction=micros, captured_length=len(data),
            original_length=max(original_length or 0, len(data)))))
        self.file.write(data)
        self.count += 1

    def close(self) -> None:
        if self._own:
            self.file.close()
        else:
            self.file.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ip_packet(transport: str, src: tuple[str, int], dst: tuple[str, int], payload: bytes,
              *, seq: int = 0, ack: int = 0, flags: str = "PA") -> bytes:
    """A raw IPv4 or IPv6 packet carrying ``payload`` over UDP or TCP (``flags`` in tcpdump's
    letters: ``S``, ``SA``, ``PA``, ``FA``), checksums computed (scapy builds it)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    v6 = ipaddress.ip_address(src[0]).version == 6
    network = IPv6(src=src[0], dst=dst[0]) if v6 else IP(src=src[0], dst=dst[0])
    if transport == "udp":
        layer = UDP(sport=src[1], dport=dst[1])
    else:
        bits = 0
        for letter in flags:
            bits |= TCP_FLAGS[letter]
        layer = TCP(sport=src[1], dport=dst[1], seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                    flags=bits, window=65535)
    return bytes(network / layer / payload)
