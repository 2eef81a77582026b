"""A Bitswap session: one download spread over several peers (the asyncio driver).

Bitswap §Bitswap 1.2.0 Interaction Pattern leaves it to the client whom to ask: "a client
[...] may send want-have to many peers and then want-block to the one(s) that have it". The
session here does what go-bitswap's and Helia's sessions do in their simplest form: the wants
of a round (one level of a UnixFS DAG) are spread over the session's peers (each CID to the
peer with the fewest outstanding wants among those not yet tried for it) as ``want-block``
with ``sendDontHave``; a CID whose peer answers ``DONT_HAVE`` or stays silent for
``want_timeout`` seconds is asked of the next peer; it fails only when every peer was tried.
Every block is checked against its CID by the host before it is stored. Bounded: at most
:data:`MAX_SESSION_PEERS` peers, :data:`MAX_WANTS_PER_PEER_IN_FLIGHT` wants in flight to one
peer.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from p2pkit.errors import P2PKitError, ProtocolError
from p2pkit.ipfs.cid import Cid

__all__ = ["MAX_SESSION_PEERS", "MAX_WANTS_PER_PEER_IN_FLIGHT", "BitswapSession",
           "SessionStats"]

#: Peers one session uses.
MAX_SESSION_PEERS = 8
#: Wants outstanding to one peer at a time.
MAX_WANTS_PER_PEER_IN_FLIGHT = 256


@dataclass
class SessionStats:
    """Who delivered what, and how often a want had to move to another peer."""

    blocks_from: Counter = field(default_factory=Counter)
    dont_haves: int = 0
    timeouts: int = 0
    rerequests: int = 0


class BitswapSession:
    """Fetch blocks from ``connections`` (open :class:`~p2pkit.ipfs.host.HostConnection`\\ s
    of one host) at once."""

    def __init__(self, host: Any, connections: list[Any], *, want_timeout: float = 10.0,
                 max_in_flight: int = MAX_WANTS_PER_PEER_IN_FLIGHT) -> None:
        if not connections:
            raise ProtocolError("a Bitswap session needs at least one peer")
        self.host = host
        self.connections = list(connections)[:MAX_SESSION_PEERS]
        self.want_timeout = want_timeout
        self.max_in_flight = max_in_flight
        self.stats = SessionStats()

    async def fetch(self, cids: list[Cid], *, timeout: float = 60.0) -> dict[Cid, bytes]:
        """The blocks of ``cids`` (those already held are not asked for)."""
        await asyncio.wait_for(self._fetch(cids), timeout)
        return {cid: self.host.blocks[cid] for cid in cids}

    async def _fetch(self, cids: list[Cid]) -> None:
        loop = asyncio.get_running_loop()
        host = self.host
        pending = deque(dict.fromkeys(c for c in cids if c not in host.blocks))
        tried: dict[Cid, set[int]] = {cid: set() for cid in pending}
        load = Counter()
        #: future -> (cid, connection index, deadline)
        flight: dict[asyncio.Future[None], tuple[Cid, int, float]] = {}
        try:
            while pending or flight:
                batches: dict[int, list[Cid]] = {}
                waiting = deque()
                while pending:
                    cid = pending.popleft()
                    if cid in host.blocks:
                        continue
                    options = [i for i, c in enumerate(self.connections)
                               if i not in tried[cid] and not c._task.done()]
                    if not options:
                        raise ProtocolError(f"no peer of the session has {cid} "
                                            f"({len(tried[cid])} asked)")
                    best = min(options, key=lambda i: load[i])
                    if load[best] >= self.max_in_flight:
                        waiting.append(cid)
                        continue
                    tried[cid].add(best)
                    load[best] += 1
                    batches.setdefault(best, []).append(cid)
                pending.extend(waiting)
                for index, batch in batches.items():
                    connection = self.connections[index]
                    deadline = loop.time() + self.want_timeout
                    for cid in batch:
                        fut = loop.create_future()
                        host.block_waiters.setdefault(cid, []).append(fut)
                        host.waiter_peers[fut] = connection.remote_peer_id
                        flight[fut] = (cid, index, deadline)
                    try:
                        await connection.send_bitswap(
                            [host.bitswap.want(connection.remote_peer_id, batch)],
                            self.want_timeout)
                    except (P2PKitError, OSError, TimeoutError) as e:
                        for fut, (_, i, _) in list(flight.items()):
                            if i == index and not fut.done():
                                fut.set_exception(ProtocolError(str(e)))
                if not flight:
                    continue
                first = min(d for _, _, d in flight.values())
                done, _ = await asyncio.wait(list(flight), timeout=max(0.0, first - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
                now = loop.time()
                for fut, (cid, index, deadline) in list(flight.items()):
                    if fut in done:
                        if fut.exception() is None:
                            self.stats.blocks_from[str(self.connections[index].remote_peer_id)] += 1
                        else:
                            self.stats.dont_haves += 1
                    elif now >= deadline:
                        self.stats.timeouts += 1
                    else:
                        continue
                    del flight[fut]
                    load[index] -= 1
                    self._unregister(cid, fut)
                    if cid not in host.blocks:
                        self.stats.rerequests += 1
                        pending.append(cid)
        finally:
            for fut, (cid, _, _) in flight.items():
                self._unregister(cid, fut)
                if not fut.done():
                    fut.cancel()
                else:
                    fut.exception() if not fut.cancelled() else None

    def _unregister(self, cid: Cid, fut: asyncio.Future[None]) -> None:
        self.host.waiter_peers.pop(fut, None)
        waiters = self.host.block_waiters.get(cid, [])
        if fut in waiters:
            waiters.remove(fut)
        if not waiters:
            self.host.block_waiters.pop(cid, None)
