"""Summary lines of many messages without a record each: the batch path of ``p2pkit dissect``'s
summary mode.

A protocol whose messages come many to a segment (a Gnutella segment carries a dozen
descriptors) may hand the dissector, instead of one record per message, a
:class:`SummaryRun`: the messages of one frame and one direction, each as the tail of its
summary line (``message key=value…``, drawn for the protocol's summary fields, ``wanted``),
and a callable that makes their records when something needs them. The line of every message
is then ``head + tail``, where ``head`` (``frame time src → dst protocol ``) is the same for
the whole run: :class:`~p2pkit.capture.summary_lines.SummaryLines` writes a run with one
``join``. A stream decoder makes runs only when asked (its ``summary_runs`` attribute, set by
the :class:`~p2pkit.capture.dissect.Dissector` of a ``Dissection(summary_runs=True)``), which
the CLI does only when every record would be printed as a summary line (no filter,
``--stats``, ``-V``, JSON or ``-c``).

Records are put back in frame order within bounds counted in records and bytes
(:class:`~p2pkit.capture.dissect.FrameOrder`); :class:`RunOrder` is that order with a run
counted as the records it stands for: it releases exactly the records, in exactly the order,
``FrameOrder`` releases when given the run's records one by one (a run is cut where
``FrameOrder`` would release part of it; a run that would go to the late heap, or pushed
while a bound may be reached part-way, is replaced by its records). Tests compare both on
random pushes (``tests/capture/test_summary_runs.py``) and the lines of every committed
capture with and without runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from p2pkit.capture.dissect import FrameOrder
from p2pkit.capture.record import Record

__all__ = ["RunOrder", "SummaryRun"]


class SummaryRun:
    """The messages of one frame and one direction, as the tails of their summary lines.

    Message ``i`` (``lo <= i < hi``) has the summary line tail ``tails[i]`` (the line after
    ``frame time src → dst protocol ``, drawn for the protocol's summary fields ``wanted``)
    and the bytes ``bounds[i]`` to ``bounds[i + 1]``; ``make()`` makes the records of every
    message of ``tails`` (the ones the decoder gives when it makes no run), for any use other
    than those lines. A run cut in two (:meth:`take`) shares its lists with the other part.
    """

    __slots__ = ("frame", "time", "transport", "src", "dst", "protocol", "wanted", "_tails",
                 "_bounds", "lo", "hi", "length", "_make")

    def __init__(self, frame: int, time: float, transport: str, src: str, dst: str,
                 protocol: str, wanted: tuple[str, ...], tails: list[str], bounds: list[int],
                 make: Callable[[], list[Record]], lo: int = 0, hi: int | None = None) -> None:
        self.frame, self.time, self.transport, self.src, self.dst = (
            frame, time, transport, src, dst)
        self.protocol, self.wanted, self._tails, self._bounds = protocol, wanted, tails, bounds
        self.lo = lo
        self.hi = hi = len(tails) if hi is None else hi
        #: Bytes of the messages (what :class:`FrameOrder` bounds), as a record's ``length``.
        self.length = bounds[hi] - bounds[lo]
        self._make = make

    @property
    def count(self) -> int:
        """How many messages (records) the run stands for."""
        return self.hi - self.lo

    @property
    def tails(self) -> list[str]:
        """The tails of the run's summary lines, in order."""
        tails = self._tails
        return tails if self.lo == 0 and self.hi == len(tails) else tails[self.lo:self.hi]

    @property
    def sizes(self) -> list[int]:
        """The bytes of each message, in order."""
        bounds = self._bounds
        return [bounds[i + 1] - bounds[i] for i in range(self.lo, self.hi)]

    def records(self) -> list[Record]:
        """The records of the run's messages, in order."""
        return self._make()[self.lo:self.hi]

    def take(self, n: int) -> SummaryRun:
        """A run of the first ``n`` messages (0 < n < count); this run keeps the rest."""
        # (what SummaryRun(..., lo, lo + n) makes, its slots set here: RunOrder cuts the
        # front run at nearly every push once its bound is reached)
        lo = self.lo
        hi = lo + n
        head = _new_run(SummaryRun)
        head.frame, head.time, head.transport, head.src, head.dst = (
            self.frame, self.time, self.transport, self.src, self.dst)
        head.protocol, head.wanted, head._tails, head._bounds, head._make = (
            self.protocol, self.wanted, self._tails, self._bounds, self._make)
        head.lo, head.hi = lo, hi
        bounds = self._bounds
        head.length = length = bounds[hi] - bounds[lo]
        self.lo = hi
        self.length -= length
        return head

    def __repr__(self) -> str:
        return (f"SummaryRun(frame={self.frame}, {self.src} → {self.dst} {self.protocol}, "
                f"{self.hi - self.lo} messages)")


_new_run = object.__new__


def expand(items: Iterable[Any]) -> Iterator[Record]:
    """Every record of ``items`` (records and runs), in order."""
    for item in items:
        if type(item) is SummaryRun:
            yield from item.records()
        else:
            yield item


class RunOrder(FrameOrder):
    """:class:`FrameOrder` for records and :class:`SummaryRun` objects: the same records
    released at the same points, a run counted as its records (the bounds hold records)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Records held (a run counts its messages).
        self.held = 0
        #: Runs in the queue (none: the items held are records, and :class:`FrameOrder`'s own
        #: :meth:`extend` and :meth:`release_into` serve, the records counted by the queue).
        self.runs_held = 0

    @property
    def full(self) -> bool:
        held = self.held if self.runs_held else len(self._queue) + len(self._late)
        return held > self.max_held or self.held_bytes > self.max_bytes

    def __len__(self) -> int:
        return self.held

    def push(self, record: Record) -> None:
        FrameOrder.push(self, record)
        self.held += 1

    def pop(self) -> Record:
        """The held record of the lowest frame (the first message of a run, cut off)."""
        late, queue = self._late, self._queue
        if late and (not queue or late[0][0] < queue[0].frame):
            record = heapq.heappop(late)[2]
        else:
            record = queue[0]
            if type(record) is SummaryRun:
                if record.hi - record.lo > 1:
                    record = record.take(1)
                else:
                    queue.popleft()
                    self.runs_held -= 1
            else:
                queue.popleft()
        self.held_bytes -= record.length
        self.held -= 1
        return record

    def _pop_head(self, out: list[Any]) -> None:
        """Release the lowest held item whole (a run: all its messages share one frame, so
        :meth:`pop` would give them one after the other)."""
        late, queue = self._late, self._queue
        if late and (not queue or late[0][0] < queue[0].frame):
            item = heapq.heappop(late)[2]
            self.held -= 1
        else:
            item = queue.popleft()
            if type(item) is SummaryRun:
                self.held -= item.hi - item.lo
                self.runs_held -= 1
            else:
                self.held -= 1
        self.held_bytes -= item.length
        out.append(item)

    def extend(self, records: Iterable[Any], out: list[Any], frame: int | None = None,
               only_when_ready: bool = True) -> None:
        """:meth:`FrameOrder.extend`: the items pushed, then (with ``frame``) what
        :meth:`release_into` ``frame`` releases, if :meth:`ready` ``frame`` or whatever
        ``only_when_ready``."""
        if not self.runs_held:  # records only, so far: FrameOrder's, unless a run comes
            if type(records) is not list:
                records = list(records)
            for item in records:
                if type(item) is SummaryRun:
                    break
            else:
                FrameOrder.extend(self, records, out, frame, only_when_ready)
                self.held = len(self._queue) + len(self._late)
                return
            self.held = len(self._queue) + len(self._late)
        self._extend(records, out)
        if frame is not None and (not only_when_ready or self.ready(frame)):
            self.release_into(frame, out)

    def _extend(self, records: Iterable[Any], out: list[Any]) -> None:
        queue = self._queue
        for item in records:
            if type(item) is not SummaryRun:
                at = item.frame
                if at >= self._tail:  # (_push_one inlined for a record in frame order)
                    queue.append(item)
                    self._tail = at
                    self.held += 1
                    self.held_bytes += item.length
                    if self.held > self.max_held or self.held_bytes > self.max_bytes:
                        out.append(self.pop())
                else:
                    self._push_one(item, out)
                continue
            count = item.hi - item.lo
            if (not self._late and item.frame >= self._tail and self.held <= self.max_held
                    and self.held_bytes + item.length <= self.max_bytes):
                # no late record, no byte bound reachable: FrameOrder pops one record a push
                # from the front of its queue, as many as the held bound is passed by
                self._queue.append(item)
                self._tail = item.frame
                self.runs_held += 1
                self.held += count
                self.held_bytes += item.length
                over = self.held - self.max_held
                if over > 0:
                    self._release_front(over, out)
            else:
                for record in item.records():
                    self._push_one(record, out)

    def _push_one(self, record: Record, out: list[Any]) -> None:
        self.push(record)
        if self.held > self.max_held or self.held_bytes > self.max_bytes:
            out.append(self.pop())

    def _release_front(self, n: int, out: list[Any]) -> None:
        """Release the first ``n`` records of the queue (nothing late is held)."""
        queue = self._queue
        while n > 0:
            head = queue[0]
            count = head.hi - head.lo if type(head) is SummaryRun else 1
            if count > n:
                head = head.take(n)
                count = n
            else:
                queue.popleft()
                if type(head) is SummaryRun:
                    self.runs_held -= 1
            self.held -= count
            self.held_bytes -= head.length
            out.append(head)
            n -= count

    def release_into(self, frame: int, out: list[Any]) -> None:
        if not self.runs_held:  # records only: FrameOrder's
            FrameOrder.extend(self, (), out, frame, False)
            self.held = len(self._queue) + len(self._late)
            return
        limit = frame - self.window
        while True:
            first = self.first_frame()
            if first is None:
                return
            if first <= limit:
                self._pop_head(out)
            elif self.full:
                out.append(self.pop())
            else:
                return

    def flush(self) -> Iterator[Any]:
        out: list[Any] = []
        while self._queue or self._late:
            self._pop_head(out)
        return iter(out)
