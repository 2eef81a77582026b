"""The Gnutella 0.6 catalog, one module per spec document and section.

The cases run over TCP with the stream runner (:mod:`p2pkit.conformance.stream_runner`) and
:class:`~p2pkit.conformance.gnutella._common.GnutellaWire` as its protocol, against a servent
(normally an ultrapeer) the harness joins several times at once: as leaves with a QRP table of
their own, and as ultrapeers, so that what the target forwards, and where it routes the
answers, can be seen.

>>> len(CASES) >= 40, len({c.id for c in CASES}) == len(CASES)
(True, True)
"""

from __future__ import annotations

from p2pkit.conformance.case import Case
from p2pkit.conformance.gnutella import (
    bye,
    compression,
    handshake,
    pong_caching,
    qrp,
    robustness,
    routing,
    ultrapeers,
)
from p2pkit.conformance.gnutella._common import GnutellaWire

__all__ = ["CASES", "MODULES", "GnutellaWire"]

#: The catalog's modules in run order.
MODULES = (handshake, ultrapeers, compression, pong_caching, routing, qrp, bye, robustness)
#: Every Gnutella case.
CASES: tuple[Case, ...] = tuple(case for module in MODULES for case in module.CASES)
