"""The shipped traces replayed against real implementations: the DHT traces against a
libtorrent 2.0 node and an npm bittorrent-dht 11 node, the peer-wire traces against a
libtorrent 2.0 seeder, the UDP tracker traces against npm bittorrent-tracker 11.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py), no bootstrap nodes, no
LSD/UPnP/NAT-PMP, bounded in time. Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts
third-party clients. The npm packages come from ``P2PKIT_BITTORRENT_DHT_DIR`` and
``P2PKIT_BITTORRENT_TRACKER_DIR`` (as .ci/run installs them).

This file is also the scenario script that runs inside the namespace:
``python tests/conformance/test_traces_real.py WORK_DIR [DHT_NPM_DIR TRACKER_NPM_DIR]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # run as the scenario script inside the namespace
    sys.path.insert(0, str(ROOT))

from tests.conformance.test_real_nodes import (  # noqa: E402
    BITTORRENT_DHT,
    BITTORRENT_DHT_NODE,
    LIBTORRENT,
    LIBTORRENT_NODE,
    Target,
)
from tests.conformance.test_real_trackers import BITTORRENT_TRACKER  # noqa: E402
from tests.conformance.test_real_trackers import HOST as TRACKER_HOST  # noqa: E402
from tests.conformance.test_real_trackers import PORT as TRACKER_PORT  # noqa: E402

SEEDER = ("127.0.0.5", 6881)
LIBTORRENT_SEEDER = r'''
import sys, time, libtorrent as lt
torrent, save_path = sys.argv[1], sys.argv[2]
s = lt.session({"listen_interfaces": "127.0.0.5:6881", "outgoing_interfaces": "127.0.0.5",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "out_enc_policy": 2, "in_enc_policy": 2, "allow_multiple_connections_per_ip": True})
h = s.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save_path})
h.force_recheck()
for _ in range(200):
    if h.status().is_seeding:
        break
    time.sleep(0.1)
print("ready", h.status().is_seeding, lt.__version__, flush=True)
time.sleep(300)
'''


def _npm_target(work: Path, npm_dir: str, name: str, script: str) -> Target:
    """A node script run from a directory linked to ``npm_dir``'s node_modules."""
    where = work / name
    where.mkdir()
    os.symlink(Path(npm_dir, "node_modules"), where / "node_modules")
    (where / "target.mjs").write_text(script)
    return Target(["node", "target.mjs"], cwd=str(where))


async def scenario(work: Path, dht_npm: str | None = None,
                   tracker_npm: str | None = None) -> dict:
    from p2pkit.conformance.trace_replay import load_trace, replay, shipped_traces
    from tests.conformance.trace_helpers import TORRENTS, content_from_capture

    traces = [load_trace(p) for p in shipped_traces()]
    out: dict = {}

    async def run(who: str, target: Target, address: tuple[str, int], chosen: list) -> None:
        await target.start()
        try:
            report = await replay(chosen, address, timeout=2.0)
        finally:
            await target.stop()
        for r in report.results:
            out.setdefault(who, {})[r.case.id] = {
                "verdict": r.verdict, "reason": r.reason, "version": target.version}

    dht = [t for t in traces if t.manifest.protocol == "dht"]
    await run("libtorrent", Target(["/usr/bin/python3", "-c", LIBTORRENT_NODE]), LIBTORRENT,
              dht)
    if dht_npm:
        await run("bittorrent-dht", _npm_target(work, dht_npm, "dht", BITTORRENT_DHT_NODE),
                  BITTORRENT_DHT, dht)
    if tracker_npm:
        await run("bittorrent-tracker",
                  _npm_target(work, tracker_npm, "tracker", BITTORRENT_TRACKER),
                  (TRACKER_HOST, TRACKER_PORT),
                  [t for t in traces if t.manifest.protocol == "tracker"])
    for trace in (t for t in traces if t.manifest.protocol == "bittorrent"):
        torrent, capture = TORRENTS[trace.manifest.info_hash]
        data = work / trace.manifest.info_hash
        content_from_capture(capture, torrent.read_bytes(), data)
        await run("libtorrent", Target(["/usr/bin/python3", "-c", LIBTORRENT_SEEDER,
                                        str(torrent), str(data)]), SEEDER, [trace])
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict:
    from tests.interop.conftest import _can_unshare, in_ci, require, run_in_netns

    if not in_ci() and not os.environ.get("P2PKIT_INTEROP"):
        pytest.skip("starts third-party clients: set P2PKIT_INTEROP=1 (always on in CI)")
    require(_can_unshare(), "unshare -n and ip")
    check = subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True)
    require(check.returncode == 0, "python3-libtorrent")
    npm = [os.environ.get(v, "") for v in ("P2PKIT_BITTORRENT_DHT_DIR",
                                           "P2PKIT_BITTORRENT_TRACKER_DIR")]
    npm = [d if d and Path(d, "node_modules").is_dir() else "" for d in npm]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, __file__, str(tmp_path_factory.mktemp("real")), *npm],
                        timeout=150, env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _verdicts(seen: dict, who: str) -> dict[str, str]:
    from tests.interop.conftest import require

    require(who in seen, f"{who} (its npm package directory)")
    return {case: s["verdict"] for case, s in seen[who].items()}


@pytest.mark.interop
def test_shipped_traces_against_libtorrent(replayed) -> None:
    verdicts = _verdicts(replayed, "libtorrent")
    # what libtorrent answered when recorded, it answers again, with fresh values
    assert verdicts == {
        "dht/trace/bittorrent-dht-bep44-put-get": "pass",
        "dht/trace/libtorrent-bep44-put-get": "pass",
        "bittorrent/trace/libtorrent-magnet-metadata": "pass",
        "bittorrent/trace/libtorrent-v2-magnet-hashes": "pass"}, replayed["libtorrent"]


@pytest.mark.interop
def test_shipped_dht_traces_against_bittorrent_dht(replayed) -> None:
    verdicts = _verdicts(replayed, "bittorrent-dht")
    assert verdicts == dict.fromkeys(("dht/trace/bittorrent-dht-bep44-put-get",
                                      "dht/trace/libtorrent-bep44-put-get"), "pass"), \
        replayed["bittorrent-dht"]


@pytest.mark.interop
def test_shipped_tracker_traces_against_bittorrent_tracker(replayed) -> None:
    verdicts = _verdicts(replayed, "bittorrent-tracker")
    assert verdicts == dict.fromkeys(("tracker/trace/aria2-udp-announce",
                                      "tracker/trace/libtorrent-udp-announce-scrape"),
                                     "pass"), replayed["bittorrent-tracker"]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(scenario(Path(sys.argv[1]), *sys.argv[2:4]))))
