"""Buffered bytes of one reassembled direction, remembering which frame carried which byte.

Stream decoders (BitTorrent, Gnutella, HTTP trackers) take bytes from here; a message is
reported in the frame that carried its last byte, as Wireshark does for reassembled PDUs.
"""

from __future__ import annotations

from collections import deque

__all__ = ["StreamBuffer"]


class StreamBuffer:
    """Bytes from stream offset :attr:`start` onwards, with frame attribution.

    >>> b = StreamBuffer()
    >>> b.append(0, b"abc", frame=1, time=0.1)
    >>> b.append(3, b"def", frame=2, time=0.2)
    >>> b.frame_of(4), b.take(4), b.start
    ((2, 0.2), b'abcd', 4)
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.start = 0  # stream offset of data[0]
        self._chunks: deque[tuple[int, int, float]] = deque()  # (end offset, frame, time)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, offset: int, data: bytes, frame: int, time: float) -> None:
        """Add bytes that start at stream ``offset`` (which must be :attr:`end`)."""
        if offset != self.start + len(self.data):  # (not self.end: this runs per segment)
            self.reset(offset)
        self.data += data
        self._chunks.append((offset + len(data), frame, time))

    def reset(self, offset: int) -> None:
        """Drop everything buffered and continue at ``offset`` (after a gap)."""
        self.data.clear()
        self.start = offset
        self._chunks.clear()

    def frame_of(self, index: int) -> tuple[int, float]:
        """(frame, time) of the frame that carried buffer byte ``index``."""
        offset = self.start + index
        for end, frame, time in self._chunks:
            if offset < end:
                return frame, time
        if self._chunks:
            return self._chunks[-1][1], self._chunks[-1][2]
        return 0, 0.0

    def frames_of(self, n: int) -> tuple[int, int, int]:
        """(first, last, count) of the frames that carried the first ``n`` buffered bytes.

        >>> b = StreamBuffer()
        >>> for i, chunk in enumerate((b"ab", b"cd", b"ef")):
        ...     b.append(2 * i, chunk, frame=10 + i, time=0.0)
        >>> b.frames_of(3), b.frames_of(1), b.frames_of(6)
        ((10, 11, 2), (10, 10, 1), (10, 12, 3))
        """
        end = self.start + n
        first = last = count = 0
        for chunk_end, frame, _ in self._chunks:
            if chunk_end <= self.start:
                continue
            if not count:
                first = frame
            if frame != last:
                count += 1
                last = frame
            if chunk_end >= end:
                break
        return first, last, count

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` buffered bytes."""
        out = bytes(self.data[:n])
        del self.data[:n]
        self.start += n
        while self._chunks and self._chunks[0][0] <= self.start:
            self._chunks.popleft()
        return out

    def skip(self, n: int) -> None:
        """Drop the first ``n`` buffered bytes."""
        self.take(n)
