"""The Mainline DHT catalog (BEP 5 and its extensions), one module per spec section.

>>> len(CASES) >= 60, len({c.id for c in CASES}) == len(CASES)
(True, True)
"""

from __future__ import annotations

from p2pkit.conformance.case import Case
from p2pkit.conformance.dht import (
    bep5_announce_peer,
    bep5_errors,
    bep5_find_node,
    bep5_get_peers,
    bep5_krpc,
    bep5_ping,
    bep32_ipv6,
    bep33_scrape,
    bep42_security,
    bep43_read_only,
    bep44_items,
    bep51_sample_infohashes,
    robustness,
)

__all__ = ["CASES", "MODULES"]

#: The catalog's modules in run order.
MODULES = (bep5_krpc, bep5_ping, bep5_find_node, bep5_get_peers, bep5_announce_peer,
           bep5_errors, bep32_ipv6, bep33_scrape, bep42_security, bep43_read_only, bep44_items,
           bep51_sample_infohashes, robustness)
#: Every DHT case.
CASES: tuple[Case, ...] = tuple(case for module in MODULES for case in module.CASES)
