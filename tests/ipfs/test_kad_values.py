"""PUT_VALUE/GET_VALUE lookups over real TCP on 127.0.0.1: eight p2pkit hosts, an IPNS record
put on the closest servers, a newer one held by two only; a GET_VALUE lookup with a quorum
returns the newer and corrects the servers that answered the stale one (libp2p kad-dht
§Value retrieval, ipfs-kad-dht §Quorum and §Entry Correction)."""

import asyncio
import random
import time

from p2pkit.ipfs.dht_records import pk_key
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.ipns import create_record, routing_key
from p2pkit.ipfs.kad_values import get_value, put_value, send_put_value
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.peer_id import PeerId

HOUR = 3600 * 10**9


def test_put_get_quorum_and_correction():
    publisher = Ed25519Identity(bytes([77]) * 32)
    name = PeerId.from_public_key(publisher.public_key)
    key = routing_key(name)
    old = create_record(publisher, b"/ipfs/old", 1, time.time_ns() + HOUR)
    new = create_record(publisher, b"/ipfs/new", 2, time.time_ns() + HOUR)

    async def scenario():
        hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i))
                 for i in range(8)]
        for h in hosts:
            await h.listen("127.0.0.1", 0)
        now = asyncio.get_running_loop().time()
        for a in hosts:
            for b in hosts:
                if a is not b:
                    a.dht.add_server(b.peer_id, b.listen_addrs, now)
        try:
            stored = await put_value(hosts[0], key, old, k=6, timeout=20)
            # two servers learn the newer record directly
            fresh = [h for h in hosts[1:] if h.peer_id in stored][:2]
            for h in fresh:
                assert await send_put_value(hosts[0], h.peer_id, h.listen_addrs, key, new, 5)
            got = await get_value(hosts[7], key, quorum=5, k=6, timeout=20)
            holding = {h.peer_id: h.dht.values.get(key, asyncio.get_running_loop().time())
                       for h in hosts}
            pk = await put_value(hosts[2], pk_key(hosts[2].peer_id), hosts[2].identity.public_key,
                                 k=6, timeout=20)
            pk_got = await get_value(hosts[5], pk_key(hosts[2].peer_id), k=6, timeout=20)
            return hosts, stored, fresh, got, holding, pk, pk_got
        finally:
            for h in hosts:
                await h.close()

    hosts, stored, fresh, got, holding, pk, pk_got = asyncio.run(
        asyncio.wait_for(scenario(), 60))
    assert len(stored) == 6  # the 6 closest echoed the record
    assert got.value == new and got.answers >= 5
    assert set(got.from_peers) >= {h.peer_id for h in fresh} - {hosts[7].peer_id}
    assert got.corrected  # servers that answered the old record were given the new one
    for pid in got.corrected:
        assert holding[pid] == new
    assert holding[hosts[7].peer_id] == new  # the getter keeps the best too
    assert len(pk) == 6 and pk_got.value == hosts[2].identity.public_key
    assert pk_got.answers >= 1 and pk_got.queries <= 3  # quorum 1 for /pk/: an early stop
