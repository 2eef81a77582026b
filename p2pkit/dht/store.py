"""The peers a node stores for info-hashes (BEP 5 §announce_peer, §get_peers).

BEP 5: announce_peer "announce[s] that the peer, controlling the querying node, is downloading
a torrent on a port. [...] The queried node [...] should store the IP address of the querying
node and the supplied port number under the infohash in its store of peer contact information."
BEP 5 sets no lifetime; like libtorrent, an announce expires after :data:`PEER_EXPIRY` unless
repeated. Both the number of torrents and the peers per torrent are bounded.

>>> import random
>>> store = PeerStore(random.Random(0))
>>> store.add(b"h" * 20, ("10.0.0.1", 6881), now=0.0)
>>> store.peers(b"h" * 20, now=60.0)
[('10.0.0.1', 6881)]
>>> store.peers(b"h" * 20, now=PEER_EXPIRY)
[]
"""

from __future__ import annotations

import random
from collections import OrderedDict

__all__ = ["MAX_PEERS_PER_TORRENT", "MAX_TORRENTS", "PEER_EXPIRY", "PeerStore"]

#: Seconds an announce is kept without being repeated.
PEER_EXPIRY = 30 * 60.0
#: Peers kept per info-hash (the oldest announce is forgotten first).
MAX_PEERS_PER_TORRENT = 500
#: Info-hashes tracked (the least recently announced is forgotten first).
MAX_TORRENTS = 5000

Address = tuple[str, int]


class PeerStore:
    """info-hash -> peer address -> time of its last announce."""

    def __init__(self, rng: random.Random, *, expiry: float = PEER_EXPIRY,
                 max_peers: int = MAX_PEERS_PER_TORRENT, max_torrents: int = MAX_TORRENTS):
        self._rng = rng
        self.expiry = expiry
        self.max_peers = max_peers
        self.max_torrents = max_torrents
        self._torrents: OrderedDict[bytes, OrderedDict[Address, float]] = OrderedDict()
        #: BEP 33: "Nodes following this BEP must store the seed status of announcing nodes".
        self._seeds: dict[bytes, set[Address]] = {}

    def __len__(self) -> int:
        return len(self._torrents)

    def add(self, info_hash: bytes, peer: Address, now: float, *, seed: bool = False) -> None:
        """Record an announce; ``seed``: BEP 33 ``seed=1`` (the peer has the whole torrent)."""
        peers = self._torrents.get(info_hash)
        if peers is None:
            if len(self._torrents) >= self.max_torrents:
                gone, _ = self._torrents.popitem(last=False)
                self._seeds.pop(gone, None)
            peers = self._torrents[info_hash] = OrderedDict()
        self._torrents.move_to_end(info_hash)
        peers.pop(peer, None)
        peers[peer] = now
        seeds = self._seeds.setdefault(info_hash, set())
        if seed:
            seeds.add(peer)
        else:
            seeds.discard(peer)  # "if no seed key was present [...] assume [...] a peer"
        while len(peers) > self.max_peers:
            dropped, _ = peers.popitem(last=False)
            seeds.discard(dropped)

    def peers(self, info_hash: bytes, now: float, limit: int | None = None) -> list[Address]:
        """Unexpired peers of ``info_hash``; a random ``limit`` of them when there are more."""
        peers = self._torrents.get(info_hash)
        if not peers:
            return []
        seeds = self._seeds.get(info_hash, set())
        while peers:
            oldest, at = next(iter(peers.items()))
            if now - at < self.expiry:
                break
            del peers[oldest]
            seeds.discard(oldest)
        if not peers:
            del self._torrents[info_hash]
            self._seeds.pop(info_hash, None)
            return []
        found = list(peers)
        if limit is not None and len(found) > limit:
            found = self._rng.sample(found, limit)
        return found

    def is_seed(self, info_hash: bytes, peer: Address) -> bool:
        """Whether ``peer`` announced ``info_hash`` with BEP 33 ``seed=1``."""
        return peer in self._seeds.get(info_hash, ())

    def info_hashes(self, now: float) -> list[bytes]:
        """Info-hashes with at least one unexpired peer (BEP 51 samples come from here)."""
        return [h for h in list(self._torrents) if self.peers(h, now)]
