"""Deflate on a Gnutella link: the compressing side, and the limits on the inflating side.

Spec: compression §2 ("Every 4K or so of data sent, issue a synchronization flush (called
Z_SYNC_FLUSH in the zlib implementation)"; "the Z_DEFAULT_COMPRESSION compression level (6)
was optimal"), §3 (a side that says ``Content-Encoding: deflate`` in its own handshake block
sends one zlib stream after it; the other side inflates), §5 (each direction on its own).

:class:`Deflater` is one direction's compressing state: :meth:`Deflater.batch` compresses what a
connection queued since its last write and ends it with a synchronisation flush, so the peer
can inflate every descriptor of the batch at once (the sans-I/O analogue of the document's
200 ms timer: a driver writes after every read and every timer, and each write is one batch;
a batch above :data:`SYNC_FLUSH_BYTES` is flushed every that many bytes, as §2 asks).

:class:`InflateGuard` bounds what a peer can make the inflating side produce (a deflate bomb
is a few kilobytes that inflate to gigabytes): inflated bytes per compressed byte, inflated
bytes per second, and inflated bytes not yet framed. Crossing one raises
:class:`~p2pkit.errors.LimitExceeded`, which ends that connection only (Bye 400 with the
reason). ``now`` is set by the connection before it feeds bytes (the guard reads no clock).

>>> d = Deflater()
>>> wire = d.batch(b"ping" * 100)
>>> len(wire) < 400, zlib.decompressobj().decompress(wire) == b"ping" * 100
(True, True)
>>> g = InflateGuard(max_ratio=10, grace=0)
>>> g.check(consumed=10, produced=100)
>>> g.check(consumed=1, produced=1000)
Traceback (most recent call last):
...
p2pkit.errors.LimitExceeded: gnutella, field inflated: 1100 inflated bytes from 11 compressed (more than 10 per byte): a deflate bomb
"""

from __future__ import annotations

import zlib

from p2pkit.errors import LimitExceeded

__all__ = [
    "COMPRESSION_LEVEL",
    "INFLATE_GRACE",
    "MAX_INFLATED_BUFFER",
    "MAX_INFLATED_PER_SECOND",
    "MAX_INFLATE_RATIO",
    "SYNC_FLUSH_BYTES",
    "DEFLATE_MEMORY_LEVEL",
    "DEFLATE_WINDOW_BITS",
    "Deflater",
    "InflateGuard",
]

PROTOCOL = "gnutella"
#: compression §2: "the Z_DEFAULT_COMPRESSION compression level (6) was optimal".
COMPRESSION_LEVEL = 6
#: compression §2: "Every 4K or so of data sent, issue a synchronization flush".
SYNC_FLUSH_BYTES = 4096
#: zlib's window (2**14 = 16 KiB) and memory level for our deflater: 78 KiB of zlib state per
#: deflated link instead of the 262 KiB of zlib's defaults (window 2**15, memory level 8), for
#: the same ratio on the in-memory network of ``test_deflate.py -k ratio`` (13.1 %; a 4 KiB
#: window gave 39.9 %, an 8 KiB one 27.3 %).
#: Any inflater reads it (the window size is in the stream header, RFC 1950 §2.2). On the
#: servent this state is allocated for every handshake that completes, so a hostile churn of
#: handshakes allocated and freed 262 KiB each in 64 KiB blocks; the C heap it fragmented stayed
#: large after the attack (issue 13, docs/guide/hostile-peers.md).
DEFLATE_WINDOW_BITS = 14
DEFLATE_MEMORY_LEVEL = 4
#: Inflated bytes per compressed byte, over the whole link, above which the stream is a bomb.
#: Gnutella traffic deflates to 40-50 % (compression §2: ratios "between 40%-50%"), QRP
#: patches and HSEP triples far better; zlib's own ceiling is about 1032.
MAX_INFLATE_RATIO = 100
#: Inflated bytes allowed before the ratio is enforced (a first QRP table of zeros).
INFLATE_GRACE = 256 * 1024
#: Inflated bytes per second, averaged over ``RATE_WINDOW`` (a bucket that refills).
MAX_INFLATED_PER_SECOND = 1024 * 1024
#: Seconds the per-second budget is measured over (the bucket holds this many seconds).
RATE_WINDOW = 1.0
#: Inflated bytes waiting to be framed into descriptors at once.
MAX_INFLATED_BUFFER = 256 * 1024


class Deflater:
    """The compressing side of one direction (compression §2): one zlib stream per link."""

    def __init__(self, *, level: int = COMPRESSION_LEVEL) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, DEFLATE_WINDOW_BITS,
                                   DEFLATE_MEMORY_LEVEL)
        #: Bytes given and bytes produced, for the ratio the docs quote.
        self.plain_bytes = 0
        self.deflated_bytes = 0

    def batch(self, data: bytes) -> bytes:
        """Compress ``data`` (whole descriptors) and end with ``Z_SYNC_FLUSH``.

        The peer can inflate everything up to the flush point as soon as it arrives.
        """
        if not data:
            return b""
        out = bytearray()
        for start in range(0, len(data), SYNC_FLUSH_BYTES):
            out += self._z.compress(data[start : start + SYNC_FLUSH_BYTES])
            out += self._z.flush(zlib.Z_SYNC_FLUSH)
        self.plain_bytes += len(data)
        self.deflated_bytes += len(out)
        return bytes(out)


class InflateGuard:
    """Limits on one inflating direction; :meth:`check` raises :class:`LimitExceeded`."""

    def __init__(self, *, max_ratio: int = MAX_INFLATE_RATIO, grace: int = INFLATE_GRACE,
                 max_per_second: int = MAX_INFLATED_PER_SECOND,
                 max_buffered: int = MAX_INFLATED_BUFFER) -> None:
        self.max_ratio = max_ratio
        self.grace = grace
        self.max_per_second = max_per_second
        self.max_buffered = max_buffered
        #: The time the connection is feeding bytes at (set before each feed).
        self.now = 0.0
        self.consumed = 0
        self.produced = 0
        self._bucket = float(max_per_second * RATE_WINDOW)
        self._bucket_at: float | None = None

    def check(self, *, consumed: int, produced: int, buffered: int = 0) -> None:
        """Count one inflation step (``consumed`` compressed bytes gave ``produced``) with
        ``buffered`` inflated bytes still unframed; raise when a limit is crossed."""
        self.consumed += consumed
        self.produced += produced
        if self.produced > self.grace and self.produced > self.max_ratio * self.consumed:
            raise LimitExceeded(
                f"{self.produced} inflated bytes from {self.consumed} compressed (more than "
                f"{self.max_ratio} per byte): a deflate bomb", protocol=PROTOCOL,
                path="inflated")
        if buffered > self.max_buffered:
            raise LimitExceeded(f"{buffered} inflated bytes buffered (bound "
                                f"{self.max_buffered})", protocol=PROTOCOL, path="inflated")
        if self._bucket_at is not None:
            refill = (self.now - self._bucket_at) * self.max_per_second
            self._bucket = min(self.max_per_second * RATE_WINDOW, self._bucket + refill)
        self._bucket_at = self.now
        self._bucket -= produced
        if self._bucket < 0:
            raise LimitExceeded(f"more than {self.max_per_second} inflated bytes per second",
                                protocol=PROTOCOL, path="inflated")
