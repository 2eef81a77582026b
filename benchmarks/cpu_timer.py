"""The fewest CPU seconds a step takes in a few calls: the timer of the one-process benchmark
scripts (``gnutella_summary_runs.py``, ``gnutella_view_costs.py``, ``tree_fusion_bound.py``),
which import it from the directory they run in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def fastest(step: Callable[[], Any], rounds: int = 5) -> float:
    """The fewest CPU seconds (``time.process_time``) ``step`` took in ``rounds`` calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        step()
        best = min(best, time.process_time() - start)
    return best
