"""The tracker suite against a real implementation: npm bittorrent-tracker 11 (webtorrent's
tracker), HTTP and UDP on 127.0.0.6:6969.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py). The cases it fails are the
tracker findings of docs/conformance.md; this test keeps that page true. The one-minute
connection-id case is left out here (the CLI run of the docs includes it).

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
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.6", 6969

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
    from p2pkit.conformance import catalog
    from p2pkit.conformance.reporters import html, json_report
    from p2pkit.conformance.tracker.live import run_tracker

    work = tempfile.mkdtemp()
    os.symlink(Path(npm_dir, "node_modules"), Path(work, "node_modules"))
    Path(work, "target.mjs").write_text(BITTORRENT_TRACKER)
    cases = [c for c in catalog("tracker") if "slow" not in c.tags]
    proc, version = await _start(work)
    summary: dict = {"version": version, "verdicts": {}, "duration": {}}
    try:
        for scheme, url in (("http", f"http://{HOST}:{PORT}/announce"),
                            ("udp", f"udp://{HOST}:{PORT}")):
            report = await run_tracker(cases, url, timeout=1.0)
            json_report.write(report, out / f"bittorrent-tracker-{scheme}.json")
            html.write(report, out / f"bittorrent-tracker-{scheme}.html")
            summary["duration"][scheme] = report.duration
            summary["verdicts"].update({r.case.id: r.verdict for r in report.results})
    finally:
        proc.terminate()
        await proc.wait()
    return summary


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
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, __file__, str(tmp_path), npm_dir], timeout=180,
                        env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    verdicts = seen["verdicts"]
    assert len(verdicts) >= 80 and "skipped" not in verdicts.values()
    assert {c for c, v in verdicts.items() if v in ("fail", "target-died")} == MUST_FAILURES
    assert {c for c, v in verdicts.items() if v == "non-strict"} == SHOULD_FAILURES


if __name__ == "__main__":
    _main()
