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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["REFRESH_WINDOW", "SessionModel"]

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

    def departures(self, nodes: int, rng: np.random.Generator, *,
                   window: float = REFRESH_WINDOW) -> np.ndarray:
        """A boolean array: which of ``nodes`` online nodes end their session within
        ``window`` seconds (length-biased sessions, uniform position within them)."""
        pool = self.scale * rng.weibull(self.shape, size=4 * nodes)
        picked = rng.choice(len(pool), size=nodes, p=pool / pool.sum())
        residual = pool[picked] * rng.random(nodes)
        return residual < window
