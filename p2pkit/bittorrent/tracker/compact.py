"""Compact peer addresses shared by the HTTP and UDP tracker protocols (BEP 23, BEP 7, BEP 15).

BEP 23: "the peers list is replaced by a peers string with 6 bytes per peer. The first four
bytes are the host (in network byte order), the last two bytes are the port (again in network
byte order)." BEP 7: "peers6 [...] a string containing 18 bytes for each peer, with the first
16 bytes being the IPv6 address and the last 2 bytes being the port, in network byte order."
BEP 15 uses the same 6- and 18-byte pairs in its announce response.

The message schemas live in :mod:`p2pkit.bittorrent.tracker.http` (BEP 3 §trackers, BEP 23,
BEP 7, BEP 48) and :mod:`p2pkit.bittorrent.tracker.udp` (BEP 15, BEP 41).

>>> peer = CompactPeer.parse(bytes.fromhex("7f0000021ae1"))
>>> peer.ip, peer.port
(IPv4Address('127.0.0.2'), 6881)
>>> CompactPeer.build({"ip": "127.0.0.2", "port": 6881}).hex()
'7f0000021ae1'
"""

from __future__ import annotations

import construct
from construct import Bytes, GreedyRange, Terminated

from p2pkit.addresses import CompactPeer, CompactPeer6, IPv4Address, IPv6Address
from p2pkit.errors import ParseError
from p2pkit.schema import Schema

__all__ = [
    "CompactPeer",
    "CompactPeer6",
    "CompactPeers",
    "CompactPeers6",
    "IPv4Address",
    "IPv6Address",
    "InfoHash",
    "PeerId",
    "parse_compact_peers",
]


#: BEP 3: "info_hash: The 20 byte sha1 hash of the bencoded form of the info value".
InfoHash = Bytes(20)
#: BEP 3: "peer_id: A string of length 20 which this downloader uses as its id."
PeerId = Bytes(20)

# fmt: off
#: A whole BEP 23 ``peers`` string: a multiple of 6 bytes.
CompactPeers = Schema(construct.FocusedSeq(
    "peers",
    "peers" / GreedyRange(CompactPeer),
    Terminated,
), protocol="bt-tracker", name="CompactPeers")
#: A whole BEP 7 ``peers6`` string: a multiple of 18 bytes.
CompactPeers6 = Schema(construct.FocusedSeq(
    "peers",
    "peers" / GreedyRange(CompactPeer6),
    Terminated,
), protocol="bt-tracker", name="CompactPeers6")
# fmt: on


def parse_compact_peers(data: bytes, *, ipv6: bool = False) -> list[construct.Container]:
    """Split a compact peer string into ``Container(ip, port)`` items.

    The string must be a whole number of 6-byte (18 with ``ipv6``) entries.

    >>> [str(p.ip) for p in parse_compact_peers(bytes.fromhex("7f0000021ae1" "7f0000031ae2"))]
    ['127.0.0.2', '127.0.0.3']
    >>> parse_compact_peers(b"12345")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: bt-tracker, offset 0: compact peer string of 5 bytes is not a multiple of 6
    """
    size = 18 if ipv6 else 6
    if len(data) % size:
        raise ParseError(f"compact peer string of {len(data)} bytes is not a multiple of {size}",
                         protocol="bt-tracker", offset=len(data) - len(data) % size)
    return list((CompactPeers6 if ipv6 else CompactPeers).parse(data))
