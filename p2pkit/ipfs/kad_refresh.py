"""Routing-table refresh for the kad-dht (ipfs-kad-dht.md §Routing Table Refresh).

"When using periodic refresh, DHT Servers SHOULD perform a Routing Table Refresh every 10
minutes. During this process, the server sends a ping request to all nodes it hasn't heard
from recently (e.g., in the last 5 minutes). Any peer that fails to respond MUST be removed
from the Routing Table. After removing unresponsive peers, any buckets that are not full MUST
be replenished [...] by executing a FIND_NODE RPC message with a randomly generated Peer ID
matching the bucket. FIND_NODE requests should only be run for buckets up to the last
non-empty bucket. Finally, the refresh process concludes by executing a FIND_NODE request for
the local node's Peer ID."

The ping is the kad-dht ``PING`` message (what js-libp2p's routing table sends to old
contacts). Buckets are the shared :class:`p2pkit.kademlia.routing.RoutingTable`'s. A server
finds the peers closest to the SHA2-256 of a ``FIND_NODE`` key, so a bucket is aimed at with
a random key whose hash falls in it (:func:`key_in_bucket`, a bounded search like
go-libp2p-kad-dht's generation of peer ids with a given common prefix; deep buckets that
would take more than :data:`MAX_KEY_TRIES` hashes are skipped). Every server that answered a
refresh lookup enters the table.
The intervals are :class:`RefreshPolicy` parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

from p2pkit.errors import P2PKitError
from p2pkit.ipfs.kad_dht import kademlia_id
from p2pkit.ipfs.kad_lookup import lookup
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["MAX_KEY_TRIES", "RefreshPolicy", "RefreshReport", "key_in_bucket",
           "refresh_forever", "refresh_once"]

#: Hashes tried to find a key that falls in a bucket (a bucket 20 bits deep needs ~10^6).
MAX_KEY_TRIES = 1 << 18


def key_in_bucket(bucket: Any, rng: random.Random, max_tries: int = MAX_KEY_TRIES
                  ) -> bytes | None:
    """A random 32-byte key whose Kademlia id (SHA2-256) lies in ``bucket``'s range, or None
    when none was found within ``max_tries`` hashes."""
    width = (bucket.high - bucket.low).bit_length() - 1
    shift = width if bucket.high - bucket.low == 1 << width else 0
    for _ in range(max_tries):
        key = rng.randbytes(32)
        number = int.from_bytes(kademlia_id(key), "big")
        if (number >> shift) == (bucket.low >> shift) if shift else bucket.covers(number):
            return key
    return None


@dataclass(frozen=True)
class RefreshPolicy:
    """§Routing Table Refresh's intervals (seconds) and the bounds of one refresh."""

    #: "perform a Routing Table Refresh every 10 minutes".
    interval: float = 600.0
    #: "nodes it hasn't heard from recently (e.g., in the last 5 minutes)" are pinged.
    stale_after: float = 300.0
    ping_timeout: float = 5.0
    lookup_timeout: float = 30.0
    #: Bucket lookups run by one refresh (the self lookup comes on top).
    max_bucket_lookups: int = 16
    alpha: int = 3


@dataclass
class RefreshReport:
    """What one refresh did."""

    pinged: int = 0
    removed: list[PeerId] = field(default_factory=list)
    bucket_lookups: int = 0
    added: int = 0
    queries: int = 0


async def _kad_ping(host: Any, pid: PeerId, addrs: list[Multiaddr], timeout: float) -> bool:
    target = addrs[0] if addrs[0].peer_id is not None else addrs[0].encapsulate(
        Multiaddr((("p2p", pid.multihash),)))
    try:
        connection = await host.dial(target, timeout=timeout)
        try:
            answer = await connection.kad_request({"type": "PING"}, timeout=timeout)
        finally:
            await connection.close()
    except (P2PKitError, OSError, TimeoutError):
        return False
    return answer.type == "PING"


def _peers_of(host: Any, kid: bytes) -> tuple[PeerId, list[Multiaddr]] | None:
    entry = host.dht.peers.get(kid)
    if entry is None:
        return None
    addrs = []
    for raw in entry[1]:
        with contextlib.suppress(P2PKitError):
            addrs.append(Multiaddr.from_bytes(raw))
    return PeerId(entry[0]), addrs


async def refresh_once(host: Any, policy: RefreshPolicy = RefreshPolicy(), *,
                       rng: random.Random | None = None) -> RefreshReport:
    """One refresh of ``host``'s routing table: ping the stale, drop the silent, fill the
    buckets short of ``k`` with lookups, then look up our own id."""
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    table = host.dht.table
    report = RefreshReport()
    now = loop.time()
    stale = [e for e in table if now - e.last_seen >= policy.stale_after]
    checks = []
    for entry in stale:
        known = _peers_of(host, entry.id)
        if known is None or not known[1]:
            checks.append((entry, None))
            continue
        checks.append((entry, _kad_ping(host, *known, policy.ping_timeout)))
    report.pinged = sum(1 for _, c in checks if c is not None)
    answers = await asyncio.gather(*(c for _, c in checks if c is not None))
    results = iter(answers)
    for entry, check in checks:
        alive = next(results) if check is not None else False
        if alive:
            table.seen_response(entry.id, entry.addr, loop.time())
            continue
        known = host.dht.peers.pop(entry.id, None)
        table.remove(entry.id)
        if known is not None:
            report.removed.append(PeerId(known[0]))

    def learn(found: Any) -> None:
        report.queries += found.queries
        for pid, addrs in found.closest:
            before = len(table)
            host.dht.add_server(pid, addrs, loop.time())
            report.added += len(table) - before

    buckets = list(table.buckets)
    last = max((i for i, b in enumerate(buckets) if b.nodes), default=-1)
    short = [b for b in buckets[: last + 1] if len(b.nodes) < table.k]
    for bucket in short[: policy.max_bucket_lookups]:
        key = key_in_bucket(bucket, rng)
        if key is None:
            continue
        report.bucket_lookups += 1
        learn(await lookup(host, key, alpha=policy.alpha, timeout=policy.lookup_timeout,
                           query_timeout=policy.ping_timeout))
    learn(await lookup(host, host.peer_id.multihash, alpha=policy.alpha,
                       timeout=policy.lookup_timeout, query_timeout=policy.ping_timeout))
    return report


async def refresh_forever(host: Any, policy: RefreshPolicy = RefreshPolicy(), *,
                          rng: random.Random | None = None, first_delay: float | None = None,
                          on_report: Any = None) -> None:
    """Refresh every ``policy.interval`` seconds until cancelled (the first after
    ``first_delay``, by default one interval); ``on_report(report)`` sees each result."""
    await asyncio.sleep(policy.interval if first_delay is None else first_delay)
    while True:
        report = await refresh_once(host, policy, rng=rng)
        if on_report is not None:
            on_report(report)
        await asyncio.sleep(policy.interval)
