"""The DHT server against hostile senders (issue 13): oversized datagrams are refused with their
real size; floods are dropped per source address before decoding; per-source state is capped
and forgotten once the senders stop."""

from __future__ import annotations

import asyncio
import logging
import socket

from p2pkit import bencode
from p2pkit.dht.security import RateLimiter
from p2pkit.dht.server import RECEIVE_BUFFER, RECEIVE_SIZE, DhtServer
from tests.dht.test_server import run


def ping_of(size: int) -> bytes:
    return bencode.encode({b"t": b"aa", b"y": b"q", b"q": b"ping",
                           b"a": {b"id": b"x" * 20, b"pad": b"p" * size}})


def test_oversized_datagrams_are_reported_with_their_real_size(caplog):
    """Before: a datagram over RECEIVE_SIZE reached the node cut, reported as 8192 bytes."""
    big = ping_of(20_000)

    async def main():
        server = await DhtServer.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.9", 0))
        try:
            transport.sendto(big, server.address)
            transport.sendto(ping_of(5000), server.address)  # under RECEIVE_SIZE: the node's
            await asyncio.sleep(0.3)
            client = await DhtServer.start("127.0.0.8", 0)
            done = await client.ping(server.address, timeout=5)  # still serving
            assert done.node_id == server.node.id
            client.close()
            return server.oversized, server.node.stats.get("malformed", 0)
        finally:
            transport.close()
            server.close()

    with caplog.at_level(logging.DEBUG, logger="p2pkit.dht.server"):
        oversized, malformed = run(main())
    assert (oversized, malformed) == (1, 1)
    [record] = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert f"datagram of {len(big)} bytes" in record.getMessage()
    assert str(RECEIVE_SIZE) in record.getMessage()


def test_a_flood_from_some_sources_is_dropped_before_decoding_and_others_are_served():
    """Issue 13: a per-address limit for the DHT node. A garbage flood from three addresses
    gets a burst through, then only costs a look-up each; a fourth address is answered."""
    async def main():
        server = await DhtServer.start("127.0.0.1", 0,
                                       rate_limit=RateLimiter(rate=5.0, burst=10))
        flooders = []
        try:
            for i in range(3):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((f"127.0.7.{i + 1}", 0))
                flooders.append(sock)
            for _ in range(200):
                for sock in flooders:
                    sock.sendto(b"d1:q4:ping1:t2:xx1:y1:qe garbage", server.address)
                await asyncio.sleep(0)
            await asyncio.sleep(0.3)
            client = await DhtServer.start("127.0.7.9", 0)
            done = await client.ping(server.address, timeout=5)
            client.close()
            return done, dict(server.node.stats), len(server.node.limiter)
        finally:
            for sock in flooders:
                sock.close()
            server.close()

    done, stats, tracked = run(main())
    assert done.node_id is not None
    # 3 × 10 let through by the bursts, a few more refilled while the flood was being sent
    assert 30 <= stats["malformed"] <= 45, stats
    assert stats["rate_limited"] == 600 - stats["malformed"], stats
    assert tracked == 4  # three flooders and the well-behaved client


def test_tracked_sources_are_capped_lru_and_forgotten_once_their_bucket_refills():
    async def main():
        limiter = RateLimiter(rate=20.0, burst=40, max_sources=50)
        server = await DhtServer.start("127.0.0.1", 0, rate_limit=limiter)
        try:
            for i in range(120):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((f"127.8.{i // 250}.{i % 250 + 1}", 0))
                sock.sendto(b"garbage", server.address)
                sock.close()
            await asyncio.sleep(0.3)
            most = len(limiter)
            await asyncio.sleep(limiter.refill_time)  # 2 s: every bucket full again
            server.node.handle_timer(server.node._next_maintenance)  # a maintenance round
            return most, len(limiter), server.node.stats["received"]
        finally:
            server.close()

    most, after, received = run(main())
    assert received == 120
    assert most == 50  # the cap, least recently seen forgotten first
    assert after == 0  # the flood is over: no per-source state is left


def test_the_receive_buffer_holds_a_burst_of_a_flood():
    async def main():
        server = await DhtServer.start("127.0.0.1", 0)
        try:
            return server._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        finally:
            server.close()

    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    # Linux doubles the value asked for (bookkeeping), within rmem_max
    assert run(main()) >= 2 * min(RECEIVE_BUFFER, rmem_max)
