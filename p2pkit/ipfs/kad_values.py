"""Putting and getting values in the kad-dht: quorum, selection and entry correction.

libp2p kad-dht §Value storage: "To put a value the DHT finds k or less closest peers to the
key of the value using the FIND_NODE RPC [...] and then sends a PUT_VALUE RPC message with the
record value to each of the peers." §Value retrieval: the lookup sends ``GET_VALUE`` and
collects values until a quorum ``Q`` of answers is reached ("the local result counts for one
towards the search of Q values"), keeps the best by ``Select`` and then "notif[ies] the peers
holding an outdated value (Po) of the best value we discovered, or holding no value for the
given key, even though being among the k closest peers to the key, by sending
PUT_VALUE(Key, best) messages" (entry correction; ipfs-kad-dht §Entry Correction: "the client
MUST send the most recent valid record to any of the k closest DHT Servers [...] that did not
return the latest version"). ipfs-kad-dht §Quorum: "For IPNS lookups, implementations SHOULD
use a quorum value of 16".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from p2pkit.errors import P2PKitError, ParseError
from p2pkit.ipfs.dht_records import select_value, validate_value
from p2pkit.ipfs.ipns import IPNS_PREFIX
from p2pkit.ipfs.kad_dht import K
from p2pkit.ipfs.kad_lookup import lookup
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["IPNS_QUORUM", "GetValueResult", "default_quorum", "get_value", "put_value",
           "send_put_value"]

#: ipfs-kad-dht §Quorum: "implementations SHOULD use a quorum value of 16" for IPNS.
IPNS_QUORUM = 16


def default_quorum(key: bytes) -> int:
    """16 for ``/ipns/`` keys (§Quorum); 1 for ``/pk/`` (every valid key record is equal)."""
    return IPNS_QUORUM if key.startswith(IPNS_PREFIX) else 1


@dataclass
class GetValueResult:
    """The best value found (None: none valid), who returned it, who was corrected."""

    value: bytes | None = None
    from_peers: list[PeerId] = field(default_factory=list)
    #: valid answers counted towards the quorum (the local record included).
    answers: int = 0
    invalid: int = 0
    corrected: list[PeerId] = field(default_factory=list)
    queries: int = 0
    hops: int = 0


async def send_put_value(host: Any, peer: PeerId, addrs: list[Multiaddr], key: bytes,
                         value: bytes, timeout: float) -> bool:
    """One ``PUT_VALUE`` to ``peer``; whether it echoed the record ("as a response echoes the
    request")."""
    if not addrs:
        return False
    target = addrs[0] if addrs[0].peer_id is not None else addrs[0].encapsulate(
        Multiaddr((("p2p", peer.multihash),)))
    try:
        connection = await host.dial(target, timeout=timeout)
        try:
            echo = await connection.kad_request(
                {"type": "PUT_VALUE", "key": key, "record": {"key": key, "value": value}},
                timeout=timeout)
        finally:
            await connection.close()
    except (P2PKitError, OSError, TimeoutError):
        return False
    return echo.record is not None and echo.record.value == value


async def put_value(host: Any, key: bytes, value: bytes, *,
                    seeds: list[tuple[PeerId, list[Multiaddr]]] = (), k: int = K,
                    timeout: float = 30.0, query_timeout: float = 5.0) -> list[PeerId]:
    """Validate ``value``, keep it in ``host``'s own store, find the ``k`` servers closest to
    ``key`` and ``PUT_VALUE`` it on each; the peers that echoed it."""
    loop = asyncio.get_running_loop()
    host.dht.values.put(key, value, loop.time())
    found = await lookup(host, key, kind="FIND_NODE", seeds=seeds, k=k, timeout=timeout,
                         query_timeout=query_timeout)
    stored = await asyncio.gather(*(send_put_value(host, pid, addrs, key, value, query_timeout)
                                    for pid, addrs in found.closest))
    return [pid for (pid, _), ok in zip(found.closest, stored, strict=True) if ok]


async def get_value(host: Any, key: bytes, *, quorum: int | None = None,
                    seeds: list[tuple[PeerId, list[Multiaddr]]] = (), k: int = K,
                    alpha: int = 3, timeout: float = 30.0, query_timeout: float = 5.0,
                    correct: bool = True) -> GetValueResult:
    """The best valid value of ``key`` from ``host``'s store and the DHT, collecting
    ``quorum`` valid answers (:func:`default_quorum` by default), then correcting the servers
    among the ``k`` closest that answered with a worse value or none."""
    quorum = default_quorum(key) if quorum is None else quorum
    loop = asyncio.get_running_loop()
    local = host.dht.values.get(key, loop.time())
    valid: dict[PeerId, bool] = {}

    def is_valid(pid: PeerId, value: bytes) -> bool:
        if pid not in valid:
            try:
                validate_value(key, value, time.time_ns())
                valid[pid] = True
            except ParseError:
                valid[pid] = False
        return valid[pid]

    def enough(result: Any) -> bool:
        count = sum(is_valid(p, v) for p, v in list(result.values.items()))
        return count + (local is not None) >= quorum

    found = await lookup(host, key, kind="GET_VALUE", seeds=seeds, k=k, alpha=alpha,
                         timeout=timeout, query_timeout=query_timeout, enough=enough)
    out = GetValueResult(queries=found.queries, hops=found.hops)
    good = [(p, v) for p, v in found.values.items() if is_valid(p, v)]
    out.invalid = len(found.values) - len(good)
    candidates = ([(host.peer_id, local)] if local is not None else []) + good
    out.answers = len(candidates)
    if not candidates:
        return out
    best = candidates[select_value(key, [v for _, v in candidates])][1]
    out.value = best
    out.from_peers = [p for p, v in candidates if v == best]
    if local != best:
        host.dht.values.put(key, best, loop.time())
    if correct:
        closest = {pid: addrs for pid, addrs in found.closest}
        stale = [pid for pid in found.answered
                 if found.values.get(pid) != best
                 and (pid in found.values or pid in closest)]
        sent = await asyncio.gather(*(send_put_value(host, pid, found.answered[pid], key, best,
                                                     query_timeout) for pid in stale))
        out.corrected = [pid for pid, ok in zip(stale, sent, strict=True) if ok]
    return out
