"""Choker: which peers we upload to (BEP 3 §peer protocol, the choking algorithm).

Sans-I/O: time comes in as ``now`` (seconds), randomness from a ``random.Random``, and the
session turns each :class:`ChokeDecision` into ``choke``/``unchoke`` messages. "Interested" here
is the *remote* peer's interest in our pieces (its ``interested``/``not interested`` messages).

BEP 3, implemented as written:

* "The currently deployed choking algorithm avoids fibrillation by only changing who's choked
  once every ten seconds." — :meth:`Choker.run` changes nothing before :meth:`Choker.next_round`.
* "It does reciprocation and number of uploads capping by unchoking the four peers which it has
  the best download rates from and are interested."
* "Peers which have a better upload rate but aren't interested get unchoked and if they become
  interested the worst uploader gets choked." — a round unchokes every non-interested peer
  ranked above the last unchoked interested one; :meth:`Choker.set_interested` returns the
  choke of the worst uploader when such a peer becomes interested.
* "If a downloader has a complete file, it uses its upload rate rather than its download rate
  to decide who to unchoke." — ``run(now, seeding=True)``.
* "For optimistic unchoking, at any one time there is a single peer which is unchoked
  regardless of its upload rate (if interested, it counts as one of the four allowed
  downloaders.) Which peer is optimistically unchoked rotates every 30 seconds. To give them a
  decent chance of getting a complete piece to upload, new connections are three times as
  likely to start as the current optimistic unchoke as anywhere else in the rotation." — peers
  sit in a rotation whose head is the optimistic unchoke; a new peer is inserted at a position
  drawn from ``randrange(-2, n + 1)`` clamped to 0 (as BitTorrent 3.x's ``Choker`` did), so
  the head is three times as likely as any other place.

Rates are bytes per second over a sliding window (``rate_window``, 20 s by default) of the
byte counts given to :meth:`Choker.record`.

>>> import random
>>> choker = Choker(slots=2, rng=random.Random(3))
>>> for name in "abc":
...     choker.add_peer(name, now=0.0)
...     _ = choker.set_interested(name, True)
>>> choker.record("c", downloaded=400_000, now=1.0)
>>> decision = choker.run(2.0, seeding=False)   # "a" and "b" took the idle slots before
>>> "c" in decision.unchoke, sorted(choker.unchoked), choker.next_round()
(True, ['b', 'c'], 12.0)
>>> choker.run(5.0, seeding=False)   # between rounds: nothing changes
ChokeDecision(unchoke=frozenset(), choke=frozenset())
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from p2pkit.errors import LocalProtocolError

__all__ = ["ChokeDecision", "Choker"]

#: Rate buckets are this many seconds wide.
RATE_BUCKET = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChokeDecision:
    """Changes to make: send ``unchoke`` to the peers in ``unchoke``, ``choke`` to ``choke``."""

    unchoke: frozenset[Hashable] = frozenset()
    choke: frozenset[Hashable] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.unchoke or self.choke)


_NO_CHANGE = ChokeDecision()


class _Rate:
    """Bytes per second over a sliding window, in buckets of :data:`RATE_BUCKET` seconds."""

    __slots__ = ("since", "buckets", "total")

    def __init__(self, since: float) -> None:
        self.since = since
        self.buckets: deque[list[float]] = deque()  # [bucket start, bytes]
        self.total = 0

    def add(self, amount: int, now: float) -> None:
        slot = now - now % RATE_BUCKET
        if self.buckets and self.buckets[-1][0] == slot:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([slot, amount])
        self.total += amount

    def rate(self, now: float, window: float) -> float:
        buckets = self.buckets
        horizon = now - window
        while buckets and buckets[0][0] + RATE_BUCKET <= horizon:
            self.total -= buckets.popleft()[1]
        return self.total / max(min(window, now - self.since), RATE_BUCKET)


class _Peer:
    __slots__ = ("interested", "downloaded", "uploaded")

    def __init__(self, now: float) -> None:
        self.interested = False
        self.downloaded = _Rate(now)  # from the peer to us
        self.uploaded = _Rate(now)  # from us to the peer


class Choker:
    """BEP 3's choking algorithm (see the module docstring).

    ``slots``: the interested peers unchoked at once, optimistic unchoke included ("the four");
    ``None`` unchokes every peer (each round, and as soon as a choked peer becomes
    interested). ``round_interval`` and ``optimistic_interval`` are BEP 3's ten and thirty
    seconds.
    """

    def __init__(
        self,
        slots: int | None = 4,
        round_interval: float = 10.0,
        optimistic_interval: float = 30.0,
        *,
        rng: random.Random,
        rate_window: float = 20.0,
    ) -> None:
        if slots is not None and slots < 1:
            raise LocalProtocolError("slots must be at least 1 (or None for no limit)")
        if round_interval <= 0 or optimistic_interval <= 0 or rate_window <= 0:
            raise LocalProtocolError("intervals and the rate window must be positive")
        self._slots = slots
        self._round_interval = round_interval
        self._optimistic_interval = optimistic_interval
        self._rate_window = rate_window
        self._rng = rng
        self._peers: dict[Hashable, _Peer] = {}
        self._rotation: list[Hashable] = []  # head: the optimistic unchoke
        self._unchoked: set[Hashable] = set()
        self._optimistic: Hashable | None = None
        self._round_rates: dict[Hashable, float] = {}  # the rates the last round ranked by
        self._next_round = float("-inf")
        self._next_optimistic = float("-inf")

    # ------------------------------------------------------------------ views

    @property
    def unchoked(self) -> frozenset[Hashable]:
        """The peers we currently do not choke."""
        return frozenset(self._unchoked)

    @property
    def optimistic(self) -> Hashable | None:
        """The current optimistic unchoke (``None`` before the first round)."""
        return self._optimistic

    @property
    def rotation(self) -> list[Hashable]:
        """The optimistic unchoke rotation, head first."""
        return list(self._rotation)

    def next_round(self) -> float:
        """When :meth:`run` next changes anything (``-inf`` before the first round)."""
        return self._next_round

    def download_rate(self, peer: Hashable, now: float) -> float:
        """Bytes per second received from ``peer`` over the rate window."""
        return self._peer(peer).downloaded.rate(now, self._rate_window)

    def upload_rate(self, peer: Hashable, now: float) -> float:
        """Bytes per second sent to ``peer`` over the rate window."""
        return self._peer(peer).uploaded.rate(now, self._rate_window)

    # ------------------------------------------------------------------ peers

    def add_peer(self, peer: Hashable, now: float) -> None:
        """A new connection (choked, not interested: "Connections start out choked and not
        interested"), placed in the optimistic rotation, 3x as likely at its head."""
        if peer in self._peers:
            raise LocalProtocolError(f"peer {peer!r} was already added")
        self._peers[peer] = _Peer(now)
        place = self._rng.randrange(-2, len(self._rotation) + 1)
        self._rotation.insert(max(place, 0), peer)

    def remove_peer(self, peer: Hashable) -> None:
        """The connection is gone; its slot is refilled at the next round."""
        self._peer(peer)
        del self._peers[peer]
        self._rotation.remove(peer)
        self._unchoked.discard(peer)
        self._round_rates.pop(peer, None)
        if self._optimistic == peer:
            self._optimistic = None

    def set_interested(self, peer: Hashable, interested: bool) -> ChokeDecision:
        """The peer sent ``interested``/``not interested``; returns the change it causes.

        When an unchoked peer becomes interested and that makes more interested unchoked peers
        than ``slots``, the worst uploader of the last round is choked (BEP 3). When a choked
        peer becomes interested while fewer than ``slots`` interested peers are unchoked, it is
        unchoked at once: nobody is choked for it, and an idle slot until the next round would
        only waste upload capacity. Otherwise nothing changes before the next round."""
        p = self._peer(peer)
        if p.interested == interested:
            return _NO_CHANGE
        p.interested = interested
        if self._slots is None:  # no cap, nothing to reciprocate: unchoke at once
            if interested and peer not in self._unchoked:
                self._unchoked.add(peer)
                return ChokeDecision(unchoke=frozenset((peer,)))
            return _NO_CHANGE
        if not interested:
            return _NO_CHANGE
        downloaders = [q for q in self._rotation  # a list: ties resolve the same every run
                       if q in self._unchoked and self._peers[q].interested]
        if peer not in self._unchoked:
            if len(downloaders) < self._slots:  # an upload slot is idle: fill it now
                self._unchoked.add(peer)
                return ChokeDecision(unchoke=frozenset((peer,)))
            return _NO_CHANGE
        if len(downloaders) <= self._slots:
            return _NO_CHANGE
        rates = self._round_rates
        worst = min((q for q in downloaders if q != self._optimistic),
                    key=lambda q: (rates.get(q, 0.0), q != peer))
        self._unchoked.discard(worst)
        return ChokeDecision(choke=frozenset((worst,)))

    def record(self, peer: Hashable, *, downloaded: int = 0, uploaded: int = 0,
               now: float) -> None:
        """Count bytes received from (``downloaded``) and sent to (``uploaded``) the peer."""
        p = self._peer(peer)
        if downloaded:
            p.downloaded.add(downloaded, now)
        if uploaded:
            p.uploaded.add(uploaded, now)

    # ------------------------------------------------------------------ rounds

    def run(self, now: float, *, seeding: bool, force: bool = False) -> ChokeDecision:
        """A choking round if one is due (``now >= next_round()``), else no change.

        ``seeding``: we have the complete file, so rank by our upload rate to each peer.
        ``force``: run the round now (a peer became interested while an upload slot is free:
        waiting up to ten seconds to fill it would only idle the link).
        """
        if now < self._next_round and not force:
            return _NO_CHANGE
        self._next_round = now + self._round_interval
        if self._slots is None:
            wanted = set(self._peers)
        else:
            if now >= self._next_optimistic:
                if self._next_optimistic != float("-inf"):
                    self._rotate()
                self._next_optimistic = now + self._optimistic_interval
            wanted = self._choose(now, seeding)
        decision = ChokeDecision(unchoke=frozenset(wanted - self._unchoked),
                                 choke=frozenset(self._unchoked - wanted))
        self._unchoked = wanted
        return decision if decision else _NO_CHANGE

    def _choose(self, now: float, seeding: bool) -> set[Hashable]:
        peers, window = self._peers, self._rate_window
        wanted: set[Hashable] = set()
        self._optimistic = self._rotation[0] if self._rotation else None
        quota = self._slots
        if self._optimistic is not None:
            wanted.add(self._optimistic)
            if peers[self._optimistic].interested:
                quota -= 1  # "if interested, it counts as one of the four"
        candidates = [q for q in self._rotation if q != self._optimistic]
        self._rng.shuffle(candidates)  # ties in rate: random order
        if seeding:
            rates = {q: peers[q].uploaded.rate(now, window) for q in candidates}
        else:
            rates = {q: peers[q].downloaded.rate(now, window) for q in candidates}
        candidates.sort(key=rates.__getitem__, reverse=True)
        for q in candidates:
            if quota <= 0:
                break
            wanted.add(q)  # better than the interested ones still to come
            if peers[q].interested:
                quota -= 1
        self._round_rates = rates
        return wanted

    def _rotate(self) -> None:
        """Move the head of the rotation to the next choked, interested peer (if any)."""
        rotation = self._rotation
        for k in range(1, len(rotation)):
            q = rotation[k]
            if q not in self._unchoked and self._peers[q].interested:
                self._rotation = rotation[k:] + rotation[:k]
                return
        if len(rotation) > 1:
            self._rotation = rotation[1:] + rotation[:1]

    def _peer(self, peer: Hashable) -> _Peer:
        try:
            return self._peers[peer]
        except KeyError:
            raise LocalProtocolError(f"unknown peer {peer!r}") from None
