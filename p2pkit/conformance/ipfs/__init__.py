"""The IPFS / libp2p catalog, one module per spec document.

The harness dials the target and plays the client side of every layer with p2pkit's own
sans-I/O cores (:mod:`~p2pkit.conformance.ipfs.session`): multistream-select, Noise XX, yamux,
then identify, kad-dht and Bitswap streams; hostile cases write deliberately wrong bytes built
from the same schemas. The runner is :func:`~p2pkit.conformance.ipfs.live.run_ipfs_cases`.

>>> len(CASES) >= 30, len({c.id for c in CASES}) == len(CASES)
(True, True)
"""

from __future__ import annotations

from p2pkit.conformance.case import Case
from p2pkit.conformance.ipfs import (
    bitswap,
    identify,
    kad_dht,
    multistream_select,
    noise_handshake,
    robustness,
    yamux_session,
)

__all__ = ["CASES", "MODULES"]

#: The catalog's modules in run order.
MODULES = (multistream_select, noise_handshake, yamux_session, identify, kad_dht, bitswap,
           robustness)
#: Every IPFS case.
CASES: tuple[Case, ...] = tuple(case for module in MODULES for case in module.CASES)
