"""Defences of a DHT node: BEP 42 node-id restriction and per-source rate limiting.

BEP 42 §Node ID restriction: "The expression to calculate a valid ID prefix (from an IPv4
address) is: crc32c((ip & 0x030f3fff) | (r << 29)) And for an IPv6 address (ip is the high 64
bits of the address): crc32c((ip & 0x0103070f1f3f7fff) | (r << 61)) [...] The first (most
significant) 21 bits of the node ID used in the DHT MUST match the first 21 bits of the
resulting hash. The last byte of the hash MUST match the random number (r) used to generate the
hash." "Any peer on a local network address is exempt from this node ID verification."

BEP 42 §test vectors:

>>> node_id_is_valid(bytes.fromhex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"), "124.31.75.21")
True
>>> node_id_is_valid(bytes.fromhex("5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"), "21.75.31.124")
True
>>> node_id_is_valid(bytes.fromhex("5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"), "124.31.75.21")
False
"""

from __future__ import annotations

import ipaddress
import random
from collections import OrderedDict

__all__ = [
    "MAX_TRACKED_SOURCES",
    "RateLimiter",
    "crc32c",
    "node_id_for",
    "node_id_is_exempt",
    "node_id_is_valid",
]

_V4_MASK = 0x030F3FFF
_V6_MASK = 0x0103070F1F3F7FFF
#: BEP 42: "Any peer on a local network address is exempt" (10/8, 172.16/12, 192.168/16,
#: 169.254/16, 127/8).
_EXEMPT = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8")]


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the hash BEP 42 chose.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _prefix(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, r: int) -> int:
    if ip.version == 4:
        masked = (int(ip) & _V4_MASK) | (r << 29)
        return crc32c(masked.to_bytes(4, "big"))
    masked = ((int(ip) >> 64) & _V6_MASK) | (r << 61)
    return crc32c(masked.to_bytes(8, "big"))


def node_id_is_exempt(ip: str) -> bool:
    """True for the local-network addresses BEP 42 exempts."""
    address = ipaddress.ip_address(ip)
    return address.is_loopback or any(address in net for net in _EXEMPT
                                      if net.version == address.version)


def node_id_is_valid(node_id: bytes, ip: str) -> bool:
    """BEP 42: the id's first 21 bits match crc32c of the masked ``ip`` with ``r`` taken from
    the id's last byte."""
    if len(node_id) != 20:
        return False
    crc = _prefix(ipaddress.ip_address(ip), node_id[19] & 0x07)
    return (int.from_bytes(node_id[:3], "big") >> 3) == (crc >> 11)


def node_id_for(ip: str, rng: random.Random) -> bytes:
    """A random node id that BEP 42 accepts for ``ip`` (the spec's example code).

    >>> node_id_is_valid(node_id_for("124.31.75.21", random.Random(5)), "124.31.75.21")
    True
    """
    rand = rng.randrange(256)
    crc = _prefix(ipaddress.ip_address(ip), rand & 0x07)
    head = bytes([(crc >> 24) & 0xFF, (crc >> 16) & 0xFF,
                  ((crc >> 8) & 0xF8) | rng.randrange(8)])
    return head + rng.randbytes(16) + bytes([rand])


#: Source addresses the rate limiter remembers (least recently seen forgotten first).
MAX_TRACKED_SOURCES = 10_000


class RateLimiter:
    """A token bucket per source IP: ``rate`` datagrams per second, bursts of ``burst``.

    BEP 5 sets no rate; real nodes (libtorrent's ``dht_upload_rate_limit``, its per-IP
    ``dht_block_ratelimit``) drop what one address sends beyond a few per second. The
    buckets are the limiter's only per-source state, and it is bounded twice: at most
    ``max_sources`` addresses (the least recently seen one is forgotten first), and a bucket
    that has refilled to ``burst`` holds nothing worth keeping, so it is dropped (on the next
    :meth:`allow` or :meth:`expire`): once the senders stop, the table empties.

    >>> limiter = RateLimiter(rate=1.0, burst=2)
    >>> [limiter.allow("10.0.0.1", now=0.0) for _ in range(3)], limiter.allow("10.0.0.1", 1.0)
    ([True, True, False], True)
    >>> limiter.expire(now=10.0), len(limiter)
    (1, 0)
    """

    def __init__(self, *, rate: float = 20.0, burst: float = 40.0,
                 max_sources: int = MAX_TRACKED_SOURCES) -> None:
        if rate <= 0 or burst < 1 or max_sources < 1:
            raise ValueError("rate > 0, burst >= 1 and max_sources >= 1")
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        #: Seconds after which an untouched bucket is full again (and forgotten).
        self.refill_time = burst / rate
        #: ip -> (tokens, time of the last datagram), least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        #: Datagrams refused so far.
        self.refused = 0

    def __len__(self) -> int:
        """Source addresses tracked now."""
        return len(self._buckets)

    def allow(self, ip: str, now: float) -> bool:
        """One datagram from ``ip`` at ``now``: True to handle it, False to drop it."""
        buckets = self._buckets
        bucket = buckets.pop(ip, None)
        if bucket is None:
            level = self.burst
            if buckets:  # age out one full bucket per new source: O(1), keeps the table lean
                oldest = next(iter(buckets))
                if now - buckets[oldest][1] >= self.refill_time:
                    del buckets[oldest]
        else:
            level = bucket[0] + (now - bucket[1]) * self.rate
            if level > self.burst:
                level = self.burst
        if level >= 1.0:
            buckets[ip] = (level - 1.0, now)
            allowed = True
        else:
            buckets[ip] = (level, now)
            self.refused += 1
            allowed = False
        if len(buckets) > self.max_sources:
            buckets.popitem(last=False)
        return allowed

    def expire(self, now: float) -> int:
        """Forget every source whose bucket has refilled (it would start full anyway);
        returns how many were forgotten."""
        buckets = self._buckets
        dropped = 0
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] < self.refill_time:
                break
            del buckets[oldest]
            dropped += 1
        return dropped
