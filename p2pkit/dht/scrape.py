"""DHT scrapes: the bloom filters of seeds and peers (BEP 33 §Bloom Filters).

BEP 33: "all implementations must be functionally equivalent to the following pseudocode" —
k = 2 hash functions taken from the SHA-1 of the IP address's bytes, m = 256 × 8 bits:
``index1 = hash[0] | hash[1] << 8``, ``index2 = hash[2] | hash[3] << 8``, each modulo m, and
``bloom[index / 8] |= 0x01 << index % 8``. "Only IP addresses (v4 or v6) may be inserted".
The size estimate is ``log(c / m) / (k * log(1 - 1/m))`` with ``c = min(m - 1, zero bits)``;
a union of filters is their bitwise OR.

The BEP's test vector: 192.0.2.0 – 192.0.2.255 and 2001:DB8:: – 2001:DB8::3E7 give a filter
whose estimate "should be 1224.9308":

>>> import ipaddress
>>> bloom = ScrapeBloomFilter()
>>> for i in range(256):
...     bloom.insert(f"192.0.2.{i}")
>>> for i in range(1000):
...     bloom.insert(str(ipaddress.IPv6Address("2001:db8::") + i))
>>> int(bloom.estimate() * 10_000) / 10_000  # the BEP's four decimals, truncated
1224.9308
>>> bytes(bloom)[:4].hex()
'f6c3f5ea'
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

from p2pkit.errors import LocalProtocolError, ParseError

__all__ = ["BLOOM_BYTES", "MAX_SCRAPE_SET", "ScrapeBloomFilter"]

#: BEP 33: "Each field must be 256 bytes in size".
BLOOM_BYTES = 256
_M = BLOOM_BYTES * 8
_K = 2
#: BEP 33: "Nodes should try to keep max(seeds,peers) below 6000" (the filter saturates near
#: 8000 entries).
MAX_SCRAPE_SET = 6000


class ScrapeBloomFilter:
    """A BEP 33 ``BFsd`` / ``BFpe`` filter: 256 bytes, two bits per inserted IP address."""

    __slots__ = ("bits",)

    def __init__(self, data: bytes | None = None) -> None:
        if data is not None and len(data) != BLOOM_BYTES:
            raise ParseError(f"a BEP 33 bloom filter is {BLOOM_BYTES} bytes, not {len(data)}",
                             protocol="krpc", path="BFsd/BFpe")
        self.bits = bytearray(data if data is not None else BLOOM_BYTES)

    def insert(self, ip: str) -> None:
        """Add an IPv4 or IPv6 address (its packed bytes are hashed, never a port)."""
        try:
            packed = ipaddress.ip_address(ip).packed
        except ValueError:
            raise LocalProtocolError(f"BEP 33 filters hold IP addresses, not {ip!r}") from None
        digest = hashlib.sha1(packed).digest()
        for index in ((digest[0] | digest[1] << 8) % _M, (digest[2] | digest[3] << 8) % _M):
            self.bits[index // 8] |= 0x01 << index % 8

    def __or__(self, other: ScrapeBloomFilter) -> ScrapeBloomFilter:
        """The union: "simply by ORing the bits of each filter"."""
        return ScrapeBloomFilter(bytes(a | b for a, b in zip(self.bits, other.bits,
                                                             strict=True)))

    def estimate(self) -> float:
        """BEP 33 §Calculating the estimate: how many addresses the filter holds."""
        zeros = _M - sum(bin(byte).count("1") for byte in self.bits)
        c = min(_M - 1, zeros)
        return math.log(c / _M) / (_K * math.log(1 - 1 / _M))

    def __bytes__(self) -> bytes:
        return bytes(self.bits)
