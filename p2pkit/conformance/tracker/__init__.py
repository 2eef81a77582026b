"""The tracker catalog: HTTP trackers (BEP 3 §trackers, BEP 7, 23, 48) and UDP trackers
(BEP 15, BEP 41 options), one module per spec section.

A case runs over the transport of its first tag (``http`` or ``udp``); ``p2pkit conformance
run tracker --target URL`` runs the cases of the URL's scheme
(:func:`p2pkit.conformance.tracker.live.run_tracker`).

>>> len(CASES) >= 35, len({c.id for c in CASES}) == len(CASES)
(True, True)
>>> sorted({c.tags[0] for c in CASES})
['http', 'udp']
"""

from __future__ import annotations

from p2pkit.conformance.case import Case
from p2pkit.conformance.tracker import (
    bep3_announce,
    bep7_ipv6,
    bep15_announce,
    bep15_connect,
    bep15_scrape,
    bep23_compact,
    bep48_scrape,
    robustness,
)

__all__ = ["CASES", "MODULES"]

#: The catalog's modules in run order.
MODULES = (bep3_announce, bep23_compact, bep7_ipv6, bep48_scrape, bep15_connect,
           bep15_announce, bep15_scrape, robustness)
#: Every tracker case.
CASES: tuple[Case, ...] = tuple(case for module in MODULES for case in module.CASES)
