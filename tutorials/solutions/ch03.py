"""Chapter 3 solution (checked in CI: ``p2pkit tutorial check 3`` passes on this file)."""

import socket
import struct


def decode_compact(peers: bytes) -> list[tuple[str, int]]:
    return [(socket.inet_ntoa(peers[i:i + 4]), struct.unpack(">H", peers[i + 4:i + 6])[0])
            for i in range(0, len(peers), 6)]
