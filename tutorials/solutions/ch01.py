"""Chapter 1 solutions (checked in CI: ``p2pkit tutorial check 1`` passes on this file)."""

import struct


def build_request(index: int, begin: int, length: int) -> bytes:
    return struct.pack(">IBIII", 13, 6, index, begin, length)


def build_port(port: int) -> bytes:
    return struct.pack(">IBH", 3, 9, port)
