"""Write a capture for measuring peer-wire resynchronisation: one TCP connection whose client
sends a BitTorrent handshake, ``--mib`` MiB of random bytes (garbage), then a few messages.

    python benchmarks/garbage_capture.py /tmp/garbage.pcap --mib 64
    time python -m p2pkit dissect /tmp/garbage.pcap --stats

The dissector must skip the garbage (an ``undecoded`` record, reason ``malformed``) and find the
messages after it; issue 12 asks for at least 50 MB/s.
"""

from __future__ import annotations

import argparse
import os
import random
import struct

SEGMENT = 1448


def _frame(seq: int, payload: bytes, flags: int = 0x18) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", 40000, 6881, seq & 0xFFFFFFFF, 1, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload


def write(path: str, mib: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    handshake = b"\x13BitTorrent protocol" + bytes(8) + bytes(range(20)) + b"-XX0001-" + bytes(12)
    tail = b"".join(struct.pack(">IBI", 5, 4, i) for i in range(8))  # have 0..7
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        seq = 1000
        n = 0

        def emit(payload: bytes, flags: int = 0x18) -> None:
            nonlocal seq, n
            data = _frame(seq, payload, flags)
            out.write(struct.pack("<IIII", n, 0, len(data), len(data)) + data)
            seq += len(payload) + (1 if flags & 0x02 else 0)
            n += 1

        emit(b"", 0x02)  # SYN
        emit(handshake)
        left = mib << 20
        while left:
            chunk = rng.randbytes(min(left, 1 << 20))
            left -= len(chunk)
            for i in range(0, len(chunk), SEGMENT):
                emit(chunk[i:i + SEGMENT])
        emit(tail)
        emit(b"", 0x11)  # FIN


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    write(args.path, args.mib)
    print(args.path, os.path.getsize(args.path), "bytes")
