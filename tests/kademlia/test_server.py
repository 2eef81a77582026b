"""The asyncio UDP driver on loopback: real sockets, the same node core."""

from __future__ import annotations

import asyncio
import random

from p2pkit.kademlia import items
from p2pkit.kademlia.server import DhtServer


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def network(n: int) -> list[DhtServer]:
    servers = [await DhtServer.start(f"127.0.0.{i + 1}", 0, rng=random.Random(i))
               for i in range(n)]
    for server in servers[1:]:
        await server.bootstrap([servers[0].address], timeout=10)
    return servers


def test_ping_and_bootstrap_over_udp():
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
    run(main())


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
