"""kad-dht values with js-libp2p (``@libp2p/kad-dht`` 16, Node.js 22), inside ``unshare -n`` on
loopback: a ``/pk/`` record p2pkit's DHT holds is found by js-libp2p's ``dht.get``; js-libp2p's
``dht.put`` of its own ``/pk/`` record is validated and stored by p2pkit; p2pkit's
``get_value`` finds the record js-libp2p holds and its ``put_value`` stores one that js-libp2p
then reads back; a record that fails validation is refused by p2pkit. js-libp2p ships only the
``/pk/`` validator, so IPNS records go through the DHT between p2pkit nodes (tests/ipfs); here
an IPNS record p2pkit signs has its DAG-CBOR ``data`` decoded and re-encoded by ``cborg`` and
its ``signatureV2`` verified by ``@libp2p/crypto``; a second p2pkit host joins the DHT through
js-libp2p (identify, then a routing-table refresh) and learns the first from it. The scenario
runs on its own too::

    unshare -n sh -c 'ip link set lo up && exec python \\
        tests/interop/test_ipfs_dht_values_interop.py --npm-dir DIR'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.interop

SCENARIO_TIMEOUT = 90
SCRIPT = Path(__file__).with_name("js_libp2p_values.mjs")


async def scenario(npm_dir: str) -> dict:
    import random

    from p2pkit.ipfs.dht_records import pk_key
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.kad_values import get_value, put_value
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.multiaddr import Multiaddr
    from p2pkit.ipfs.peer_id import PeerId
    from tests.interop.test_ipfs_interop import _node

    host = Host(Ed25519Identity(bytes([21]) * 32), rng=random.Random(1))
    addr = await host.listen("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    own_key = pk_key(host.peer_id)
    host.dht.values.put(own_key, host.identity.public_key, loop.time())
    seen: dict = {"p2pkit_id": str(host.peer_id), "p2pkit_pk": host.identity.public_key.hex()}
    js = await asyncio.create_subprocess_exec(
        _node(npm_dir), str(Path(npm_dir, SCRIPT.name)), str(addr),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=npm_dir)

    async def ask(line: str) -> dict:
        js.stdin.write(line.encode() + b"\n")
        await js.stdin.drain()
        return json.loads(await asyncio.wait_for(js.stdout.readline(), 30))

    try:
        hello = json.loads(await asyncio.wait_for(js.stdout.readline(), 30))
        seen["js"] = hello
        if "error" in hello:
            return seen
        js_id = PeerId.from_text(hello["id"])
        js_addrs = [Multiaddr.from_text(a) for a in hello["listening"]]
        seeds = [(js_id, js_addrs)]
        # 1. js-libp2p finds the /pk/ record p2pkit holds
        seen["js_get_p2pkit_pk"] = await ask(f"get {own_key.hex()}")
        # 2. js-libp2p puts its own /pk/ record: p2pkit validates and stores it
        seen["js_put_own_pk"] = await ask("put-own-pk")
        js_key = bytes.fromhex(hello["own_pk_key"])
        stored = host.dht.values.get(js_key, loop.time())
        seen["p2pkit_stores_js_pk"] = stored.hex() if stored else None
        # 3. p2pkit finds the record in js-libp2p's DHT (its own copy dropped first)
        host.dht.values.records.pop(js_key, None)
        found = await get_value(host, js_key, seeds=seeds, timeout=15)
        seen["p2pkit_get_js_pk"] = {"value": found.value.hex() if found.value else None,
                                    "from": [str(p) for p in found.from_peers]}
        # 4. p2pkit puts a third peer's /pk/ record; js-libp2p reads it from its DHT
        third = Ed25519Identity(bytes([33]) * 32)
        third_key = pk_key(PeerId.from_public_key(third.public_key))
        stored_on = await put_value(host, third_key, third.public_key, seeds=seeds, timeout=15)
        seen["p2pkit_put_third"] = [str(p) for p in stored_on]
        host.dht.values.records.pop(third_key, None)
        seen["js_get_third"] = await ask(f"get {third_key.hex()}")
        seen["third_pk"] = third.public_key.hex()
        # 5. a forged /pk/ record (someone else's key) offered by js-libp2p: p2pkit refuses it
        forged = await ask(f"put {pk_key(host.peer_id).hex()} {third.public_key.hex()}")
        seen["js_put_forged"] = forged
        seen["p2pkit_rejected_values"] = host.dht.stats.get("rejected_values", 0)
        # 6. a second p2pkit host joins through js-libp2p (what `serve --bootstrap` does:
        # dial, identify, then a table refresh) and learns the first p2pkit host from it
        from p2pkit.ipfs.kad_refresh import RefreshPolicy, refresh_once

        joiner = Host(Ed25519Identity(bytes([22]) * 32), rng=random.Random(2))
        await joiner.listen("127.0.0.1", 0)
        try:
            connection = await joiner.dial(js_addrs[0], timeout=10)
            await connection.identify(timeout=10)
            await connection.close()
            report = await refresh_once(joiner, RefreshPolicy(lookup_timeout=15),
                                        rng=random.Random(3))
            seen["joiner_table"] = sorted(str(PeerId(p)) for p, _ in joiner.dht.peers.values())
            seen["joiner_queries"] = report.queries
        finally:
            await joiner.close()
        # 7. an IPNS record p2pkit signs: its DAG-CBOR data read and re-encoded by cborg, its
        # signatureV2 verified by @libp2p/crypto
        import time

        from p2pkit.ipfs.ipns import IpnsEntry, create_record
        record = IpnsEntry.parse(create_record(host.identity, b"/ipfs/bafkqaaa", 2**40 + 7,
                                               time.time_ns() + 3600 * 10**9, 10**12))
        seen["ipns_data"] = record.data.hex()
        seen["ipns_js"] = await ask(f"ipns {record.data.hex()} "
                                    f"{host.identity.public_key.hex()} "
                                    f"{record.signatureV2.hex()}")
        js.stdin.write(b"quit\n")
        await js.stdin.drain()
        await asyncio.wait_for(js.wait(), 15)
    finally:
        if js.returncode is None:
            js.kill()
            await js.wait()
        await host.close()
    return seen


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", required=True)
    args = parser.parse_args()
    seen = asyncio.run(asyncio.wait_for(scenario(args.npm_dir), SCENARIO_TIMEOUT - 10))
    print(json.dumps(seen))


# ---- pytest side ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def observations(netns, tmp_path_factory):
    from tests.interop.test_ipfs_interop import _npm_dir

    npm_dir = _npm_dir(tmp_path_factory)
    shutil.copy(SCRIPT, Path(npm_dir, SCRIPT.name))  # ESM resolves imports next to the script
    done = netns([sys.executable, __file__, "--npm-dir", npm_dir], timeout=SCENARIO_TIMEOUT,
                 cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_js_libp2p_has_p2pkit_in_its_table(observations):
    assert observations["js"]["routing_table"] >= 1, observations["js"]


def test_js_libp2p_gets_a_record_p2pkit_holds(observations):
    assert observations["js_get_p2pkit_pk"]["value"] == observations["p2pkit_pk"]


def test_p2pkit_validates_and_stores_js_libp2p_put(observations):
    assert observations["p2pkit_id"] in observations["js_put_own_pk"]["reached"]
    assert observations["p2pkit_stores_js_pk"] == observations["js"]["own_pk"]


def test_p2pkit_gets_a_record_js_libp2p_holds(observations):
    got = observations["p2pkit_get_js_pk"]
    assert got["value"] == observations["js"]["own_pk"]
    assert observations["js"]["id"] in got["from"]


def test_js_libp2p_stores_p2pkit_put(observations):
    assert observations["js"]["id"] in observations["p2pkit_put_third"]
    assert observations["js_get_third"]["value"] == observations["third_pk"]


def test_ipns_data_and_signature_agree_with_cborg_and_libp2p_crypto(observations):
    js = observations["ipns_js"]["ipns"]
    assert js["reencoded"] == observations["ipns_data"]  # canonical DAG-CBOR both ways
    assert js["keys"] == ["TTL", "Value", "Sequence", "Validity", "ValidityType"]
    assert js["fields"]["Value"] == "/ipfs/bafkqaaa"
    assert js["fields"]["Sequence"] == str(2**40 + 7) and js["fields"]["TTL"] == str(10**12)
    assert js["signature_ok"] is True


def test_a_host_joins_through_js_libp2p_and_refreshes(observations):
    assert observations["joiner_table"] == sorted([observations["js"]["id"],
                                                   observations["p2pkit_id"]])
    assert observations["joiner_queries"] >= 1


def test_a_forged_record_is_refused(observations):
    assert observations["p2pkit_id"] not in observations["js_put_forged"].get("reached", [])
    assert observations["p2pkit_rejected_values"] >= 1


if __name__ == "__main__":
    _main()
