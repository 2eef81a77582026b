"""The DHT matrix: the suite against libtorrent 2.0, npm bittorrent-dht 11, aria2 1.36 and
p2pkit's node.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py): a libtorrent session at
127.0.0.3:6881, a bittorrent-dht node at 127.0.0.4:6881, p2pkit's ``DhtServer`` at
127.0.0.5:6881 and aria2's DHT at 127.0.0.6:6881 (it serves one only while a download runs:
it is given a magnet link nobody seeds), none with bootstrap nodes, judged at the same time. The runner restarts a
target that dies (and the run goes on). The matrix reports (HTML, JSON, JUnit) go to
``$P2PKIT_CONFORMANCE_ARTIFACTS/dht`` (tests/conformance/real_matrix.py); the cases each
implementation fails must equal the committed record docs/conformance-matrix/dht.json, which
docs/conformance-matrix.md draws and docs/conformance.md's findings cite: this test keeps those
pages true. (transmission drops every 127/8 datagram, see ../shared/INTEROP.md: it is not in
the matrix.)

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
P2PKIT = ("127.0.0.5", 6881)
ARIA2 = ("127.0.0.6", 6881)
#: aria2 with DHT only (no entry point, a fresh routing table file), downloading a magnet link
#: nobody seeds; it prints "ready VERSION" once its DHT socket had two seconds to open.
ARIA2_NODE = r'''
WORK=$1; rm -f "$WORK/dht.dat"
aria2c --interface=127.0.0.6 --listen-port=6882 --enable-dht=true --dht-listen-addr=127.0.0.6 \
    --dht-listen-port=6881 --dht-file-path="$WORK/dht.dat" --enable-dht6=false \
    --disable-ipv6=true --bt-enable-lpd=false --enable-peer-exchange=false \
    --bt-stop-timeout=0 --dir="$WORK/aria2" --quiet=true \
    "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567" & A=$!
trap 'kill $A 2>/dev/null; wait $A; exit 0' TERM INT
sleep 2
echo "ready $(aria2c --version | head -n 1 | cut -d' ' -f3)"
wait $A
'''

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
P2PKIT_MUST_FAILURES: set[str] = set()
ARIA2_MUST_FAILURES = {"dht/bep5/announce_peer/token-same-ip-other-port",
                       "dht/bep5/errors/shape"}
COMMAND = ("P2PKIT_UPDATE_MATRIX=1 P2PKIT_BITTORRENT_DHT_DIR=DIR CI=true "
           "python -m pytest tests/conformance/test_real_nodes.py")
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


async def _own_node() -> tuple[object, str]:
    from p2pkit.dht.server import DhtServer
    from tests.conformance.real_matrix import p2pkit_version

    return await DhtServer.start(*P2PKIT), p2pkit_version()


async def scenario(out: Path, npm_dir: str) -> dict:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.runner import run_cases
    from tests.conformance.real_matrix import record, write_artifacts

    work = tempfile.mkdtemp()
    os.symlink(Path(npm_dir, "node_modules"), Path(work, "node_modules"))
    Path(work, "target.mjs").write_text(BITTORRENT_DHT_NODE)
    Path(work, "aria2.sh").write_text(ARIA2_NODE)
    targets = {
        "libtorrent": (Target(["/usr/bin/python3", "-c", LIBTORRENT_NODE]), LIBTORRENT),
        "bittorrent-dht": (Target(["node", "target.mjs"], cwd=work), BITTORRENT_DHT),
        "aria2": (Target(["bash", "aria2.sh", work], cwd=work), ARIA2),
    }
    own, own_version = await _own_node()

    async def judge(name: str, address: tuple[str, int], target: Target | None):
        if target is not None:
            await target.start()
        try:
            report = await run_cases(
                catalog("dht"), address, timeout=1.0,
                restart=None if target is None else lambda: target.restart(address))
        finally:
            if target is not None:
                await target.stop()
        report.label = name
        return report

    try:
        reports = await asyncio.gather(
            *(judge(name, address, target) for name, (target, address) in targets.items()),
            judge("p2pkit", P2PKIT, None))
    finally:
        own.close()
    matrix = write_artifacts(reports, out)
    implementations = {"libtorrent": "libtorrent (python3-libtorrent)",
                       "bittorrent-dht": "bittorrent-dht (npm)",
                       "aria2": "aria2 (Debian), downloading a magnet link",
                       "p2pkit": "p2pkit DhtServer"}
    versions = {name: target.version for name, (target, _) in targets.items()}
    versions["p2pkit"] = own_version
    summary = record(matrix, {name: {"implementation": implementations[name],
                                     "version": versions[name]} for name in implementations},
                     COMMAND)
    summary["restarts"] = {name: target.restarts for name, (target, _) in targets.items()}
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
    require(subprocess.run(["sh", "-c", "command -v aria2c"]).returncode == 0, "aria2c")
    npm_dir = os.environ.get("P2PKIT_BITTORRENT_DHT_DIR", "")
    require(bool(npm_dir) and Path(npm_dir, "node_modules", "bittorrent-dht").is_dir(),
            "P2PKIT_BITTORRENT_DHT_DIR with node_modules/bittorrent-dht")
    from tests.conformance.real_matrix import artifacts_dir, check_against_record

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = artifacts_dir("dht", tmp_path)
    done = run_in_netns([sys.executable, __file__, str(out), npm_dir], timeout=240,
                        env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out / "matrix.html").is_file() and (out / "matrix.xml").is_file()
    assert [t["label"] for t in seen["targets"]] == ["libtorrent", "bittorrent-dht", "aria2",
                                                     "p2pkit"]
    for target in seen["targets"]:
        assert sum(target["counts"].values()) >= 60 and target["counts"]["skipped"] == 0
    check_against_record(seen, {"libtorrent": LIBTORRENT_MUST_FAILURES,
                                "bittorrent-dht": BITTORRENT_DHT_MUST_FAILURES,
                                "aria2": ARIA2_MUST_FAILURES, "p2pkit": P2PKIT_MUST_FAILURES})
    # bittorrent-dht dies on one datagram and is restarted; the run goes on
    assert seen["restarts"]["bittorrent-dht"] >= 1
    assert seen["verdicts"]["dht/bep5/errors/201-or-203-invalid-arguments"][
        "bittorrent-dht"] == "target-died"


if __name__ == "__main__":
    _main()
