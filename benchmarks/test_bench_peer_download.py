"""Loopback torrent download (BEP 3): p2pkit vs libtorrent 2.0 vs aria2 from one libtorrent
seeder, and a 10-peer p2pkit swarm.

Runs benchmarks/peer_download.py once per scenario inside ``unshare -n`` (loopback only, every
process bounded in time) and puts MB/s per downloader, p2pkit's ratios, peak RSS and the swarm's
per-peer times and upload split into ``benchmark.extra_info``::

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_peer_download.py \
        --benchmark-only -s

Content: 1 GiB for the comparison, 256 MiB for the swarm (``P2PKIT_BENCH_SIZE_MB`` overrides
both, e.g. 64 for a quick run); generated once and cached under ``.benchmarks/peer-download/``.
Needs libtorrent's Python binding (``P2PKIT_LIBTORRENT_PYTHON`` or /usr/bin/python3) and
``aria2c``; skipped outside CI when one is missing. No timing asserts: figures are recorded in
docs/peer-performance.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.peer_download import (
    DEFAULT_SIZE_MB,
    SWARM_DEFAULT_SIZE_MB,
    download_timeout,
    ensure_content,
    size_mb_from_env,
)
from tests.interop.conftest import _can_unshare, require, require_executable
from tests.interop.test_dht_interop import _libtorrent_python

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "peer_download.py"


def _run(scenario: str, size_mb: int, timeout: float) -> dict:
    """The scenario script (it enters its own ``unshare -n`` namespace); its JSON report."""
    env = dict(os.environ)
    lt_python = _libtorrent_python()
    if lt_python is not None:
        env["P2PKIT_LIBTORRENT_PYTHON"] = lt_python
    done = subprocess.run([sys.executable, str(SCRIPT), scenario, "--size-mb", str(size_mb),
                           "--timeout", str(int(timeout))], capture_output=True, text=True,
                          timeout=timeout + 30, cwd=str(HERE.parent), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loopback() -> None:
    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")


def test_download_vs_libtorrent_and_aria2(benchmark, loopback):
    require(_libtorrent_python() is not None, "the libtorrent Python binding (python3-libtorrent)")
    require_executable("aria2c")
    size_mb = size_mb_from_env(DEFAULT_SIZE_MB)
    ensure_content(size_mb)  # generated (once) outside the measured round
    timeout = 120 + 3 * download_timeout(size_mb << 20)

    report = benchmark.pedantic(lambda: _run("download", size_mb, timeout), rounds=1,
                                iterations=1)
    summary = report["summary"]
    for key, value in summary.items():
        benchmark.extra_info[key] = value
    for name, figures in report["downloaders"].items():
        for key in ("seconds", "mb_per_s", "peak_rss_mb", "rss_anon_kib", "rss_file_kib",
                    "user_s", "system_s"):
            benchmark.extra_info[f"{name}.{key}"] = figures.get(key)
    for key in ("size", "piece_length", "seeder", "versions", "machine"):
        benchmark.extra_info[key] = report[key]
    print(f"\n{size_mb} MiB from one libtorrent seeder, loopback "
          f"(MTU {report['machine']['lo_mtu']}):")
    print(f"{'downloader':<12}{'seconds':>9}{'MB/s':>9}{'peak RSS MB':>13}{'CPU s':>8}")
    for name, f in report["downloaders"].items():
        rate = f.get("mb_per_s", "-")
        print(f"{name:<12}{f['seconds'] or 0:>9.2f}{rate:>9}{f['peak_rss_mb']:>13}"
              f"{f['user_s'] + f['system_s']:>8.2f}")
    print({k: v for k, v in summary.items() if k.startswith("p2pkit_vs")})
    # every downloader must really have fetched the torrent, else its figure means nothing
    for name, figures in report["downloaders"].items():
        assert figures["complete"], (name, figures.get("log_tail"))


def test_ten_peer_swarm(benchmark, loopback):
    size_mb = size_mb_from_env(SWARM_DEFAULT_SIZE_MB)
    ensure_content(size_mb)
    timeout = 300 + 9 * (size_mb << 20) / 5e6

    report = benchmark.pedantic(lambda: _run("swarm", size_mb, timeout), rounds=1, iterations=1)
    summary = report["summary"]
    for key, value in summary.items():
        benchmark.extra_info[key] = value
    benchmark.extra_info["seeder_uploaded_to"] = report["seeder_uploaded_to"]
    for name, figures in report["peers"].items():
        for key in ("seconds", "uploaded", "downloaded", "peak_rss_mb", "connections"):
            benchmark.extra_info[f"{name}.{key}"] = figures.get(key)
    print(f"\n10-peer p2pkit swarm, {size_mb} MiB: all complete after "
          f"{summary['all_complete_s']} s; seeder uploaded {summary['seeder_uploaded'] >> 20} "
          f"MiB, leechers {summary['leechers_uploaded'] >> 20} MiB")
    print(f"{'peer':<10}{'seconds':>9}{'up MiB':>9}{'down MiB':>10}{'RSS MB':>8}")
    for name, f in report["peers"].items():
        print(f"{name:<10}{f['seconds'] or 0:>9.2f}{f['uploaded'] >> 20:>9}"
              f"{f['downloaded'] >> 20:>10}{f['peak_rss_mb']:>8}")
    assert summary["complete"] == summary["leechers"], report["peers"]
