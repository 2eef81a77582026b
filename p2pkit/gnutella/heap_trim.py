"""Giving the C heap that a burst of connections freed back to the system (glibc ``malloc_trim``).

Why (issue 13, measured in docs/guide/hostile-peers.md): during a hostile churn of connections
the servent's C heap grows (socket buffers, 64 KiB reads, zlib states, QRP tables) and, once the
connections are gone, most of it is free but stays resident: glibc returns memory to the
system on ``free`` only from the top of the heap, and one small block still in use above the
freed ones pins everything below it. ``malloc_trim(0)`` releases the free pages wherever they
are (``madvise(MADV_DONTNEED)``). Python's own allocator (obmalloc arenas) is not concerned:
an arena goes back to the system as soon as it is empty.

:class:`HeapTrimmer` decides when: at a low-water mark, when the number of live connections
has fallen to a quarter of its peak since the last trim (after an attack, or any burst) and
at least :data:`MIN_CLOSED` connections closed since then, at most once every
:data:`MIN_TRIM_INTERVAL` seconds; a trim refused only because the last one was too recent
is owed, and the driver calls again at :attr:`HeapTrimmer.retry_at` (the end of a burst closes
its last connections within a second, just after the trim that its first closes caused). It
takes the live count and the time (no clock of its own), so it is tested without sockets. On
a C library without ``malloc_trim`` (musl, macOS) trimming does nothing.

>>> trims = []
>>> trimmer = HeapTrimmer(trim=lambda: trims.append(1) or True)
>>> [trimmer.note(live, now) for live, now in [(10, 0.0), (100, 1.0), (60, 2.0), (20, 3.0)]]
[False, False, False, True]
>>> trimmer.note(2, 4.0), trimmer.trims  # 18 closed since the trim: too few
(False, 1)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

__all__ = ["LOW_WATER_FRACTION", "MIN_CLOSED", "MIN_TRIM_INTERVAL", "HeapTrimmer",
           "collect_and_trim", "malloc_trim"]

#: Live connections at or below this fraction of their peak since the last trim: trim.
LOW_WATER_FRACTION = 0.25
#: Fewer connections closed since the last trim free too little to be worth one.
MIN_CLOSED = 32
#: Seconds between two trims at least (measured here: a trim that releases 20 MB of 64 KiB
#: blocks takes 3.4 ms, one with nothing to release 10 µs; it runs in the event loop).
MIN_TRIM_INTERVAL = 5.0

_libc: ctypes.CDLL | None | bool = None


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: True if memory was released, False otherwise (or when the C
    library has no such function)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    if _libc is False:
        return False
    assert isinstance(_libc, ctypes.CDLL)
    return bool(_libc.malloc_trim(0))


def collect_and_trim() -> bool:
    """A full garbage collection, then :func:`malloc_trim`. The connections of a burst leave
    reference cycles (an exception and its traceback's frames, a transport and its protocol)
    that only a collection of the oldest generation frees, and CPython runs one only when the
    long-lived objects have grown by a quarter: without it, ~3.7 MB (Python objects and the C
    heap they hold) stayed 45 s after the soak probe's attack. A full collection of the
    servent's ~30,000 objects takes about 5 ms."""
    gc.collect()
    return malloc_trim()


class HeapTrimmer:
    """Calls ``trim`` when the live connections fall to a low-water mark (module docstring)."""

    def __init__(self, *, fraction: float = LOW_WATER_FRACTION, min_closed: int = MIN_CLOSED,
                 min_interval: float = MIN_TRIM_INTERVAL,
                 trim: Callable[[], bool] = collect_and_trim) -> None:
        self.fraction = fraction
        self.min_closed = min_closed
        self.min_interval = min_interval
        self._trim = trim
        #: Most connections live at once since the last trim.
        self.peak = 0
        #: Connections closed since the last trim.
        self.closed = 0
        #: Trims done so far.
        self.trims = 0
        self._live = 0
        self._last: float | None = None
        self._owed = False

    def note(self, live: int, now: float) -> bool:
        """``live`` connections at ``now`` (call it when one opens or ends, and at
        :attr:`retry_at`); True if it trimmed."""
        if live < self._live:
            self.closed += self._live - live
        self._live = live
        self.peak = max(self.peak, live)
        self._owed = False
        if self.closed < self.min_closed or live > self.peak * self.fraction:
            return False
        if self._last is not None and now - self._last < self.min_interval:
            self._owed = True  # the burst's last connections closed too soon after a trim
            return False
        self._trim()
        self.trims += 1
        self.peak, self.closed, self._last = live, 0, now
        return True

    @property
    def retry_at(self) -> float | None:
        """When a trim refused only for :attr:`min_interval` is due (call :meth:`note` then),
        or None: without it, the memory the last connections of a burst freed within
        ``min_interval`` of a trim would stay until the next burst."""
        return self._last + self.min_interval if self._owed and self._last is not None \
            else None
