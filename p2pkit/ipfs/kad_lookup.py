"""Iterative kad-dht lookups over a :class:`~p2pkit.ipfs.host.Host` (the asyncio driver).

The algorithm is :class:`p2pkit.kademlia.lookup.Lookup` (the same the Mainline DHT uses), in
the 256-bit space of SHA2-256 identifiers with k = 20 (ipfs-kad-dht.md §Lookup Process: "the
lookup terminates when the initiator has queried and gotten responses from the k closest
nodes it has seen"); this module only dials the candidates it names, sends ``FIND_NODE``,
``GET_PROVIDERS`` or ``GET_VALUE`` with :meth:`HostConnection.kad_request` and feeds the answers back.
``alpha`` queries run at once (ipfs-kad-dht §Concurrency: "alpha = 10" on the public network;
3 here by default, a parameter).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.errors import P2PKitError
from p2pkit.ipfs.kad_dht import ID_BITS, K, kademlia_id
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.kademlia.lookup import Lookup

__all__ = ["LookupResult", "lookup", "provide"]


@dataclass
class LookupResult:
    """What a lookup found: the closest servers (peer id, multiaddrs), providers (for
    ``GET_PROVIDERS``), and its cost."""

    closest: list[tuple[PeerId, list[Multiaddr]]] = field(default_factory=list)
    providers: dict[PeerId, list[Multiaddr]] = field(default_factory=dict)
    #: ``GET_VALUE``: the record value each server answered with (those with none absent).
    values: dict[PeerId, bytes] = field(default_factory=dict)
    #: ``GET_VALUE``: the servers that answered (with or without a value), their addresses.
    answered: dict[PeerId, list[Multiaddr]] = field(default_factory=dict)
    queries: int = 0
    failures: int = 0
    hops: int = 0


def _tcp(addrs: list[Multiaddr]) -> tuple[str, int] | None:
    for addr in addrs:
        ip = next((v for n, v in addr if n in ("ip4", "ip6")), None)
        if ip is not None and any(n == "tcp" for n, _ in addr):
            return str(ip), addr.value_for("tcp")
    return None


def _addrs(raw: Any) -> list[Multiaddr]:
    out = []
    for a in raw:
        with contextlib.suppress(P2PKitError):
            out.append(Multiaddr.from_bytes(a))
    return out


async def lookup(host: Any, key: bytes, *, kind: str = "FIND_NODE",
                 seeds: list[tuple[PeerId, list[Multiaddr]]] = (), k: int = K,
                 alpha: int = 3, timeout: float = 30.0,
                 query_timeout: float = 5.0,
                 enough: Callable[[LookupResult], bool] | None = None) -> LookupResult:
    """Look up ``key`` (a peer id's or a CID's multihash bytes, a record key) starting from
    ``host``'s routing table and ``seeds``; ``kind`` is ``FIND_NODE``, ``GET_PROVIDERS`` or
    ``GET_VALUE``. ``enough(result)``, asked after every answer, ends the lookup early (a
    quorum of values)."""
    result = LookupResult()
    search = Lookup(kademlia_id(key), k=k, alpha=alpha, id_bits=ID_BITS)
    known: dict[bytes, tuple[PeerId, list[Multiaddr]]] = {}

    def learn(pid: PeerId, addrs: list[Multiaddr]) -> tuple[bytes, tuple] | None:
        tcp = _tcp(addrs)
        if tcp is None or pid == host.peer_id:
            return None
        kid = kademlia_id(pid.multihash)
        known.setdefault(kid, (pid, addrs))
        return kid, tcp

    for raw_pid, raw_addrs in host.dht.peers.values():
        found = learn(PeerId(raw_pid), _addrs(raw_addrs))
        if found:
            search.add(*found)
    for pid, addrs in seeds:
        found = learn(pid, list(addrs))
        if found:
            search.add(*found)

    async def ask(candidate: Any) -> None:
        pid, addrs = known[candidate.id]
        target = Multiaddr(tuple(addrs[0].components)).encapsulate(
            Multiaddr((("p2p", pid.multihash),))) if addrs[0].peer_id is None else addrs[0]
        result.queries += 1
        try:
            connection = await host.dial(target, timeout=query_timeout)
            try:
                answer = await connection.kad_request({"type": kind, "key": key},
                                                      timeout=query_timeout)
            finally:
                await connection.close()
        except (P2PKitError, OSError, TimeoutError):
            result.failures += 1
            search.failed(candidate.id)
            return
        closer = []
        for peer in answer.closerPeers:
            with contextlib.suppress(P2PKitError):
                found = learn(PeerId(peer.id), _addrs(peer.addrs))
                if found:
                    closer.append(found)
        for peer in getattr(answer, "providerPeers", ()) or ():
            with contextlib.suppress(P2PKitError):
                result.providers.setdefault(PeerId(peer.id), _addrs(peer.addrs))
        if kind == "GET_VALUE":
            result.answered[pid] = addrs
            record = getattr(answer, "record", None)
            if record is not None and record.key == key and record.value:
                result.values[pid] = record.value
        search.responded(candidate.id, closer)

    async def run() -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while not search.finished:
                if enough is not None and enough(result):
                    break
                for candidate in search.next_queries():
                    running.add(asyncio.create_task(ask(candidate)))
                if not running:
                    break
                done, running = await asyncio.wait(running,
                                                   return_when=asyncio.FIRST_COMPLETED)
        finally:  # a quorum reached (or the deadline): outstanding requests are cancelled
            for task in running:
                task.cancel()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), timeout)
    result.closest = [known[c.id] for c in search.closest(k) if c.id in known]
    result.hops = search.hops
    return result


async def provide(host: Any, key: bytes, addrs: list[Multiaddr], *,
                  seeds: list[tuple[PeerId, list[Multiaddr]]] = (), k: int = K,
                  timeout: float = 30.0, query_timeout: float = 5.0) -> list[PeerId]:
    """Announce ``host`` as a provider of ``key`` (a multihash) with ``addrs``: kept in its own
    store, then ``ADD_PROVIDER`` on the ``k`` servers closest to the key (ipfs-kad-dht
    §Content Provider Advertisement). The servers the record was sent to."""
    loop = asyncio.get_running_loop()
    host.dht.add_provider(key, host.peer_id, [bytes(a) for a in addrs], loop.time())
    found = await lookup(host, key, kind="FIND_NODE", seeds=seeds, k=k, timeout=timeout,
                         query_timeout=query_timeout)
    request = {"type": "ADD_PROVIDER", "key": key, "providerPeers": [
        {"id": host.peer_id.multihash, "addrs": [bytes(a) for a in addrs]}]}

    async def send(pid: PeerId, peer_addrs: list[Multiaddr]) -> bool:
        target = peer_addrs[0] if peer_addrs[0].peer_id is not None else \
            peer_addrs[0].encapsulate(Multiaddr((("p2p", pid.multihash),)))
        try:
            connection = await host.dial(target, timeout=query_timeout)
            try:
                await connection.kad_request(request, timeout=query_timeout)
            finally:
                await connection.close()
        except (P2PKitError, OSError, TimeoutError):
            return False
        return True

    sent = await asyncio.gather(*(send(pid, a) for pid, a in found.closest))
    return [pid for (pid, _), ok in zip(found.closest, sent, strict=True) if ok]
