"""CPU time per descriptor of the dissector's Gnutella stream decoder (framing and records,
summary lines not drawn), on the descriptors of the Gnutella-heavy benchmark capture (the
gtk-gnutella 1.2.3 capture's eight directions, each past its handshake, fed 40 times in
1448-byte segments); best of five passes. Runs against whichever p2pkit is imported, so two
trees compare with ``PYTHONPATH``:

    cd /tmp && PYTHONPATH=$TREE python $REPO/benchmarks/gnutella_stream_records.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mode_captures import gnutella_streams  # noqa: E402

from p2pkit.gnutella.dissect import GnutellaStream  # noqa: E402

SEGMENT = 1448
PASSES = 40


def main() -> None:
    streams = gnutella_streams()
    best = float("inf")
    records = 0
    for _ in range(5):
        connected = []
        for handshake, body in streams:
            stream = GnutellaStream(transport="tcp", src="a:1", dst="b:2")
            list(stream.data(0, handshake, 1, 0.0))
            connected.append((stream, len(handshake), body))
        start = time.process_time()
        records = 0
        for stream, offset, body in connected:
            for _ in range(PASSES):
                for i in range(0, len(body), SEGMENT):
                    chunk = body[i:i + SEGMENT]
                    records += sum(1 for _ in stream.data(offset, chunk, 1, 0.0))
                    offset += len(chunk)
        best = min(best, time.process_time() - start)
    print(f"{records} descriptor records, {best / records * 1e6:.2f} µs CPU per descriptor")


if __name__ == "__main__":
    main()
