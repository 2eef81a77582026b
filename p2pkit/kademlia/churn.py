"""Churn from session lengths: which nodes of a running DHT leave within a time window.

Measurement studies of deployed Kademlia DHTs find session lengths (the time a node stays
online) short on average but heavy-tailed (Falkner, Piatek, John, Krishnamurthy and Anderson,
"Profiling a Million User DHT", IMC 2007, on the Azureus DHT), far from exponential, and fit
them with Weibull (or log-normal) distributions of shape below 1: Stutzbach and Rejaie, "Understanding Churn in Peer-to-Peer
Networks", IMC 2006 (KAD, Gnutella, BitTorrent); Steiner, En-Najjary and Biersack, "Long Term
Study of Peer Behavior in the KAD DHT", IEEE/ACM Transactions on Networking 17(5), 2009; and
for the Mainline DHT itself Wang and Kangasharju, "Measuring Large-Scale Distributed Systems:
Case of BitTorrent Mainline DHT", IEEE P2P 2013 (its size and churn patterns).
:class:`SessionModel` is that family with its parameters
stated; its defaults (shape 0.5, median session 60 minutes) are this project's choice inside
that family, not values fitted here — pass the figures of the study you follow.

A network observed at a random moment holds nodes part-way through their sessions: long
sessions are over-represented (length bias) and what is left of a session, the residual, is
uniform over it. :meth:`SessionModel.departures` draws each online node's residual that way
and says who leaves within ``window`` seconds (by default BEP 5's 15 minutes, the time after
which a bucket is refreshed: the staleness a table can reach). Departed nodes are not replaced
and nobody is told, as in the fraction-based churn of the simulators.

>>> import numpy as np
>>> model = SessionModel(shape=0.5, median=3600.0)
>>> gone = model.departures(100_000, np.random.default_rng(1), window=900.0)
>>> bool(0.01 < gone.mean() < 0.2)  # about 5 % leave within 15 minutes
True

Over time, :class:`ChurnProcess` lets every node alternate online sessions and offline gaps
(both drawn from a :class:`SessionModel`, the gaps by default from the same one), starting
from the stationary state (each node online with the long-run share of time online, its
current period length-biased as above), and reports who left and who came back during each
step of simulated time; nodes in ``always_online`` never leave.

>>> churn = ChurnProcess(1000, SessionModel(shape=0.5, median=3600.0), np.random.default_rng(1))
>>> step = churn.advance(600.0)
>>> int(churn.alive.sum()) == churn.online_at_start + step.arrivals - step.departures
True
>>> 400 < churn.online_at_start < 600  # sessions and gaps alike: half the time online
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["REFRESH_WINDOW", "ChurnProcess", "ChurnStep", "SessionModel"]

#: BEP 5: "Buckets that have not been changed in 15 minutes should be "refreshed.""
REFRESH_WINDOW = 15 * 60.0


@dataclass(frozen=True, kw_only=True)
class SessionModel:
    """Weibull session lengths: ``shape`` (below 1: heavy-tailed) and ``median`` seconds."""

    shape: float = 0.5
    median: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.shape > 0 and self.median > 0):
            raise ValueError("a Weibull session model has shape > 0 and median > 0")

    @property
    def scale(self) -> float:
        """The Weibull scale λ: median = λ (ln 2)^(1/shape)."""
        return self.median / math.log(2) ** (1 / self.shape)

    @property
    def mean(self) -> float:
        """The mean session length: λ Γ(1 + 1/shape)."""
        return self.scale * math.gamma(1 + 1 / self.shape)

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` fresh session lengths (seconds)."""
        return self.scale * rng.weibull(self.shape, size=count)

    def residuals(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """What is left of the sessions of ``count`` nodes observed at a random moment:
        length-biased sessions (from a pool of ``4 * count``), uniform position within them."""
        pool = self.draw(4 * count, rng)
        picked = rng.choice(len(pool), size=count, p=pool / pool.sum())
        return pool[picked] * rng.random(count)

    def departures(self, nodes: int, rng: np.random.Generator, *,
                   window: float = REFRESH_WINDOW) -> np.ndarray:
        """A boolean array: which of ``nodes`` online nodes end their session within
        ``window`` seconds (length-biased sessions, uniform position within them)."""
        return self.residuals(nodes, rng) < window


@dataclass(frozen=True)
class ChurnStep:
    """What happened during one :meth:`ChurnProcess.advance`."""

    #: Nodes online before the step and offline after it.
    left: np.ndarray
    #: Nodes that came online during the step and are online after it (a node that left and
    #: came back within the step is here: it restarted, with an empty table).
    joined: np.ndarray
    #: Every session end and every return during the step (a node may count several times).
    departures: int
    arrivals: int


class ChurnProcess:
    """``nodes`` nodes alternating sessions (``sessions``) and offline gaps (``offline``,
    by default the same model), in simulated seconds from 0."""

    def __init__(self, nodes: int, sessions: SessionModel, rng: np.random.Generator, *,
                 offline: SessionModel | None = None,
                 always_online: np.ndarray | None = None) -> None:
        self.sessions = sessions
        self.offline = sessions if offline is None else offline
        self.rng = rng
        self.now = 0.0
        share = sessions.mean / (sessions.mean + self.offline.mean)
        #: Which nodes are online now.
        self.alive = rng.random(nodes) < share
        self.pinned = np.zeros(nodes, dtype=bool)
        if always_online is not None:
            self.pinned[always_online] = True
            self.alive[always_online] = True
        #: When each node next changes state (stationary start: residual periods).
        self.next_change = np.empty(nodes)
        on = np.flatnonzero(self.alive)
        off = np.flatnonzero(~self.alive)
        self.next_change[on] = sessions.residuals(len(on), rng)
        self.next_change[off] = self.offline.residuals(len(off), rng)
        self.next_change[self.pinned] = np.inf
        self.online_at_start = int(self.alive.sum())
        #: Totals over every step.
        self.departures = 0
        self.arrivals = 0

    def advance(self, duration: float) -> ChurnStep:
        """Move the clock ``duration`` seconds on: every state change due meanwhile happens."""
        if duration < 0:
            raise ValueError("time runs forwards")
        until = self.now + duration
        before = self.alive.copy()
        came_back = np.zeros(len(self.alive), dtype=bool)
        departures = arrivals = 0
        while True:
            due = np.flatnonzero(self.next_change <= until)
            if not len(due):
                break
            leaving = due[self.alive[due]]
            returning = due[~self.alive[due]]
            departures += len(leaving)
            arrivals += len(returning)
            self.alive[due] = ~self.alive[due]
            came_back[returning] = True
            self.next_change[leaving] += self.offline.draw(len(leaving), self.rng)
            self.next_change[returning] += self.sessions.draw(len(returning), self.rng)
        self.now = until
        self.departures += departures
        self.arrivals += arrivals
        return ChurnStep(left=np.flatnonzero(before & ~self.alive),
                         joined=np.flatnonzero(came_back & self.alive),
                         departures=departures, arrivals=arrivals)
