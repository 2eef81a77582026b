"""BEP 42 node ids (all five test vectors) and the per-source rate limiter."""

from __future__ import annotations

import random

import pytest

from p2pkit.dht.security import (
    RateLimiter,
    node_id_for,
    node_id_is_exempt,
    node_id_is_valid,
)

VECTORS = [  # BEP 42 §test vectors: IP, example node id
    ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"),
    ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


@pytest.mark.parametrize("ip, hexid", VECTORS)
def test_bep42_vectors(ip, hexid):
    node_id = bytes.fromhex(hexid)
    assert node_id_is_valid(node_id, ip)
    flipped = bytes([node_id[0] ^ 0x80]) + node_id[1:]
    assert not node_id_is_valid(flipped, ip)
    other_r = node_id[:19] + bytes([node_id[19] ^ 0x01])
    assert not node_id_is_valid(other_r, ip)


@pytest.mark.parametrize("ip", ["124.31.75.21", "2001:db8::1", "8.8.8.8"])
def test_generated_ids_are_valid(ip):
    rng = random.Random(3)
    assert all(node_id_is_valid(node_id_for(ip, rng), ip) for _ in range(20))


def test_exempt_ranges():
    assert all(node_id_is_exempt(ip) for ip in ("10.1.2.3", "172.16.0.1", "192.168.1.1",
                                                "169.254.9.9", "127.0.0.2", "::1"))
    assert not node_id_is_exempt("8.8.8.8") and not node_id_is_exempt("172.32.0.1")


def test_rate_limiter_refills_and_forgets():
    limiter = RateLimiter(rate=2.0, burst=2, max_sources=2)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("a", 0.5) and not limiter.allow("a", 0.5)
    limiter.allow("b", 0.5)
    limiter.allow("c", 0.5)  # "a" is forgotten: it starts again with a full bucket
    assert [limiter.allow("a", 0.5) for _ in range(2)] == [True, True]
    assert limiter.refused == 2


def test_rate_limiter_forgets_refilled_sources():
    limiter = RateLimiter(rate=10.0, burst=5)
    for ip in ("a", "b", "c"):
        limiter.allow(ip, 0.0)
    limiter.allow("c", 0.4)
    assert len(limiter) == 3
    assert limiter.expire(0.49) == 0  # 0.5 s to refill 5 tokens at 10/s
    assert limiter.expire(0.5) == 2 and len(limiter) == 1  # "c" was seen later
    limiter.allow("d", 0.9)  # a new source ages out the oldest refilled one on its way in
    assert len(limiter) == 1
    assert limiter.expire(10.0) == 1 and len(limiter) == 0


def test_rate_limiter_refuses_nonsense_parameters():
    for kwargs in ({"rate": 0}, {"burst": 0.5}, {"max_sources": 0}):
        with pytest.raises(ValueError):
            RateLimiter(**kwargs)
