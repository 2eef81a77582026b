"""The iterative lookup: Kademlia's node lookup, for any id length, ``k`` and ``alpha``.

Kademlia (Maymounkov & Mazières, §2.3) keeps ``alpha`` queries in flight and ends when the
``k`` closest nodes seen have all answered. BEP 5 uses it for find_node and get_peers: "the
node [...] queries the nodes it knows about with IDs closest to the infohash. [...] The
querying node iterates over the closest nodes, querying them, until it cannot find any closer
nodes." libp2p's kad-dht the same way (libp2p-ipfs/libp2p-kad-dht.md §Peer routing: "The
lookup terminates when the initiator has queried and gotten responses from the k [...] closest
nodes it has seen").

This class is the algorithm alone, with no wire format: it says whom to ask next and when it
is done; a deployment's node (the Mainline one is :mod:`p2pkit.dht.node`) sends the queries in
its own format and feeds the answers back.

>>> lookup = Lookup(bytes(20), k=2, alpha=1, id_bits=160)
>>> lookup.add(b"\\x80" + bytes(19), ("10.0.0.1", 1))
>>> [c.addr for c in lookup.next_queries()]
[('10.0.0.1', 1)]
>>> lookup.responded(b"\\x80" + bytes(19), [(b"\\x01" + bytes(19), ("10.0.0.2", 2))])
>>> [c.addr for c in lookup.next_queries()]  # closer: asked next
[('10.0.0.2', 2)]
>>> lookup.responded(b"\\x01" + bytes(19), [])
>>> lookup.finished, [c.addr for c in lookup.closest()], lookup.hops
(True, [('10.0.0.2', 2), ('10.0.0.1', 1)], 2)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from p2pkit.kademlia.candidate_state import (
    ANSWER,
    ERROR,
    FAILED,
    LAST_TIMEOUT,
    NEW,
    QUERIED,
    QUERY,
    RESPONDED,
    TIMEOUT,
    next_state,
)
from p2pkit.kademlia.ids import check_id, id_bytes
from p2pkit.kademlia.routing import RoutingTable

__all__ = ["Candidate", "Lookup", "MAX_ATTEMPTS", "MAX_CANDIDATES"]

#: Queries sent to one candidate before it counts as failed (a lost datagram is retried once).
MAX_ATTEMPTS = 2
#: Candidates a lookup remembers (the farthest are forgotten beyond this).
MAX_CANDIDATES = 200

Address = tuple[str, int]


@dataclass(eq=False)
class Candidate:
    """A node a lookup has heard of, and how far along it is with it."""

    id: bytes
    addr: Address
    distance: int
    #: Queries on the path that found it: the starting nodes are hop 1.
    hop: int = 1
    #: One of :mod:`p2pkit.kademlia.candidate_state`'s states.
    state: str = NEW
    #: An opaque write token from its answer, for the store that may follow the lookup (BEP 5's
    #: get_peers / get token, for announce_peer / put); None in deployments without one.
    token: bytes | None = None
    #: Queries sent to it so far.
    attempts: int = 0


class Lookup:
    """Iterative search for the ``k`` nodes closest to ``target``, ``alpha`` queries at once,
    in an ``id_bits``-bit id space (``target`` is that long; candidates of another length are
    ignored)."""

    def __init__(self, target: bytes, *, k: int, alpha: int, id_bits: int) -> None:
        check_id(target, id_bits)
        if k < 1 or alpha < 1:
            raise ValueError("k and alpha are at least 1")
        self.target = target
        self._target = int.from_bytes(target, "big")
        self.k = k
        self.alpha = alpha
        self.id_bits = id_bits
        self._size = id_bytes(id_bits)
        #: Queries sent to addresses whose node id is not known yet (a bootstrap).
        self.unidentified = 0
        self._candidates: dict[bytes, Candidate] = {}
        self._order: list[Candidate] = []  # by distance, rebuilt lazily
        self._dirty = False
        #: Queries handed out so far.
        self.queries_sent = 0

    def seed(self, table: RoutingTable, now: float) -> None:
        """Start from the ``k`` closest nodes of the routing table that are not bad
        (libp2p-kad-dht.md §Peer routing: "At initialization Pn is seeded with the k peers
        from our routing table we know are closest to Key")."""
        for entry in table.closest(self.target, self.k, now=now):
            self.add(entry.id, entry.addr)

    def add(self, node_id: bytes, addr: Address, hop: int = 1) -> None:
        """A node to consider (from the routing table or from an answer)."""
        if len(node_id) != self._size or node_id in self._candidates:
            return
        candidate = Candidate(node_id, addr, int.from_bytes(node_id, "big") ^ self._target, hop)
        self._candidates[node_id] = candidate
        self._order.append(candidate)
        self._dirty = True

    def _sorted(self) -> list[Candidate]:
        if self._dirty:
            self._order.sort(key=lambda c: c.distance)
            for dropped in self._order[MAX_CANDIDATES:]:
                if dropped.state == NEW:
                    del self._candidates[dropped.id]
            self._order = [c for c in self._order if c.id in self._candidates]
            self._dirty = False
        return self._order

    def _window(self) -> list[Candidate]:
        """The ``k`` closest candidates that have not failed."""
        out = []
        for c in self._sorted():
            if c.state != FAILED:
                out.append(c)
                if len(out) == self.k:
                    break
        return out

    @property
    def in_flight(self) -> int:
        return sum(1 for c in self._candidates.values() if c.state == QUERIED)

    def next_queries(self) -> list[Candidate]:
        """Candidates to query now (marked as queried): the closest unqueried ones within the
        ``k`` closest, keeping at most ``alpha`` in flight."""
        room = self.alpha - self.in_flight
        out = []
        if room <= 0:
            return out
        for c in self._window():
            if c.state == NEW:
                c.state = next_state(NEW, QUERY)
                c.attempts += 1
                out.append(c)
                if len(out) == room:
                    break
        self.queries_sent += len(out)
        return out

    def responded(self, node_id: bytes, nodes: Iterable[tuple[bytes, Address]],
                  token: bytes | None = None) -> None:
        """``node_id`` answered with these closer ``nodes``."""
        c = self._candidates.get(node_id)
        if c is None:
            return
        c.state = next_state(c.state, ANSWER)
        c.token = token
        for nid, addr in nodes:
            self.add(nid, addr, c.hop + 1)

    def discounted(self, node_id: bytes, nodes: Iterable[tuple[bytes, Address]]) -> None:
        """``node_id`` answered, but its answer must not count towards the end of the lookup
        (BEP 42 §Enforcement: "Non-compliant nodes also must not be considered to have sent a
        valid response when checking the termination condition of a lookup"); the ``nodes``
        it named are still considered."""
        self.failed(node_id)
        for nid, addr in nodes:
            self.add(nid, addr)

    def address_queried(self) -> None:
        """A query went to an address whose node id is unknown (bootstrapping): the lookup
        does not end before it is answered or fails."""
        self.unidentified += 1

    def address_answered(self, node_id: bytes, addr: Address,
                         nodes: Iterable[tuple[bytes, Address]], token: bytes | None = None,
                         *, counted: bool = True) -> None:
        """The node at an address queried with :meth:`address_queried` answered as
        ``node_id`` (it becomes a candidate at hop 1), with these ``nodes``; ``counted=False``
        as for :meth:`discounted`."""
        self.unidentified -= 1
        self.add(node_id, addr)
        if counted:
            self.responded(node_id, nodes, token)
        else:
            self.discounted(node_id, nodes)

    def address_failed(self) -> None:
        """A query of :meth:`address_queried` failed or timed out."""
        self.unidentified -= 1

    def failed(self, node_id: bytes, *, timeout: bool = False) -> None:
        """``node_id`` answered with an error, or timed out (``timeout``): a timeout is retried
        once (BEP 5: "it is suggested to try once more") unless it already was."""
        c = self._candidates.get(node_id)
        if c is None:
            return
        if not timeout:
            c.state = next_state(c.state, ERROR)
        else:
            c.state = next_state(c.state, TIMEOUT if c.attempts < MAX_ATTEMPTS else LAST_TIMEOUT)

    @property
    def finished(self) -> bool:
        """Kademlia's end: nothing in flight (bootstrap queries included) and the ``k``
        closest non-failed candidates have all answered (so no closer node can be learned)."""
        return (self.in_flight == 0 and self.unidentified == 0
                and all(c.state == RESPONDED for c in self._window()))

    def closest(self, count: int | None = None) -> list[Candidate]:
        """The closest candidates that answered (``k`` unless ``count``)."""
        count = self.k if count is None else count
        return [c for c in self._sorted() if c.state == RESPONDED][:count]

    def hop_of(self, node_id: bytes) -> int:
        """Path length to the candidate ``node_id`` (0 when it is none)."""
        c = self._candidates.get(node_id)
        return c.hop if c is not None else 0

    @property
    def hops(self) -> int:
        """Path length to the closest node that answered (0 when none did)."""
        best = self.closest(1)
        return best[0].hop if best else 0
