"""Iterative kad-dht lookups over real TCP on 127.0.0.1: five p2pkit hosts in a chain (each
knows only the next), a GET_PROVIDERS lookup walks the chain to the provider's record."""

import asyncio
import random
import time

from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.kad_lookup import lookup
from p2pkit.ipfs.keys import Ed25519Identity


def test_lookup_walks_a_chain():
    async def scenario():
        hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i))
                 for i in range(5)]
        for h in hosts:
            await h.listen("127.0.0.1", 0)
        now = time.monotonic()
        for a, b in zip(hosts, hosts[1:]):
            a.dht.add_server(b.peer_id, b.listen_addrs, now)
        key = Cid.of(b"chain").multihash
        hosts[-1].dht.add_provider(key, hosts[-1].peer_id, [bytes(hosts[-1].listen_addrs[0])],
                                   now)
        try:
            found = await lookup(hosts[0], key, kind="GET_PROVIDERS", k=4, alpha=1,
                                 timeout=20)
            nodes = await lookup(hosts[0], hosts[-1].peer_id.multihash, timeout=20)
            return hosts, found, nodes
        finally:
            for h in hosts:
                await h.close()

    hosts, found, nodes = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert list(found.providers) == [hosts[-1].peer_id]
    assert found.hops == 4 and found.failures == 0  # one more host known at each hop
    assert {pid for pid, _ in nodes.closest} == {h.peer_id for h in hosts[1:]}
