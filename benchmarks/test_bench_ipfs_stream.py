"""One libp2p stream over real TCP between two processes on loopback, p2pkit → p2pkit: the
sender (this process) dials a p2pkit sink process, negotiates Noise XX, yamux and
``/p2pkit/throughput/1.0.0``, writes 32 MiB and waits for the sink's count
(benchmarks/ipfs_stream_throughput.py; the js-libp2p pairs run there, with ``--npm-dir``).

``tox -e bench -- -k ipfs_stream``; figures in docs/ipfs-performance.md. Each round is a new
connection (handshake included in the time); ``extra_info`` holds the MB/s of the stream alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ipfs_stream_throughput import send

SCRIPT = Path(__file__).with_name("ipfs_stream_throughput.py")
TOTAL = 32 << 20


@pytest.fixture(scope="module")
def sink():
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--endpoint", "sink"],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])})
    try:
        yield json.loads(proc.stdout.readline())["listening"][0]
    finally:
        proc.terminate()
        proc.wait(10)


def test_bench_one_stream_p2pkit_to_p2pkit_over_tcp(benchmark, sink):
    rates: list[float] = []

    def transfer() -> None:
        result = asyncio.run(asyncio.wait_for(send(sink, TOTAL), 120))
        assert result["received"] == TOTAL
        rates.append(TOTAL / result["seconds"] / 1e6)

    benchmark.pedantic(transfer, rounds=5, iterations=1)
    benchmark.extra_info["stream_mb_per_s"] = [round(r, 1) for r in rates]
