"""The shipped traces replayed against real implementations: the DHT traces against a
libtorrent 2.0 node, the peer-wire traces against a libtorrent 2.0 seeder.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py), no bootstrap nodes, no
LSD/UPnP/NAT-PMP, bounded in time. Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts
third-party clients.

This file is also the scenario script that runs inside the namespace:
``python tests/conformance/test_traces_real.py WORK_DIR``.
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

from tests.conformance.test_real_nodes import LIBTORRENT, LIBTORRENT_NODE, Target  # noqa: E402

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


async def scenario(work: Path) -> dict:
    from p2pkit.conformance.trace_replay import load_trace, replay, shipped_traces
    from tests.conformance.trace_helpers import TORRENTS, content_from_capture

    traces = [load_trace(p) for p in shipped_traces()]
    out: dict = {}

    async def run(target: Target, address: tuple[str, int], chosen: list) -> None:
        await target.start()
        try:
            report = await replay(chosen, address, timeout=2.0)
        finally:
            await target.stop()
        for r in report.results:
            out[r.case.id] = {"verdict": r.verdict, "reason": r.reason,
                              "version": target.version}

    await run(Target(["/usr/bin/python3", "-c", LIBTORRENT_NODE]), LIBTORRENT,
              [t for t in traces if t.manifest.protocol == "dht"])
    for trace in (t for t in traces if t.manifest.protocol == "bittorrent"):
        torrent, capture = TORRENTS[trace.manifest.info_hash]
        data = work / trace.manifest.info_hash
        content_from_capture(capture, torrent.read_bytes(), data)
        await run(Target(["/usr/bin/python3", "-c", LIBTORRENT_SEEDER, str(torrent),
                          str(data)]), SEEDER, [trace])
    return out


@pytest.mark.interop
def test_shipped_traces_against_libtorrent(tmp_path) -> None:
    from tests.interop.conftest import _can_unshare, in_ci, require, run_in_netns

    if not in_ci() and not os.environ.get("P2PKIT_INTEROP"):
        pytest.skip("starts libtorrent: set P2PKIT_INTEROP=1 (always on in CI)")
    require(_can_unshare(), "unshare -n and ip")
    check = subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True)
    require(check.returncode == 0, "python3-libtorrent")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, __file__, str(tmp_path)], timeout=120, env=env,
                        cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {i for i in seen if i.startswith("dht/")} == {
        "dht/trace/bittorrent-dht-bep44-put-get", "dht/trace/libtorrent-bep44-put-get"}
    assert len([i for i in seen if i.startswith("bittorrent/")]) == 2
    # what libtorrent answered when recorded, it answers again, with fresh values
    assert {i: s["verdict"] for i, s in seen.items()} == dict.fromkeys(seen, "pass"), seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(scenario(Path(sys.argv[1])))))
