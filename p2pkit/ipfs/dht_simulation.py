"""The IPFS DHT over days of simulated time: provider records that expire, republishing, churn.

libp2p-ipfs/ipfs-kad-dht.md §Provide Validity: "DHT Servers MUST implement a Provide Validity
of `48h`, and discard the record after expiration"; §Provider Record Republish Interval:
"Because of the churn in the network, Provider Records need to be republished more often than
their validity period. DHT Clients SHOULD republish Provider Records every `22h`"
(libp2p-kad-dht.md §Content provider advertisement and discovery gives the same two figures).
§Routing Table Refresh: every 10 minutes a server drops the peers that do not answer and tops
up its buckets with FIND_NODE lookups.

This runs those rules on the shared array simulator (:mod:`p2pkit.kademlia.array_network`,
256-bit ids, k = 20, alpha = 10, the ``ipfs`` deployment of :mod:`p2pkit.dht.simulator`):

* **churn**: every node alternates online sessions and offline gaps drawn from a Weibull
  :class:`~p2pkit.kademlia.churn.SessionModel` (:class:`~p2pkit.kademlia.churn.ChurnProcess`);
  a node keeps its peer id while offline and comes back with an empty routing table that it
  fills at once (bootstrap); it keeps the provider records it holds when its datastore is
  persistent (``persistent=True``, Kubo's LevelDB datastore) and has lost them when it is in
  memory (``persistent=False``, what a js-libp2p/Helia node gets by default: a
  ``MemoryDatastore``);
* **refresh**: every :attr:`RefreshPolicy.interval <p2pkit.ipfs.kad_refresh.RefreshPolicy>`
  (10 minutes) every online node refreshes its table
  (:meth:`~p2pkit.kademlia.array_tables.ArrayTables.refresh`); lookups run at the end of a
  step, just before the refresh, when the tables are the most out of date (up to 10 minutes);
* **provide**: each key's provider (always online) runs a FIND_NODE lookup for the key and
  stores a record on the k closest nodes that answered (§Content provider advertisement), at
  time 0 and, with ``republish``, every 22 h; a record is served while
  ``now - stored < 48 h`` (:class:`ProviderRecords`, the rule of
  :class:`p2pkit.ipfs.kad_dht.KadDhtServer`) and its holder is online;
* **find providers**: every ``sample_every`` seconds, one GET_PROVIDERS lookup per key from a
  random online node; it succeeds at the first answer from a node holding a live record (or
  at once, with no query, when the node holds one itself)
  (:meth:`ArrayNetwork.lookup(holders=...) <p2pkit.kademlia.array_network.ArrayNetwork.lookup>`).

What it leaves out, stated: nodes learn peers only from refreshes and their own bootstrap (not
from the queries they receive); no DHT clients (every node is a server); latencies of 10-100 ms
per datagram, no loss; keys and peer ids are random 256-bit Kademlia ids (the SHA-256 of a
multihash or peer id is one).

>>> timeline = simulate_providers(nodes=400, keys=4, hours=2, seed=1, sessions=None)
>>> [round(s.success, 2) for s in timeline.samples]
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from p2pkit.ipfs.kad_dht import ID_BITS, PROVIDE_VALIDITY, K
from p2pkit.ipfs.kad_refresh import RefreshPolicy
from p2pkit.kademlia.array_network import ArrayNetwork, LookupOutcome
from p2pkit.kademlia.array_tables import ArrayTables
from p2pkit.kademlia.churn import ChurnProcess, SessionModel

__all__ = ["ALPHA", "REPUBLISH_INTERVAL", "ProviderRecords", "ProviderTimeline", "Sample",
           "simulate_providers"]

#: ipfs-kad-dht.md §Provider Record Republish Interval: "republish Provider Records every 22h".
REPUBLISH_INTERVAL = 22 * 3600.0
#: libp2p-kad-dht.md §Alpha concurrency parameter: "The default value is 10".
ALPHA = 10
#: The churn by default: Weibull sessions of shape 0.5 and median 1 h
#: (:mod:`p2pkit.kademlia.churn` on the choice), offline gaps alike.
DEFAULT_SESSIONS = SessionModel(shape=0.5, median=3600.0)
#: §Routing Table Refresh's 10 minutes (:class:`p2pkit.ipfs.kad_refresh.RefreshPolicy`).
DEFAULT_REFRESH = RefreshPolicy()
#: Keys one simulation tracks (each costs a lookup per sample).
MAX_KEYS = 10_000


class ProviderRecords:
    """Which nodes hold a provider record for each of ``keys`` keys, and since when.

    One array of store times per key (``-inf``: no record), so a node holds at most one
    record per key (a republish replaces it, as :meth:`KadDhtServer.add_provider
    <p2pkit.ipfs.kad_dht.KadDhtServer.add_provider>` does for one provider).

    >>> records = ProviderRecords(keys=1, nodes=3)
    >>> records.store(0, np.array([0, 2]), now=10.0)
    >>> records.holders(0, now=10.0 + PROVIDE_VALIDITY - 1).tolist()
    [True, False, True]
    >>> records.holders(0, now=10.0 + PROVIDE_VALIDITY).tolist()  # 48 h after: gone
    [False, False, False]
    """

    def __init__(self, *, keys: int, nodes: int, validity: float = PROVIDE_VALIDITY) -> None:
        if not 1 <= keys <= MAX_KEYS:
            raise ValueError(f"keys in 1..{MAX_KEYS}")
        self.validity = validity
        self.stored = np.full((keys, nodes), -np.inf)

    def store(self, key: int, nodes: np.ndarray, now: float) -> None:
        """ADD_PROVIDER accepted by ``nodes`` at ``now`` (a new record or a republish)."""
        self.stored[key, nodes] = now

    def forget(self, nodes: np.ndarray) -> None:
        """``nodes`` restarted with an empty datastore: their records are gone."""
        self.stored[:, nodes] = -np.inf

    def holders(self, key: int, now: float, alive: np.ndarray | None = None) -> np.ndarray:
        """Which nodes would answer GET_PROVIDERS for ``key`` with the record at ``now``:
        stored less than the validity ago (§Provide Validity) and, given ``alive``, online."""
        held = now - self.stored[key] < self.validity
        return held if alive is None else held & alive


@dataclass(frozen=True, kw_only=True)
class Sample:
    """The provider lookups made at one moment."""

    hours: float
    #: Nodes online.
    online: int
    #: Share of the keys whose lookup reached a live record.
    success: float
    #: Mean path length to the first holder, and mean queries, of the successful lookups;
    #: mean queries of all of them.
    hops: float
    queries: float
    queries_all: float
    #: Mean number of online nodes holding an unexpired record, per key.
    live_holders: float


@dataclass(frozen=True, kw_only=True)
class ProviderTimeline:
    """What :func:`simulate_providers` measured."""

    nodes: int
    keys: int
    seed: int
    republish: bool
    persistent: bool
    #: The churn: ``"none"`` or the session model.
    churn: str
    samples: list[Sample]
    #: Session ends and returns over the whole run.
    departures: int
    arrivals: int

    def mean(self, field: str, since_hours: float = 0.0) -> float:
        values = [getattr(s, field) for s in self.samples
                  if s.hours >= since_hours and not math.isnan(getattr(s, field))]
        return float(np.mean(values)) if values else math.nan


def simulate_providers(*, nodes: int, keys: int, hours: float, seed: int = 1,
                       sessions: SessionModel | None = DEFAULT_SESSIONS,
                       republish: bool = True, persistent: bool = True,
                       sample_every: float = 3600.0,
                       refresh: RefreshPolicy = DEFAULT_REFRESH,
                       progress: Callable[[float], None] | None = None) -> ProviderTimeline:
    """Run ``nodes`` kad-dht servers for ``hours`` of simulated time with ``keys`` provided
    keys (see the module docstring); ``sessions=None`` runs without churn.
    ``progress(hours_done)`` after each sample."""
    if nodes < 2 * K or hours <= 0 or sample_every <= 0:
        raise ValueError(f"nodes >= {2 * K}, hours > 0, sample_every > 0")
    rng = np.random.default_rng([seed, 15])
    pick = random.Random(f"providers {seed}")
    tables = ArrayTables.random(nodes, k=K, id_bits=ID_BITS, rng=rng)
    providers = rng.choice(nodes, size=keys, replace=True)
    records = ProviderRecords(keys=keys, nodes=nodes)
    if sessions is None:
        alive = np.ones(nodes, dtype=bool)
        churn = None
    else:
        churn = ChurnProcess(nodes, sessions, rng, always_online=providers)
        alive = churn.alive
    tables.refresh(np.flatnonzero(alive), alive, rng, restart=True)
    net = ArrayNetwork(tables, alpha=ALPHA, seed=seed)
    net.alive = alive
    targets = [pick.randbytes(ID_BITS // 8) for _ in range(keys)]
    step = refresh.interval
    now = 0.0
    next_publish = 0.0
    next_sample = 0.0
    end = hours * 3600.0
    samples = []
    while True:
        if now >= next_publish:
            for key, target in enumerate(targets):
                found = net.lookup(int(providers[key]), target)
                records.store(key, np.array(found.closest, dtype=np.int64), now)
            next_publish = now + REPUBLISH_INTERVAL if republish else math.inf
        if now >= next_sample:
            samples.append(_sample(net, records, targets, providers, now, pick))
            next_sample += sample_every
            if progress is not None:
                progress(now / 3600.0)
        if now + step > end + 1e-9:
            break
        if churn is not None:  # without churn the tables stay as the first fill left them
            tables.refresh(np.flatnonzero(alive), alive, rng)
        now += step
        if churn is not None:
            moved = churn.advance(step)
            tables.refresh(moved.joined, alive, rng, restart=True)
            if not persistent:
                records.forget(moved.joined)
    return ProviderTimeline(
        nodes=nodes, keys=keys, seed=seed, republish=republish, persistent=persistent,
        churn="none" if sessions is None else
        f"weibull shape {sessions.shape:g}, median {sessions.median / 3600:g} h",
        samples=samples, departures=0 if churn is None else churn.departures,
        arrivals=0 if churn is None else churn.arrivals)


def _sample(net: ArrayNetwork, records: ProviderRecords, targets: list[bytes],
            providers: np.ndarray, now: float, pick: random.Random) -> Sample:
    alive = net.alive
    online = np.flatnonzero(alive)
    outcomes = []
    holders_alive = []
    for key, target in enumerate(targets):
        holders = records.holders(key, now, alive)
        holders_alive.append(int(holders.sum()))
        origin = int(online[pick.randrange(len(online))])
        while origin == providers[key] and len(online) > 1:
            origin = int(online[pick.randrange(len(online))])
        if holders[origin]:  # its own datastore answers first: no query
            outcomes.append(LookupOutcome(found=True, hops=0, queries=0, duration=0.0,
                                          datagrams=0))
        else:
            outcomes.append(net.lookup(origin, target, holders=holders))
    found = [o for o in outcomes if o.found]
    return Sample(hours=now / 3600.0, online=len(online), success=len(found) / len(outcomes),
                  hops=float(np.mean([o.hops for o in found])) if found else math.nan,
                  queries=float(np.mean([o.queries for o in found])) if found else math.nan,
                  queries_all=float(np.mean([o.queries for o in outcomes])),
                  live_holders=float(np.mean(holders_alive)))
