"""Dissection throughput: p2pkit vs tshark on a recorded loopback transfer (>= 200,000 packets).

The capture is recorded once per machine by ``benchmarks/record_transfer.py`` (two libtorrent
2.0.8 peers inside ``unshare -n``, 300 MB over TCP with 1500-byte MTU) and cached under
``.benchmarks/captures/``. Both tools decode the same BitTorrent fields; the packets/s of each
and their ratio are in ``extra_info`` (``tox -e bench``; figures in docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from p2pkit.capture.dissect import Dissection

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".benchmarks" / "captures"
CAPTURE = CACHE / "libtorrent-transfer-300mb.pcap"
TSHARK_FIELDS = ["-e", "frame.number", "-e", "bittorrent.msg.type", "-e",
                 "bittorrent.piece.index", "-e", "bittorrent.piece.begin", "-e",
                 "bittorrent.piece.length"]


@pytest.fixture(scope="module")
def transfer_capture() -> Path:
    if not CAPTURE.exists():
        needed = ("tcpdump", "ethtool", "unshare")
        missing = [t for t in needed if shutil.which(t) is None]
        if missing or not Path("/usr/bin/python3").exists():
            pytest.skip(f"cannot record the benchmark capture: missing {missing}")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/bin/python3", str(ROOT / "benchmarks" / "record_transfer.py"),
                        str(CAPTURE), "--megabytes", "300", "--timeout", "240"],
                       check=True, timeout=400)
    return CAPTURE


def _p2pkit(path: Path) -> tuple[int, int]:
    d = Dissection(path)
    messages = sum(1 for _ in d)
    return d.frames, messages


def _tshark(path: Path) -> int:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", *TSHARK_FIELDS],
                         check=True, capture_output=True, timeout=900).stdout
    return out.count(b"\n")


@pytest.mark.benchmark(group="dissect-transfer")
def test_p2pkit_dissect(benchmark, transfer_capture):
    frames, messages = benchmark.pedantic(_p2pkit, args=(transfer_capture,), rounds=3,
                                          iterations=1)
    assert frames >= 200_000
    benchmark.extra_info["packets"] = frames
    benchmark.extra_info["messages"] = messages
    benchmark.extra_info["packets_per_second"] = round(frames / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="dissect-transfer")
@pytest.mark.skipif(shutil.which("tshark") is None and os.environ.get("CI") != "true",
                    reason="tshark not installed")
def test_tshark_fields(benchmark, transfer_capture):
    frames = benchmark.pedantic(_tshark, args=(transfer_capture,), rounds=3, iterations=1)
    benchmark.extra_info["packets"] = frames
    benchmark.extra_info["packets_per_second"] = round(frames / benchmark.stats.stats.median)
