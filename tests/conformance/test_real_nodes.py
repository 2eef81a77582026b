"""The DHT suite against real implementations: libtorrent 2.0 and npm bittorrent-dht 11.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py): a libtorrent session at
127.0.0.3:6881 and a bittorrent-dht node at 127.0.0.4:6881, neither with bootstrap nodes. The
runner restarts a target that dies (and the run goes on). The cases each implementation fails
are the findings of docs/conformance.md; this test keeps that page true.

Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts third-party clients. The npm package comes
from ``P2PKIT_BITTORRENT_DHT_DIR`` (a directory with ``node_modules/bittorrent-dht``).

This file is also the scenario script that runs inside the namespace:
``python tests/conformance/test_real_nodes.py OUT_DIR NPM_DIR``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBTORRENT = ("127.0.0.3", 6881)
BITTORRENT_DHT = ("127.0.0.4", 6881)

LIBTORRENT_NODE = r'''
import sys, time, libtorrent as lt
s = lt.session({"listen_interfaces": "127.0.0.3:6881", "outgoing_interfaces": "127.0.0.3",
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": "", "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False, "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False, "dht_enforce_node_id": False,
    "dht_block_ratelimit": 100000})
print("ready", lt.__version__, flush=True)
time.sleep(300)
'''
BITTORRENT_DHT_NODE = r'''
import DHT from 'bittorrent-dht'
import crypto from 'crypto'
import { readFileSync } from 'fs'
const version = JSON.parse(readFileSync('node_modules/bittorrent-dht/package.json')).version
// BEP 44 mutable items need an ed25519 verify function (as tests/interop passes one)
const SPKI = Buffer.from('302a300506032b6570032100', 'hex')
function verify (sig, value, pk) {
  const key = crypto.createPublicKey({ key: Buffer.concat([SPKI, pk]), format: 'der', type: 'spki' })
  return crypto.verify(null, value, key, sig)
}
const dht = new DHT({ bootstrap: false, verify })
dht.listen(6881, '127.0.0.4', () => console.log('ready ' + version))
setTimeout(() => process.exit(0), 300000)
'''

#: MUST cases each implementation fails (the findings page lists the evidence).
LIBTORRENT_MUST_FAILURES = {"dht/bep44/seq/equal-rejected", "dht/bep44/put/partial-mutable"}
BITTORRENT_DHT_MUST_FAILURES = {"dht/bep5/errors/201-or-203-invalid-arguments",
                                "dht/bep44/put/invalid-bencoding",
                                "dht/bep44/mutable/salt-too-big-refused"}


class Target:
    """A third-party node in a subprocess, restarted when it dies."""

    def __init__(self, argv: list[str], cwd: str | None = None) -> None:
        self.argv = argv
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.version = ""
        self.restarts = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        self.version = line.decode().split()[-1]
        await asyncio.sleep(0.5)

    async def restart(self, address: tuple[str, int]) -> tuple[str, int]:
        await self.stop()
        self.restarts += 1
        await self.start()
        return address

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def scenario(out: Path, npm_dir: str) -> dict:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.reporters import html, json_report
    from p2pkit.conformance.runner import run_cases

    work = tempfile.mkdtemp()
    os.symlink(Path(npm_dir, "node_modules"), Path(work, "node_modules"))
    Path(work, "target.mjs").write_text(BITTORRENT_DHT_NODE)
    targets = {
        "libtorrent": (Target(["/usr/bin/python3", "-c", LIBTORRENT_NODE]), LIBTORRENT),
        "bittorrent-dht": (Target(["node", "target.mjs"], cwd=work), BITTORRENT_DHT),
    }
    summary = {}
    for name, (target, address) in targets.items():
        await target.start()
        try:
            report = await run_cases(
                catalog("dht"), address, timeout=1.0,
                restart=lambda t=target, a=address: t.restart(a))
        finally:
            await target.stop()
        json_report.write(report, out / f"{name}.json")
        html.write(report, out / f"{name}.html")
        summary[name] = {"version": target.version, "restarts": target.restarts,
                         "duration": report.duration, "counts": report.counts(),
                         "verdicts": {r.case.id: r.verdict for r in report.results}}
    return summary


def _main() -> None:
    out, npm_dir = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps(asyncio.run(scenario(out, npm_dir))))


@pytest.mark.interop
def test_suite_against_real_nodes(tmp_path) -> None:
    from tests.interop.conftest import _can_unshare, in_ci, require, run_in_netns

    if not in_ci() and not os.environ.get("P2PKIT_INTEROP"):
        pytest.skip("starts third-party DHT nodes: set P2PKIT_INTEROP=1 (always on in CI)")
    require(_can_unshare(), "unshare -n and ip")
    check = subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True)
    require(check.returncode == 0, "python3-libtorrent")
    npm_dir = os.environ.get("P2PKIT_BITTORRENT_DHT_DIR", "")
    require(bool(npm_dir) and Path(npm_dir, "node_modules", "bittorrent-dht").is_dir(),
            "P2PKIT_BITTORRENT_DHT_DIR with node_modules/bittorrent-dht")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, __file__, str(tmp_path), npm_dir], timeout=240,
                        env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    for name, expected in (("libtorrent", LIBTORRENT_MUST_FAILURES),
                           ("bittorrent-dht", BITTORRENT_DHT_MUST_FAILURES)):
        verdicts = seen[name]["verdicts"]
        assert len(verdicts) >= 60 and "skipped" not in verdicts.values()
        failing = {case for case, v in verdicts.items() if v in ("fail", "target-died")}
        assert failing == expected, (name, failing)
    # bittorrent-dht dies on one datagram and is restarted; the run goes on
    assert seen["bittorrent-dht"]["restarts"] >= 1
    assert seen["bittorrent-dht"]["verdicts"][
        "dht/bep5/errors/201-or-203-invalid-arguments"] == "target-died"


if __name__ == "__main__":
    _main()
