"""A local kad-dht network of p2pkit hosts, inside ``unshare -n`` on loopback: 40 hosts, each
knowing three others; one provides a CID to the k closest servers it finds with an iterative
FIND_NODE, another finds it with an iterative GET_PROVIDERS (the shared Kademlia lookup).

    unshare -n sh -c 'ip link set lo up && exec python tests/interop/test_ipfs_dht_network.py'
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.interop
HOSTS = 40
TIMEOUT = 90


async def scenario() -> dict:
    from p2pkit.ipfs.cid import Cid
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.kad_lookup import lookup
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.multiaddr import Multiaddr

    rng = random.Random(4)
    hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i)) for i in range(HOSTS)]
    addrs = [await h.listen("127.0.0.1", 0) for h in hosts]
    now = time.monotonic()
    for i, h in enumerate(hosts):  # a ring plus two random links each
        for j in {(i + 1) % HOSTS, rng.randrange(HOSTS), rng.randrange(HOSTS)} - {i}:
            h.dht.add_server(hosts[j].peer_id, [hosts[j].listen_addrs[0]], now)
    try:
        content = Cid.of(b"a block provided in a 40-host DHT")
        provider, seeker = hosts[0], hosts[HOSTS // 2]
        started = time.monotonic()
        closest = await lookup(provider, content.multihash, kind="FIND_NODE", timeout=30)
        stored = 0
        for pid, peer_addrs in closest.closest:
            target = peer_addrs[0].encapsulate(Multiaddr((("p2p", pid.multihash),)))
            connection = await provider.dial(target, timeout=5)
            await connection.kad_request({"type": "ADD_PROVIDER", "key": content.multihash,
                                          "providerPeers": [{"id": provider.peer_id.multihash,
                                                             "addrs": [bytes(addrs[0])]}]})
            await connection.close()
            stored += 1
        provide_time = time.monotonic() - started
        started = time.monotonic()
        found = await lookup(seeker, content.multihash, kind="GET_PROVIDERS", timeout=30)
        return {"closest": len(closest.closest), "provide_queries": closest.queries,
                "stored_on": stored, "provide_seconds": round(provide_time, 3),
                "find_queries": found.queries, "find_hops": found.hops,
                "find_failures": found.failures,
                "find_seconds": round(time.monotonic() - started, 3),
                "providers": [str(p) for p in found.providers],
                "provider_id": str(provider.peer_id)}
    finally:
        for h in hosts:
            await h.close()


def _main() -> None:
    print(json.dumps(asyncio.run(asyncio.wait_for(scenario(), TIMEOUT - 10))))


@pytest.fixture(scope="module")
def observations(netns):
    done = netns([sys.executable, __file__], timeout=TIMEOUT, cwd=str(ROOT),
                 env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_provide_then_find_through_iterative_lookups(observations):
    assert observations["closest"] >= 10 and observations["stored_on"] == observations["closest"]
    assert observations["providers"] == [observations["provider_id"]]
    assert observations["find_failures"] == 0 and observations["find_queries"] >= 1


if __name__ == "__main__":
    _main()
