"""Fewer garbage collections while a command streams many short-lived records.

CPython collects its youngest generation every 700 net container allocations; a dissection
allocates a handful per message (the record, its lazily decoded value, the bencoded dictionary
of a datagram) and holds a window of them (``FrameOrder``), so a collection every few dozen
messages walks that window again and again, for nothing: records form no reference cycles.
Collecting every :data:`YOUNG_THRESHOLD` allocations instead still frees any cycle (memory
stays flat); measured on the DHT capture of ``benchmarks/mode_captures.py``: 4 % fewer
instructions in summary mode (docs/dissect-performance.md).
"""

from __future__ import annotations

import gc
from collections.abc import Callable

__all__ = ["YOUNG_THRESHOLD", "collect_young_less_often"]

#: Net container allocations between two collections of the youngest generation.
YOUNG_THRESHOLD = 10_000


def collect_young_less_often(threshold: int = YOUNG_THRESHOLD) -> Callable[[], None]:
    """Raise the youngest generation's threshold to ``threshold`` (never lower it); return
    what puts the thresholds back as they were.

    >>> import gc
    >>> before = gc.get_threshold()
    >>> restore = collect_young_less_often(12_345)
    >>> gc.get_threshold()[0] >= 12_345
    True
    >>> restore(); gc.get_threshold() == before
    True
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], threshold), *before[1:])
    return lambda: gc.set_threshold(*before)
