"""The BitTorrent peer-wire catalog (BEP 3, 5, 6, 9, 10, 11, 52), one module per spec section.

The cases run over TCP with the stream runner (:mod:`p2pkit.conformance.stream_runner`) and
the peer wire as its protocol (:class:`~p2pkit.conformance.bittorrent._common.BitTorrentWire`),
against a target that seeds the torrent the harness was given.

>>> len(CASES) >= 80, len({c.id for c in CASES}) == len(CASES)
(True, True)
"""

from __future__ import annotations

from p2pkit.conformance.bittorrent import (
    bep3_bitfield,
    bep3_choking,
    bep3_handshake,
    bep3_requests,
    bep6_fast,
    bep9_metadata,
    bep10_extension,
    bep11_pex,
    bep52_hashes,
    robustness,
)
from p2pkit.conformance.bittorrent._common import BitTorrentWire, TorrentFacts
from p2pkit.conformance.case import Case

__all__ = ["CASES", "MODULES", "BitTorrentWire", "TorrentFacts"]

#: The catalog's modules in run order.
MODULES = (bep3_handshake, bep3_bitfield, bep3_choking, bep3_requests, bep6_fast,
           bep10_extension, bep9_metadata, bep11_pex, bep52_hashes, robustness)
#: Every BitTorrent peer-wire case.
CASES: tuple[Case, ...] = tuple(case for module in MODULES for case in module.CASES)
