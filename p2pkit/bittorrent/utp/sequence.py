"""16-bit uTP sequence numbers and the reorder buffer (BEP 29 §seq_nr, §Selective ACK).

BEP 29 §seq_nr: "This is the sequence number of this packet. As opposed to TCP, uTP sequence
numbers are not referring to bytes, but packets." They are 16-bit numbers that wrap around, so
"before" and "after" are decided on the circle: ``b`` is after ``a`` when it lies less than half
the space ahead of it (:func:`seq_after`).

:class:`ReorderBuffer` holds packets that arrived ahead of the next expected number and hands
them out in order once the gap is filled; the socket core (:mod:`p2pkit.bittorrent.utp.connection`)
and the dissector's uTP reassembly (:class:`p2pkit.bittorrent.dissect.UtpDirection`) both use it.

>>> seq_after(0xFFFF, 2), seq_distance(0xFFFE, 1)
(True, 3)
>>> buf = ReorderBuffer(next_seq=0xFFFF, limit=8)
>>> buf.add(0, b"b"), buf.add(0xFFFF, b"a"), buf.add(0xFFFE, b"old")
(True, True, False)
>>> [item for _, item in buf.drain()], buf.next_seq
([b'a', b'b'], 1)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["SEQ_MASK", "ReorderBuffer", "seq_after", "seq_distance"]

#: Sequence and ack numbers are 16 bits (BEP 29 §header format).
SEQ_MASK = 0xFFFF
_HALF = 0x8000

T = TypeVar("T")


def seq_distance(a: int, b: int) -> int:
    """How far ``b`` lies ahead of ``a`` on the 16-bit circle (0 … 65535).

    >>> seq_distance(10, 12), seq_distance(12, 10)
    (2, 65534)
    """
    return (b - a) & SEQ_MASK


def seq_after(a: int, b: int) -> bool:
    """Whether ``b`` comes after ``a`` (less than half the number space ahead of it).

    >>> seq_after(65535, 0), seq_after(0, 65535), seq_after(5, 5)
    (True, False, False)
    """
    return 0 < (b - a) & SEQ_MASK < _HALF


class ReorderBuffer(Generic[T]):
    """Packets held until every earlier sequence number has arrived.

    ``next_seq`` is the number expected next (``None`` until the caller knows where the stream
    starts); :meth:`add` refuses what is behind it (a retransmission of something delivered),
    what is already held, and what lies ``limit`` or more numbers ahead of it (out of window:
    BEP 29 bounds what a sender may have in flight, so such numbers are hostile or stale).
    """

    def __init__(self, next_seq: int | None = None, *, limit: int) -> None:
        self.next_seq = next_seq
        self.limit = limit
        self.pending: dict[int, T] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def is_behind(self, seq: int) -> bool:
        """Whether ``seq`` was already delivered (it lies before ``next_seq``)."""
        return self.next_seq is not None and seq_after(seq, self.next_seq)

    def add(self, seq: int, item: T) -> bool:
        """Hold ``item`` as packet ``seq``; False when it is behind, held or out of window."""
        if seq in self.pending:
            return False
        if self.next_seq is not None:
            ahead = seq_distance(self.next_seq, seq)
            if ahead >= self.limit:
                return False
        self.pending[seq] = item
        return True

    def drain(self) -> Iterator[tuple[int, T]]:
        """The held packets that are now in order, advancing ``next_seq`` past each."""
        pending = self.pending
        while self.next_seq in pending:
            seq = self.next_seq
            yield seq, pending.pop(seq)
            self.next_seq = (seq + 1) & SEQ_MASK

    def skip_to_nearest(self) -> None:
        """Give up on the missing number: ``next_seq`` jumps to the nearest held packet (a
        capture that lost a packet for good)."""
        if self.pending and self.next_seq is not None:
            start = self.next_seq
            self.next_seq = min(self.pending, key=lambda s: seq_distance(start, s))

    def received_after(self, base: int, count: int) -> list[int]:
        """Offsets ``k`` in 0 … count-1 such that packet ``base + k`` is held (what a
        selective ACK reports)."""
        pending = self.pending
        return [k for k in range(count) if (base + k) & SEQ_MASK in pending]
