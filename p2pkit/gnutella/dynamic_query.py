"""Dynamic querying: an ultrapeer sends a leaf's query to a few connections at a time.

Spec: Gnutella Dynamic Query Protocol v0.1 (``specs/gnutella/dynamic_query``). §2.2: "Upon
receiving a query from a leaf, the Ultrapeer ignores the TTL of that query and begins a
dynamic query"; §2.5.1 the probe ("send a TTL=2 query down 3 connections"); §2.5.2.1 the next
TTL from the results so far (D, r, R, H, RH, HQ, C, HQC, DEGREE); §2.5.2.2 the theoretical
horizon ``hosts(degree, ttl) = Sum[(degree-1)^i, 0 <= i <= ttl-1]``; §2.5.2.3 "the querier
MUST wait 2400 milliseconds per hop before sending a query down another connection" (a probe
may wait "an extra second per connection probed"); §2.5.2.4 the ends (enough results, no
connection left, the 300,000 horizon; "a client MAY wish to limit the total lifetime of the
query to, say 3 minutes"); §2.5.3.1 "each Ultrapeer MUST attempt to get only 50 results for a
query received from one of its leaves".

The algorithm only: :class:`DynamicQuery` is told the candidate connections and the time, and
says which connection gets the query with which TTL; the servent (:mod:`p2pkit.gnutella.servent`)
sends, counts the hits routed back, and keeps the timer.

>>> hosts(32, 3)  # 1 + 31 + 31**2 ultrapeers behind one degree-32 connection at TTL 3
993
>>> q = DynamicQuery(desired=50, started=0.0)
>>> q.step(0.0, [Candidate("a", 32, 3), Candidate("b", 32, 3), Candidate("c", 32, 3),
...              Candidate("d", 32, 3)])   # the probe: TTL 2 down three connections
[('a', 2), ('b', 2), ('c', 2)]
>>> q.next_at  # 2400 ms per hop, plus a second per connection probed
7.8
>>> q.add_results(5)
>>> q.step(7.8, [Candidate("d", 32, 3)])  # 5 results from 96 hosts: 45 more need ~864
[('d', 3)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_DEGREE",
    "LEAF_RESULTS",
    "MAX_HORIZON",
    "MAX_LIFETIME",
    "MAX_TTL",
    "OWN_RESULTS",
    "PROBE_CONNECTIONS",
    "PROBE_TTL",
    "WAIT_PER_HOP",
    "Candidate",
    "DynamicQuery",
    "hosts",
    "next_ttl",
]

#: §2.5.3.1: "each Ultrapeer MUST attempt to get only 50 results for a query received from one
#: of its leaves".
LEAF_RESULTS = 50
#: §2.5.3.1: "Clients MUST target a maximum of 150 total results for a given query" (§2.2: an
#: ultrapeer searching for itself targets more, having no other ultrapeers search for it).
OWN_RESULTS = 150
#: §2.5.1: "A simple approach is to send a TTL=2 query down 3 connections".
PROBE_TTL = 2
PROBE_CONNECTIONS = 3
#: §2.5.2.3: "2400 milliseconds per hop"; a probe "MAY choose to wait for an extra second per
#: connection probed".
WAIT_PER_HOP = 2.4
PROBE_WAIT_PER_CONNECTION = 1.0
#: §2.5.2.4: "The theoretical horizon has hit the 300,000 limit".
MAX_HORIZON = 300_000
#: §2.5.2.4: "limit the total lifetime of the query to, say 3 minutes".
MAX_LIFETIME = 180.0
#: §2.5.3.2.1: "The X-Max-TTL MUST NOT exceed 4 [...] A typical initial value for X-Max-TTL
#: is 3": the highest TTL sent when the connection names none.
MAX_TTL = 3
#: The degree assumed for a connection whose handshake had no X-Degree (§2.5.3.2.2): the
#: classic network's (§2.4: "a degree 6 network where each query is sent with a TTL of 7").
DEFAULT_DEGREE = 6


def hosts(degree: int, ttl: int) -> int:
    """§2.5.2.2: ultrapeers a query reaches down one connection of ``degree`` at ``ttl``."""
    return sum((degree - 1) ** i for i in range(ttl))


def next_ttl(*, desired: int, results: int, horizon: int, remaining: int, degree: int,
             max_ttl: int) -> int:
    """§2.5.2.1: the smallest TTL whose horizon down this connection reaches HQC hosts.

    With no result yet the content looks rare: the connection's highest TTL (§2.5.1: "If no
    results, are received, the next query may be sent with a high TTL").
    """
    if results <= 0 or horizon <= 0:
        return max_ttl
    per_host = results / horizon  # RH
    needed = max(0, desired - results) / per_host  # HQ = R / RH
    per_connection = needed / max(1, remaining)  # HQC = HQ / C
    for ttl in range(1, max_ttl + 1):
        if hosts(degree, ttl) >= per_connection:
            return ttl  # §2.5.2.1: "weight this algorithm towards lower TTLs"
    return max_ttl


@dataclass(frozen=True)
class Candidate:
    """An ultrapeer connection the query may go down: its id, X-Degree and X-Max-TTL."""

    conn_id: Any
    degree: int = DEFAULT_DEGREE
    max_ttl: int = MAX_TTL


@dataclass
class DynamicQuery:
    """One dynamic query's state (§2.5): results, horizon, who got it, when to go on."""

    desired: int
    started: float
    results: int = 0
    horizon: int = 0  # H: ultrapeers theoretically reached
    next_at: float = 0.0
    probed: bool = False
    queried: set[Any] = field(default_factory=set)
    #: Why it ended (``None`` while it runs): "results", "connections", "horizon", "lifetime",
    #: "stopped".
    ended: str | None = None

    def add_results(self, count: int) -> None:
        """Results routed back for this query (or a leaf's own count, leaf_guided_queries)."""
        self.results += count
        if self.results >= self.desired and self.ended is None:
            self.ended = "results"  # §2.5.3.1: "clients MUST NOT send the query to any more"

    def stop(self, reason: str = "stopped") -> None:
        if self.ended is None:
            self.ended = reason

    def step(self, now: float, candidates: Sequence[Candidate]) -> list[tuple[Any, int]]:
        """What to send at ``now``: (connection, TTL) pairs, none before ``next_at``.
        ``candidates`` are the established ultrapeer connections in order of preference;
        those already queried are skipped. Ends the query when §2.5.2.4 says so."""
        if self.ended is not None or now < self.next_at:
            return []
        if self.results >= self.desired:
            self.ended = "results"
        elif self.horizon >= MAX_HORIZON:
            self.ended = "horizon"
        elif now - self.started >= MAX_LIFETIME:
            self.ended = "lifetime"
        fresh = [c for c in candidates if c.conn_id not in self.queried]
        if not fresh and self.ended is None:
            self.ended = "connections"
        if self.ended is not None:
            return []
        if not self.probed:
            self.probed = True
            chosen = [(c, min(PROBE_TTL, c.max_ttl)) for c in fresh[:PROBE_CONNECTIONS]]
            wait = WAIT_PER_HOP * max(t for _, t in chosen) + \
                PROBE_WAIT_PER_CONNECTION * len(chosen)
        else:
            c = fresh[0]
            ttl = next_ttl(desired=self.desired, results=self.results, horizon=self.horizon,
                           remaining=len(fresh), degree=c.degree, max_ttl=c.max_ttl)
            chosen = [(c, ttl)]
            wait = WAIT_PER_HOP * ttl
        for c, ttl in chosen:
            self.queried.add(c.conn_id)
            self.horizon += hosts(c.degree, ttl)
        self.next_at = now + wait
        return [(c.conn_id, ttl) for c, ttl in chosen]
