"""MurmurHash3 x64 128 (seed 0), and the 64-bit hash of UnixFS HAMT shards.

ipfs-unixfs.md §HAMTShard: "hashType [...] MUST be murmur3-x64-64 (multihash value 0x22)",
"the first 64 bits of the murmur3-x64-128 hash" (Kubo's go-unixfs ``murmur3.Sum64``; js
``@multiformats/murmur3`` reads the same 8 bytes). The algorithm is Austin Appleby's
MurmurHash3_x64_128 (public domain), written here in Python because names are short.

>>> murmur3_x64_128(b"").hex(), murmur3_x64_64(b"hello").hex()
('00000000000000000000000000000000', 'cbd8a7b341bd9b02')
"""

from __future__ import annotations

__all__ = ["murmur3_x64_128", "murmur3_x64_64"]

_MASK = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    return k ^ (k >> 33)


def murmur3_x64_128(data: bytes, seed: int = 0) -> bytes:
    """The 16-byte hash: ``h1`` then ``h2``, each big-endian (how the js and Go libraries
    print it)."""
    h1 = h2 = seed & _MASK
    length = len(data)
    blocks = length // 16
    for i in range(blocks):
        k1 = int.from_bytes(data[16 * i:16 * i + 8], "little")
        k2 = int.from_bytes(data[16 * i + 8:16 * i + 16], "little")
        k1 = (_rotl((k1 * _C1) & _MASK, 31) * _C2) & _MASK
        h1 ^= k1
        h1 = (_rotl(h1, 27) + h2) & _MASK
        h1 = (h1 * 5 + 0x52DCE729) & _MASK
        k2 = (_rotl((k2 * _C2) & _MASK, 33) * _C1) & _MASK
        h2 ^= k2
        h2 = (_rotl(h2, 31) + h1) & _MASK
        h2 = (h2 * 5 + 0x38495AB5) & _MASK
    tail = data[16 * blocks:]
    k1 = int.from_bytes(tail[:8], "little") if tail else 0
    k2 = int.from_bytes(tail[8:16], "little") if len(tail) > 8 else 0
    if len(tail) > 8:
        h2 ^= (_rotl((k2 * _C2) & _MASK, 33) * _C1) & _MASK
    if tail:
        h1 ^= (_rotl((k1 * _C1) & _MASK, 31) * _C2) & _MASK
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return h1.to_bytes(8, "big") + h2.to_bytes(8, "big")


def murmur3_x64_64(data: bytes) -> bytes:
    """The first 8 bytes of :func:`murmur3_x64_128`: the HAMT hash, read from its first byte
    (8 bits per level at fanout 256)."""
    return murmur3_x64_128(data)[:8]
