"""The conformance suite's speed (issue 11: "the full BitTorrent suite against a local peer in
under 60 s, the DHT suite in under 30 s"): the whole catalog, through the command line, against
p2pkit's own seeder (``p2pkit bt seed``) and DHT node (``p2pkit dht serve``), each served by a
process of its own on 127.0.0.1 (as tests/conformance/test_cli.py does), with the CLI's
defaults (2 s per step, 0.4 s silence windows)::

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_conformance.py \\
        --benchmark-only --benchmark-columns=min,median,max,rounds

Each round is one ``p2pkit conformance run`` process, start-up included. ``extra_info`` keeps
the verdict counts, the run's own duration and the slowest cases. No timing asserts: figures
are recorded in docs/conformance-reports.md.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.bt_helpers import write_torrent

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
ROUNDS = 3
#: Seconds a target process lives (every round of its benchmark fits).
TARGET_LIFETIME = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_tcp(port: int, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def seeder(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``p2pkit bt seed`` of the conformance tests' hybrid torrent (11 pieces of 32 KiB)."""
    root = tmp_path_factory.mktemp("seed")
    torrent = root / "album.torrent"
    torrent.write_bytes(write_torrent(root))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pkit", "bt", "seed", str(torrent), "--data", str(root),
         "--listen", f"127.0.0.1:{port}", "--no-trackers", "--duration", str(TARGET_LIFETIME),
         "-q"], env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_tcp(port)
        yield f"127.0.0.1:{port}", torrent
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def dht_node() -> Iterator[str]:
    """``p2pkit dht serve`` on 127.0.0.1, no bootstrap."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pkit", "dht", "serve", "--listen", "127.0.0.1:0",
         "--duration", str(TARGET_LIFETIME), "--json"], env=ENV, cwd=ROOT,
        stdout=subprocess.PIPE, text=True)
    try:
        doc = json.loads(proc.stdout.readline())
        yield f"127.0.0.1:{doc['port']}"
    finally:
        _stop(proc)


def _run(protocol: str, target: str, report: Path, *extra: str) -> None:
    done = subprocess.run([sys.executable, "-m", "p2pkit", "conformance", "run", protocol,
                           "--target", target, "--json", str(report), *extra],
                          env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: a finding, still a whole run


def _record(benchmark, report: Path) -> None:
    doc = json.loads(report.read_text())
    slowest = sorted(doc["cases"], key=lambda c: -c["elapsed"])[:8]
    benchmark.extra_info.update(
        cases=doc["summary"]["total"],
        verdicts={k: v for k, v in doc["summary"].items() if k not in ("total", "exit_status")
                  and v},
        run_duration=round(doc["duration"], 2),
        slowest={c["id"]: round(c["elapsed"], 2) for c in slowest})


def test_bittorrent_catalog_against_own_seeder(benchmark, seeder, tmp_path) -> None:
    target, torrent = seeder
    report = tmp_path / "bittorrent.json"
    benchmark.pedantic(_run, args=("bittorrent", target, report, "--torrent", str(torrent)),
                       rounds=ROUNDS, iterations=1)
    _record(benchmark, report)


def test_dht_catalog_against_own_node(benchmark, dht_node, tmp_path) -> None:
    report = tmp_path / "dht.json"
    benchmark.pedantic(_run, args=("dht", dht_node, report), rounds=ROUNDS, iterations=1)
    _record(benchmark, report)
