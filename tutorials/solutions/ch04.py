"""Chapter 4 solutions (checked in CI: ``p2pkit tutorial check 4`` passes on this file)."""

import hashlib

from p2pkit.bittorrent.wire.metainfo import Metainfo


def split_messages(stream: bytes) -> list[bytes]:
    messages, pos = [], 0
    while pos + 4 <= len(stream):
        end = pos + 4 + int.from_bytes(stream[pos:pos + 4], "big")
        if end > len(stream):
            break
        messages.append(stream[pos:end])
        pos = end
    return messages


def piece_verifies(torrent: bytes, index: int, piece: bytes) -> bool:
    return hashlib.sha1(piece).digest() == Metainfo.parse(torrent).pieces[index]
