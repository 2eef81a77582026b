"""The tracker matrix: the suite against npm bittorrent-tracker 11 (webtorrent's tracker),
HTTP and UDP on 127.0.0.6:6969, and p2pkit's own tracker, HTTP and UDP on 127.0.0.7:6969.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py), the four runs at the same
time. The matrix reports go to ``$P2PKIT_CONFORMANCE_ARTIFACTS/tracker``
(tests/conformance/real_matrix.py); the cases each tracker fails must equal the committed record
docs/conformance-matrix/tracker.json, which docs/conformance-matrix.md draws and the tracker
findings of docs/conformance.md cite: this test keeps those pages true. The one-minute
connection-id case is left out here (the CLI run of the docs includes it). opentracker is not in
the matrix: Debian's build serves only whitelisted info-hashes, and every case announces fresh
random ones (its answers are judged offline, docs/conformance.md).

Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts a third-party tracker. The npm package
comes from ``P2PKIT_BITTORRENT_TRACKER_DIR`` (a directory with
``node_modules/bittorrent-tracker``; ``npm install --ignore-scripts bittorrent-tracker``: the
server needs none of the WebRTC client's native modules).

This file is also the scenario script that runs inside the namespace:
``python tests/conformance/test_real_trackers.py OUT_DIR NPM_DIR``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.6", 6969
OWN_HOST = "127.0.0.7"
COMMAND = ("P2PKIT_UPDATE_MATRIX=1 P2PKIT_BITTORRENT_TRACKER_DIR=DIR CI=true "
           "python -m pytest tests/conformance/test_real_trackers.py")

BITTORRENT_TRACKER = r'''
import Server from 'bittorrent-tracker/server'
import { readFileSync } from 'fs'
const version = JSON.parse(readFileSync('node_modules/bittorrent-tracker/package.json')).version
const server = new Server({ udp: true, http: true, ws: false, stats: false, trustProxy: false })
server.on('error', () => {})
server.on('warning', () => {})
server.listen(6969, { http: '127.0.0.6', udp: '127.0.0.6', udp6: '::1' },
              () => console.log('ready ' + version))
setTimeout(() => process.exit(0), 300000)
'''

#: MUST cases bittorrent-tracker fails (the findings page lists the evidence).
MUST_FAILURES = {
    # binary strings bencoded as UTF-8: bytes >= 0x80 become two bytes
    "tracker/bep3/announce/dictionary-peers",
    "tracker/bep48/scrape/files", "tracker/bep48/scrape/counts",
    "tracker/bep48/scrape/downloaded", "tracker/bep48/scrape/multiple",
    "tracker/bep48/scrape/no-effect",
    # one constant connection id (the protocol id itself) for everyone
    "tracker/bep15/connection-id/protocol-id", "tracker/bep15/connection-id/other-address",
}
SHOULD_FAILURES = {"tracker/bep3/announce/not-itself", "tracker/bep23/compact/default",
                   "tracker/bep15/connection-id/different",
                   "tracker/bep15/announce/not-itself"}


async def _start(work: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        "node", "target.mjs", cwd=work, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    await asyncio.sleep(0.3)
    return proc, line.decode().split()[-1]


async def scenario(out: Path, npm_dir: str) -> dict:
    from p2pkit.bittorrent.tracker.core import TrackerCore
    from p2pkit.bittorrent.tracker.server import TrackerServer
    from p2pkit.conformance import catalog
    from p2pkit.conformance.tracker.live import run_tracker
    from tests.conformance.real_matrix import p2pkit_version, record, write_artifacts

    work = tempfile.mkdtemp()
    os.symlink(Path(npm_dir, "node_modules"), Path(work, "node_modules"))
    Path(work, "target.mjs").write_text(BITTORRENT_TRACKER)
    cases = [c for c in catalog("tracker") if "slow" not in c.tags]
    proc, version = await _start(work)
    own = TrackerServer(TrackerCore(rng=random.Random(7)))
    await own.start(host=OWN_HOST, http_port=PORT, udp_port=PORT)
    urls = {"bittorrent-tracker-http": f"http://{HOST}:{PORT}/announce",
            "bittorrent-tracker-udp": f"udp://{HOST}:{PORT}",
            "p2pkit-http": f"http://{OWN_HOST}:{PORT}/announce",
            "p2pkit-udp": f"udp://{OWN_HOST}:{PORT}"}

    async def judge(label: str, url: str):
        report = await run_tracker(cases, url, timeout=1.0)
        report.label = label
        return report

    try:
        reports = await asyncio.gather(*(judge(label, url) for label, url in urls.items()))
    finally:
        proc.terminate()
        await proc.wait()
        await own.close()
    matrix = write_artifacts(reports, out)
    targets = {label: {"implementation": f"{name} ({label.rpartition('-')[2].upper()})",
                       "version": version if name == "bittorrent-tracker" else p2pkit_version()}
               for label in urls for name in [label.rpartition("-")[0]]}
    return record(matrix, targets, COMMAND)


def _main() -> None:
    out, npm_dir = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps(asyncio.run(scenario(out, npm_dir))))


@pytest.mark.interop
def test_suite_against_bittorrent_tracker(tmp_path) -> None:
    from tests.interop.conftest import _can_unshare, in_ci, require, run_in_netns

    if not in_ci() and not os.environ.get("P2PKIT_INTEROP"):
        pytest.skip("starts a third-party tracker: set P2PKIT_INTEROP=1 (always on in CI)")
    require(_can_unshare(), "unshare -n and ip")
    npm_dir = os.environ.get("P2PKIT_BITTORRENT_TRACKER_DIR", "")
    require(bool(npm_dir) and Path(npm_dir, "node_modules", "bittorrent-tracker").is_dir(),
            "P2PKIT_BITTORRENT_TRACKER_DIR with node_modules/bittorrent-tracker")
    from tests.conformance.real_matrix import artifacts_dir, check_against_record

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = artifacts_dir("tracker", tmp_path)
    done = run_in_netns([sys.executable, __file__, str(out), npm_dir], timeout=180,
                        env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out / "matrix.html").is_file() and (out / "matrix.xml").is_file()
    for target in seen["targets"]:
        assert sum(target["counts"].values()) >= 35 and target["counts"]["skipped"] == 0
    by_transport = {label: {c for c in MUST_FAILURES if c in seen["verdicts"]
                            and label in seen["verdicts"][c]}
                    for label in ("bittorrent-tracker-http", "bittorrent-tracker-udp")}
    check_against_record(seen, {**by_transport, "p2pkit-http": set(), "p2pkit-udp": set()})
    should = {f["case"] for f in seen["findings"] if f["verdict"] == "non-strict"
              and f["label"].startswith("bittorrent-tracker")}
    assert should == SHOULD_FAILURES
    assert not any(f["label"].startswith("p2pkit") for f in seen["findings"])


if __name__ == "__main__":
    _main()
