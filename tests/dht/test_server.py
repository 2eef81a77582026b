"""The asyncio UDP driver on loopback: real sockets, the same node core."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from p2pkit.dht import items, krpc
from p2pkit.dht.security import RateLimiter
from p2pkit.dht.server import READ_BATCH, DhtServer, new_event_loop


def run(coroutine, loop: str = "asyncio"):
    with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
        return runner.run(asyncio.wait_for(coroutine, 60))


LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("uvloop"), reason="uvloop (optional)"))]


async def network(n: int) -> list[DhtServer]:
    servers = [await DhtServer.start(f"127.0.0.{i + 1}", 0, rng=random.Random(i))
               for i in range(n)]
    for server in servers[1:]:
        await server.bootstrap([servers[0].address], timeout=10)
    return servers


@pytest.mark.parametrize("loop", LOOPS)
def test_ping_and_bootstrap_over_udp(loop):
    async def main():
        servers = await network(3)
        try:
            done = await servers[2].ping(servers[1].address, timeout=5)
            assert done.node_id == servers[1].node.id
            found = await servers[2].find_node(servers[1].node.id, timeout=10)
            assert found.nodes[0].id == servers[1].node.id
        finally:
            for s in servers:
                s.close()
    run(main(), loop)


def test_announce_get_peers_put_get_over_udp():
    async def main():
        servers = await network(4)
        try:
            info_hash = bytes([0x42]) * 20
            stored = await servers[1].announce_peer(info_hash, 6000, timeout=20)
            assert stored.stored >= 2 and not stored.errors
            found = await servers[3].get_peers(info_hash, timeout=20)
            assert ("127.0.0.2", 6000) in found.peers
            seed = bytes([3]) * 32
            put = await servers[2].put(b"over udp", seed=seed, seq=1, timeout=20)
            assert put.stored >= 2
            target = items.mutable_target(items.public_key(seed))
            got = await servers[3].get(target, timeout=20)
            assert (got.item.v, got.item.seq) == (b"over udp", 1)
        finally:
            for s in servers:
                s.close()
    run(main())


def test_garbage_does_not_stop_the_server():
    async def main():
        [server] = await network(1)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.9", 0))
        try:
            for junk in (b"d", b"\xff" * 2000, b"d1:ad2:id3:abce1:q4:ping1:t1:x1:y1:qe"):
                transport.sendto(junk, server.address)
            await asyncio.sleep(0.2)
            client = await DhtServer.start("127.0.0.8", 0)
            done = await client.ping(server.address, timeout=5)
            assert done.node_id == server.node.id
            assert server.node.stats["malformed"] == 3 and server.internal_errors == 0
            client.close()
        finally:
            transport.close()
            server.close()
    run(main())


async def burst(server: DhtServer, n: int, wait: float = 5.0) -> set[bytes]:
    """Send ``n`` pings at once from one socket; the transaction ids answered by a response."""
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.5", 0))
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        for i in range(n):
            client.sendto(krpc.encode(krpc.query("ping", i.to_bytes(2, "big"), id=bytes(20))),
                          server.address)
        answered: set[bytes] = set()
        deadline = loop.time() + wait
        while len(answered) < n and loop.time() < deadline:
            try:
                msg = krpc.decode(client.recv(4096))
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            if msg.y == "r":
                answered.add(msg.t)
        return answered
    finally:
        client.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_burst_is_read_in_batches_and_answered_in_full(loop):
    n = 3 * READ_BATCH + 7

    async def main():
        server = await DhtServer.start("127.0.0.1", 0, rng=random.Random(1),
                                       rate_limit=RateLimiter(rate=1e9, burst=1e9))
        try:
            assert len(await burst(server, n)) == n
            assert server.node.stats["queries_answered"] == n
        finally:
            server.close()
    run(main(), loop)


def test_batched_reads_keep_the_per_source_rate_limit():
    async def main():
        server = await DhtServer.start("127.0.0.1", 0, rng=random.Random(1))
        try:
            limiter = server.node.limiter
            answered = await burst(server, 100, wait=1.0)
            # the default bucket lets a burst of limiter.burst through, then ~rate per second
            assert limiter.burst <= len(answered) < limiter.burst + 2 * limiter.rate
            assert server.node.stats["rate_limited"] == 100 - len(answered)
        finally:
            server.close()
    run(main())


class WouldBlock:
    """A socket whose first ``blocked`` sends fail with EAGAIN (a full send buffer)."""

    def __init__(self, sock: socket.socket, blocked: int) -> None:
        self.sock = sock
        self.blocked = blocked

    def sendto(self, data: bytes, addr) -> int:
        if self.blocked:
            self.blocked -= 1
            raise BlockingIOError
        return self.sock.sendto(data, addr)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_sends_that_would_block_wait_in_the_backlog():
    async def main():
        server = await DhtServer.start("127.0.0.1", 0, rng=random.Random(1),
                                       rate_limit=RateLimiter(rate=1e9, burst=1e9))
        server._sock = WouldBlock(server._sock, blocked=3)
        try:
            assert len(await burst(server, 20)) == 20
            assert server.send_drops == 0 and not server._backlog
        finally:
            server.close()
    run(main())
