"""DHT queries answered per second: p2pkit vs libtorrent 2.0 vs bittorrent-dht 11 (BEP 5).

Runs benchmarks/dht_load.py once inside ``unshare -n`` (loopback only, bounded by ``timeout``)
and puts each target's answered/s, loss and the ratios into ``benchmark.extra_info`` (p2pkit is
served twice when uvloop is installed: on asyncio's event loop and on uvloop's)::

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_dht_server.py \
        --benchmark-only

Needs libtorrent's Python binding (``P2PKIT_LIBTORRENT_PYTHON`` or /usr/bin/python3), node and
bittorrent-dht 11 (``P2PKIT_BITTORRENT_DHT_DIR``, else installed with npm into a temporary
directory); skipped outside CI when one is missing. No timing asserts: figures are recorded in
docs/dht-performance.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.conftest import _can_unshare, require, require_executable, run_in_netns
from tests.interop.test_dht_interop import _libtorrent_python

HERE = Path(__file__).resolve().parent
#: Measured seconds per target (after one second of warm-up each).
SECONDS = 5
#: Seconds the whole scenario may take before its namespace is killed.
SCENARIO_TIMEOUT = 120


@pytest.fixture(scope="module")
def loopback_netns():
    """The interop suite's :func:`run_in_netns`, once ``unshare -n`` is known to work."""
    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")
    return run_in_netns


@pytest.fixture(scope="module")
def npm_dir(tmp_path_factory) -> str:
    require_executable("node")
    directory = os.environ.get("P2PKIT_BITTORRENT_DHT_DIR")
    if not directory:
        npm = require_executable("npm")
        directory = str(tmp_path_factory.mktemp("npm"))
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", directory,
                               "bittorrent-dht@11"], capture_output=True, text=True, timeout=300)
        require(done.returncode == 0, f"npm install bittorrent-dht@11 ({done.stderr[-200:]})")
    require(Path(directory, "node_modules", "bittorrent-dht").is_dir(),
            f"bittorrent-dht installed in {directory}")
    return directory


def test_queries_answered_per_second(benchmark, loopback_netns, npm_dir):
    lt_python = _libtorrent_python()
    require(lt_python is not None, "the libtorrent Python binding (python3-libtorrent)")
    argv = [sys.executable, str(HERE / "dht_load.py"), "--lt-python", lt_python,
            "--npm-dir", npm_dir, "--seconds", str(SECONDS)]

    def scenario() -> dict:
        done = loopback_netns(argv, timeout=SCENARIO_TIMEOUT, cwd=str(HERE.parent))
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    report = benchmark.pedantic(scenario, rounds=1, iterations=1)
    summary = report["summary"]
    for name, figures in summary.items():
        for key, value in figures.items():
            benchmark.extra_info[f"{name}.{key}"] = value
    benchmark.extra_info["versions"] = report["versions"]
    benchmark.extra_info["routing_table_sizes"] = report["routing_table_sizes"]
    benchmark.extra_info["loadavg"] = report["loadavg"]
    benchmark.extra_info["window"] = report["window"]
    # the measurement is only meaningful when every target really answered the generator
    for run in report["runs"]:
        assert run["answered"] > 0 and run["invalid"] == 0, run
    assert report["p2pkit_target_status"]["rate_limited"] == 0

