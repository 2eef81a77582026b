"""Routing-table refresh over real TCP on 127.0.0.1 (ipfs-kad-dht §Routing Table Refresh):
a silent peer is removed, short buckets are filled through lookups, the refresh loop runs on
its interval."""

import asyncio
import random
import socket

from p2pkit.ipfs.host import Host
from p2pkit.ipfs.kad_dht import kademlia_id
from p2pkit.ipfs.kad_refresh import RefreshPolicy, key_in_bucket, refresh_forever, refresh_once
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_key_in_bucket_hashes_into_the_bucket():
    host = Host(Ed25519Identity(bytes([5]) * 32))
    table = host.dht.table
    rng = random.Random(3)
    for i in range(60):  # split the table a few times
        pid = PeerId.from_public_key(Ed25519Identity(bytes([i + 10]) * 32).public_key)
        host.dht.add_server(pid, [Multiaddr.from_text(f"/ip4/127.0.0.1/tcp/{1000 + i}")], 0.0)
    assert len(table.buckets) > 2
    for bucket in table.buckets:
        key = key_in_bucket(bucket, rng)
        assert key is not None and bucket.covers(int.from_bytes(kademlia_id(key), "big"))
    assert key_in_bucket(table.buckets[-1], rng, max_tries=0) is None


def test_refresh_removes_the_silent_and_fills_the_table():
    async def scenario():
        hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i))
                 for i in range(6)]
        for h in hosts:
            await h.listen("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        now = loop.time()
        for b in hosts[2:]:
            hosts[1].dht.add_server(b.peer_id, b.listen_addrs, now)
        hosts[0].dht.add_server(hosts[1].peer_id, hosts[1].listen_addrs, now)
        dead = PeerId.from_public_key(Ed25519Identity(bytes([99]) * 32).public_key)
        hosts[0].dht.add_server(dead, [Multiaddr.from_text(
            f"/ip4/127.0.0.1/tcp/{_closed_port()}")], now)
        policy = RefreshPolicy(stale_after=0.0, ping_timeout=2.0, lookup_timeout=10.0)
        try:
            report = await refresh_once(hosts[0], policy, rng=random.Random(1))
            known = {PeerId(p) for p, _ in hosts[0].dht.peers.values()}
            # the loop: a short interval, two reports, then cancelled
            reports = []
            task = asyncio.create_task(refresh_forever(
                hosts[2], RefreshPolicy(interval=0.05, stale_after=3600), first_delay=0,
                on_report=reports.append))
            while len(reports) < 2:
                await asyncio.sleep(0.02)
            task.cancel()
            return hosts, dead, report, known, reports
        finally:
            for h in hosts:
                await h.close()

    hosts, dead, report, known, reports = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert report.pinged == 2 and report.removed == [dead]
    assert known == {h.peer_id for h in hosts[1:]}  # learned through host 1
    assert report.added == 4 and report.queries >= 5
    assert reports[0].pinged == 0  # nobody stale within an hour
