"""The IPFS conformance catalog against js-libp2p and Helia (Node 22, the npm packages of
:mod:`tests.interop.test_ipfs_interop`), inside ``unshare -n`` on loopback: Helia serving a
file it added (its root CID given to the Bitswap cases), and a js-libp2p node with the
kad-dht in server mode. No bootstrap, no routers; both exit on their own (``SECONDS``).
The run on its own::

    unshare -n sh -c 'ip link set lo up && exec python \\
        tests/interop/test_ipfs_conformance_interop.py --npm-dir DIR'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.interop

RUN_TIMEOUT = 240
#: Seconds each JS node lives (it exits by itself).
NODE_LIFETIME = 100


async def _judge(npm_dir: str, script: str, args: list[str]) -> dict:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.ipfs.live import ipfs_target, run_ipfs_cases
    from tests.interop.test_ipfs_interop import _node

    proc = await asyncio.create_subprocess_exec(
        _node(npm_dir), str(Path(npm_dir, script)), *args, cwd=npm_dir,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        doc = {}
        while "listening" not in doc:
            doc = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        address = next(a for a in doc["listening"] if a.startswith("/ip4/127.0.0.1/"))
        target = ipfs_target(address, [doc["cid"]] if "cid" in doc else [])
        report = await run_ipfs_cases(catalog("ipfs"), target, timeout=2.0, deadline=180,
                                      rng=random.Random(3))
        return {r.case.id: [r.verdict, r.case.level, r.reason[:300]] for r in report.results}
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def scenario(npm_dir: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="p2pkit-ipfsconf-") as tmp:
        content = Path(tmp, "content.bin")
        content.write_bytes(random.Random(9).randbytes(300_000))
        return await _both(npm_dir, content)


async def _both(npm_dir: str, content: Path) -> dict:
    """Helia and js-libp2p judged at the same time (two processes, each on its own port)."""
    helia, libp2p = await asyncio.gather(
        _judge(npm_dir, "js_helia_get.mjs", ["serve", str(content), str(NODE_LIFETIME)]),
        _judge(npm_dir, "js_libp2p_peer.mjs", ["serve", str(NODE_LIFETIME)]))
    return {"helia": helia, "js-libp2p": libp2p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(asyncio.wait_for(scenario(args.npm_dir), RUN_TIMEOUT - 10))))


# ---- pytest side ---------------------------------------------------------------------------

#: MUST cases the JS implementations fail today (docs/conformance-ipfs.md §Findings).
KNOWN_FAILURES: dict[str, set[str]] = {"helia": set(), "js-libp2p": set()}


@pytest.fixture(scope="module")
def verdicts(netns, tmp_path_factory):
    from tests.interop.test_ipfs_interop import _npm_dir

    npm_dir = _npm_dir(tmp_path_factory)
    done = netns([sys.executable, __file__, "--npm-dir", npm_dir], timeout=RUN_TIMEOUT,
                 cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("target", ["helia", "js-libp2p"])
def test_js_targets_fail_only_the_known_must_cases(verdicts, target: str) -> None:
    results = verdicts[target]
    failing = {i for i, (v, _, _) in results.items() if v in ("fail", "target-died")}
    assert failing == KNOWN_FAILURES[target], {i: results[i] for i in failing}


def test_the_catalog_really_ran_against_helia(verdicts) -> None:
    results = verdicts["helia"]
    assert results["ipfs/noise/xx-handshake"][0] == "pass"
    assert results["ipfs/noise/bad-signature"][0] == "pass"
    assert results["ipfs/bitswap/block-matches-cid"][0] == "pass"


if __name__ == "__main__":
    main()
