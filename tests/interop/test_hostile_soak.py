"""The hostile-peer soak (``benchmarks/hostile_soak.py``), short: a few seconds per phase, inside
``unshare -n`` with only ``lo`` up. Well-behaved peers must all succeed, during the attack too,
and every server must stop on SIGTERM with exit 0 and no traceback in its log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_short_soak(netns):
    done = netns([sys.executable, str(ROOT / "benchmarks" / "hostile_soak.py"), "--phase", "3",
                  "--per-kind", "8", "--json"], timeout=240, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    assert [r["server"] for r in results] == ["bt seed", "bt tracker", "dht serve",
                                              "gnutella serve"]
    for r in results:
        for phase in ("quiet", "attack", "recovery"):
            assert r[phase]["success"] == 1.0, r
        assert r["attack_connections"] > 0, r
        assert r["tracebacks"] == 0 and r["exit_status"] == 0, r
        assert r["peak_fds"] < 300, r  # the admission caps, not the attackers, bound them
