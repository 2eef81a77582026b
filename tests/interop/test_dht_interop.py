"""Interop of the p2pkit DHT node with libtorrent's DHT and npm bittorrent-dht (BEP 5, 44).

Inside ``unshare -n`` on loopback: three p2pkit nodes (127.0.0.2, .5, .6), a libtorrent 2.0
session (127.0.0.3, through its Python binding) and a bittorrent-dht 11 node (127.0.0.4, with
``bootstrap`` set to our node only) form one small DHT. Checked: each finds peers the others
announced, and BEP 44 immutable and mutable items put by one side are got by the other.

This file is also the scenario script: pytest runs ``python THIS_FILE --lt-python P --npm-dir D``
inside the namespace and reads one JSON document of observations from its output. Add
``--capture FILE.pcap`` to record the run's UDP traffic with tcpdump (inside the namespace)::

    unshare -n sh -c 'ip link set lo mtu 1500 && ip link set lo up && exec python \
        tests/interop/test_dht_interop.py --lt-python /usr/bin/python3 --npm-dir DIR \
        --capture dht-03-p2pkit-libtorrent-bittorrent-dht.pcap'
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # run as the scenario script inside the namespace
    sys.path.insert(0, str(ROOT))

from p2pkit.dht import items  # noqa: E402
from p2pkit.dht.server import DhtServer  # noqa: E402

pytestmark = pytest.mark.interop

#: Seconds the whole scenario may take (it is killed with its namespace after that).
SCENARIO_TIMEOUT = 150
#: Seconds to wait for one observation (a peer or an item to show up).
OBSERVE_TIMEOUT = 25.0

OURS = ("127.0.0.2", "127.0.0.5", "127.0.0.6")
LIBTORRENT = "127.0.0.3"
BITTORRENT_DHT = "127.0.0.4"
PORT = 6881

LIBTORRENT_HELPER = r'''
import json, sys, time
import libtorrent as lt

host, port, boot = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = lt.session({
    "listen_interfaces": f"{host}:{port}", "outgoing_interfaces": host,
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": boot,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False, "dht_ignore_dark_internet": False,
    "dht_enforce_node_id": False, "dht_block_ratelimit": 100000,
    "alert_mask": lt.alert_category.all,
})
s.add_dht_node((boot.split(":")[0], int(boot.split(":")[1])))

def out(doc):
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()

out({"ready": True, "version": lt.__version__})
for line in sys.stdin:
    cmd = json.loads(line)
    ih = lt.sha1_hash(bytes.fromhex(cmd.get("info_hash", "00" * 20)))
    if cmd["op"] == "announce":
        # the binding cannot pass dht_announce's flags: a magnet torrent makes libtorrent
        # announce its listen port itself (and again on force_dht_announce)
        atp = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + cmd["info_hash"])
        atp.save_path = cmd["save_path"]
        handle = s.add_torrent(atp)
        handle.force_dht_announce()
        out({"id": cmd["id"]})
    elif cmd["op"] == "get_peers":
        s.dht_get_peers(ih)
        deadline = time.time() + cmd.get("wait", 8)
        peers = []
        while time.time() < deadline and not peers:
            s.wait_for_alert(200)
            for a in s.pop_alerts():
                if isinstance(a, lt.dht_get_peers_reply_alert) and a.info_hash == ih:
                    peers = [list(p) for p in a.peers()]
        out({"id": cmd["id"], "peers": peers})
    elif cmd["op"] == "status":
        out({"id": cmd["id"], "dht_nodes": s.status().dht_nodes})
'''

BITTORRENT_DHT_HELPER = r'''
import DHT from 'bittorrent-dht'
import crypto from 'crypto'
import readline from 'readline'

const [host, port, boot] = process.argv.slice(2)
const SPKI = Buffer.from('302a300506032b6570032100', 'hex')
function verify (sig, value, pk) {
  const key = crypto.createPublicKey({ key: Buffer.concat([SPKI, pk]), format: 'der', type: 'spki' })
  return crypto.verify(null, value, key, sig)
}
const dht = new DHT({ bootstrap: [boot], verify })
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const found = {}
dht.on('peer', (peer, infoHash) => {
  const key = infoHash.toString('hex')
  ;(found[key] = found[key] || []).push([peer.host, peer.port])
})
dht.on('error', (err) => out({ error: String(err) }))
dht.listen(Number(port), host, () => out({ ready: true, id: dht.nodeId.toString('hex') }))
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line)
  const done = (doc) => out(Object.assign({ id: cmd.id }, doc))
  if (cmd.op === 'announce') {
    dht.announce(cmd.info_hash, cmd.port, (err) => done({ error: err ? String(err) : null }))
  } else if (cmd.op === 'lookup') {
    dht.lookup(cmd.info_hash, (err) => done({ error: err ? String(err) : null,
      peers: found[cmd.info_hash] || [] }))
  } else if (cmd.op === 'put') {
    const opts = { v: Buffer.from(cmd.v) }
    if (cmd.k) {
      Object.assign(opts, { k: Buffer.from(cmd.k, 'hex'), seq: cmd.seq,
        sign: () => Buffer.from(cmd.sig, 'hex') })
      if (cmd.salt) opts.salt = Buffer.from(cmd.salt)
    }
    dht.put(opts, (err, hash, n) => done({ error: err ? String(err) : null,
      hash: hash ? hash.toString('hex') : null, stored: n }))
  } else if (cmd.op === 'get') {
    const opts = cmd.salt ? { salt: Buffer.from(cmd.salt) } : {}
    dht.get(cmd.target, opts, (err, res) => done({ error: err ? String(err) : null,
      v: res ? res.v.toString() : null, seq: res && res.seq !== undefined ? res.seq : null }))
  } else if (cmd.op === 'nodes') {
    done({ nodes: dht.toJSON().nodes.length })
  }
})
'''


class Helper:
    """A third-party node in a subprocess, driven by JSON lines on stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self._next = 0

    @classmethod
    async def start(cls, argv: list[str], name: str, cwd: str | None = None) -> Helper:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        helper = cls(proc, name)
        ready = await helper._read(lambda doc: doc.get("ready"), 20)
        helper.info = ready
        return helper

    async def _read(self, accept, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(),
                                          max(0.1, deadline - time.monotonic()))
            if not line:
                raise RuntimeError(f"{self.name} exited")
            doc = json.loads(line)
            if accept(doc):
                return doc

    async def call(self, timeout: float = OBSERVE_TIMEOUT, **cmd) -> dict:
        self._next += 1
        cmd["id"] = self._next
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read(lambda doc: doc.get("id") == cmd["id"], timeout + 5)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def _until(probe, timeout: float = OBSERVE_TIMEOUT):
    """Call ``probe()`` until it returns something true (or the time is up); return the last."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = await probe()
        if result:
            return result
        await asyncio.sleep(1.0)
    return result


def _hash(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


async def scenario(lt_python: str, npm_dir: str, work: str) -> dict:
    """Run the three implementations together and return what each saw."""
    seen: dict = {}
    ours = [await DhtServer.start(host, PORT, rng=random.Random(i))
            for i, host in enumerate(OURS)]
    helpers: list[Helper] = []
    try:
        for server in ours[1:]:
            await server.bootstrap([ours[0].address], timeout=10)
        lt_script = Path(work, "libtorrent_helper.py")
        lt_script.write_text(LIBTORRENT_HELPER)
        js_script = Path(npm_dir, "bittorrent_dht_helper.mjs")
        js_script.write_text(BITTORRENT_DHT_HELPER)
        lt = await Helper.start([lt_python, str(lt_script), LIBTORRENT, str(PORT),
                                 f"{OURS[0]}:{PORT}"], "libtorrent")
        helpers.append(lt)
        js = await Helper.start(["node", str(js_script), BITTORRENT_DHT, str(PORT),
                                 f"{OURS[0]}:{PORT}"], "bittorrent-dht", cwd=npm_dir)
        helpers.append(js)
        seen["versions"] = {"libtorrent": lt.info.get("version")}
        await asyncio.sleep(3)
        for server in ours:  # learn the newcomers through the DHT itself
            await server.find_node(server.node.id, timeout=15)
        seen["our_tables"] = [sorted(e.addr[0] for e in s.node.table) for s in ours]
        seen["libtorrent_nodes"] = (await lt.call(op="status"))["dht_nodes"]
        seen["bittorrent_dht_nodes"] = (await js.call(op="nodes"))["nodes"]

        async def our_peers(info_hash: bytes, want: tuple[str, int], server: DhtServer):
            async def probe():
                done = await server.get_peers(info_hash, timeout=OBSERVE_TIMEOUT)
                return want in done.peers
            return bool(await _until(probe))

        # libtorrent announces, we find it; we announce, libtorrent finds us
        ih = _hash("libtorrent announces")
        await lt.call(op="announce", info_hash=ih.hex(), save_path=work)
        seen["we_find_libtorrent"] = await our_peers(ih, (LIBTORRENT, PORT), ours[1])
        ih = _hash("p2pkit announces to libtorrent")
        stored = await ours[2].announce_peer(ih, 51002, timeout=OBSERVE_TIMEOUT)
        seen["our_announce_stored"] = stored.stored

        async def lt_finds():
            found = await lt.call(op="get_peers", info_hash=ih.hex(), wait=8)
            return [OURS[2], 51002] in found["peers"]
        seen["libtorrent_finds_us"] = bool(await _until(lt_finds))

        # bittorrent-dht announces, we find it; we announce, bittorrent-dht finds us
        ih = _hash("bittorrent-dht announces")
        answer = await js.call(op="announce", info_hash=ih.hex(), port=51003)
        seen["bittorrent_dht_announce_error"] = answer["error"]
        seen["we_find_bittorrent_dht"] = await our_peers(ih, (BITTORRENT_DHT, 51003), ours[0])
        ih = _hash("p2pkit announces to bittorrent-dht")
        await ours[1].announce_peer(ih, 51004, timeout=OBSERVE_TIMEOUT)

        async def js_finds():
            found = await js.call(op="lookup", info_hash=ih.hex())
            return [OURS[1], 51004] in found["peers"]
        seen["bittorrent_dht_finds_us"] = bool(await _until(js_finds))

        # BEP 44 with bittorrent-dht: immutable and mutable, both directions
        put = await js.call(op="put", v="immutable from bittorrent-dht")
        target = items.immutable_target(b"immutable from bittorrent-dht")
        seen["bittorrent_dht_put_immutable"] = (put["error"], put["hash"] == target.hex())
        got = await ours[2].get(target, timeout=OBSERVE_TIMEOUT)
        seen["we_get_immutable"] = got.item.v.decode() if got.item else None
        stored = await ours[0].put(b"immutable from p2pkit", timeout=OBSERVE_TIMEOUT)
        seen["our_put_immutable_stored"] = stored.stored
        got = await js.call(op="get", target=items.immutable_target(
            b"immutable from p2pkit").hex())
        seen["bittorrent_dht_gets_immutable"] = got["v"]

        seed = bytes(range(32))
        k = items.public_key(seed)
        value = b"mutable from bittorrent-dht"
        put = await js.call(op="put", v=value.decode(), k=k.hex(), seq=5, salt="js",
                            sig=items.sign(seed, 5, value, b"js").hex())
        seen["bittorrent_dht_put_mutable"] = put["error"]
        got = await ours[1].get(items.mutable_target(k, b"js"), salt=b"js",
                                timeout=OBSERVE_TIMEOUT)
        seen["we_get_mutable"] = (got.item.v.decode(), got.item.seq) if got.item else None
        stored = await ours[2].put(b"mutable from p2pkit", seed=seed, seq=9, salt=b"py",
                                   timeout=OBSERVE_TIMEOUT)
        seen["our_put_mutable_stored"] = stored.stored
        got = await js.call(op="get", target=items.mutable_target(k, b"py").hex(), salt="py")
        seen["bittorrent_dht_gets_mutable"] = (got["v"], got["seq"])
        seen["our_stats"] = [s.node.stats for s in ours]
    finally:
        for helper in helpers:
            await helper.stop()
        for server in ours:
            server.close()
    return seen


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lt-python", required=True)
    parser.add_argument("--npm-dir", required=True)
    parser.add_argument("--capture", help="record the loopback traffic here (tcpdump, pcap)")
    args = parser.parse_args()
    tcpdump = None
    if args.capture:
        tcpdump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U",
                                    "--immediate-mode", "-w",
                                    args.capture, "udp"], stderr=sys.stderr)
        time.sleep(1.0)
    try:
        with tempfile.TemporaryDirectory() as work:
            seen = asyncio.run(scenario(args.lt_python, args.npm_dir, work))
    finally:
        if tcpdump is not None:
            time.sleep(0.5)
            tcpdump.terminate()
            tcpdump.wait(10)
    print(json.dumps(seen))


# ---- pytest side ---------------------------------------------------------------------------

def _libtorrent_python() -> str | None:
    for candidate in (os.environ.get("P2PKIT_LIBTORRENT_PYTHON"), "/usr/bin/python3",
                      sys.executable):
        if candidate and Path(candidate).exists():
            check = subprocess.run([candidate, "-c", "import libtorrent"], capture_output=True)
            if check.returncode == 0:
                return candidate
    return None


@pytest.fixture(scope="module")
def observations(netns, tmp_path_factory):
    from tests.interop.conftest import require, require_executable

    require_executable("node")
    lt_python = _libtorrent_python()
    require(lt_python is not None, "the libtorrent Python binding (python3-libtorrent)")
    npm_dir = os.environ.get("P2PKIT_BITTORRENT_DHT_DIR")
    if not npm_dir:
        npm = require_executable("npm")
        npm_dir = str(tmp_path_factory.mktemp("npm"))
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "bittorrent-dht@11"],
                              cwd=npm_dir, capture_output=True, text=True, timeout=300)
        require(done.returncode == 0, f"npm install bittorrent-dht@11 ({done.stderr[-200:]})")
    require(Path(npm_dir, "node_modules", "bittorrent-dht").is_dir(),
            f"bittorrent-dht installed in {npm_dir}")
    done = netns([sys.executable, __file__, "--lt-python", lt_python, "--npm-dir", npm_dir],
                 timeout=SCENARIO_TIMEOUT, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_network_forms(observations):
    tables = observations["our_tables"]
    assert any(LIBTORRENT in table for table in tables)
    assert any(BITTORRENT_DHT in table for table in tables)
    assert observations["libtorrent_nodes"] >= 1 and observations["bittorrent_dht_nodes"] >= 1


def test_we_find_peers_libtorrent_announced(observations):
    assert observations["we_find_libtorrent"]


def test_libtorrent_finds_peers_we_announced(observations):
    assert observations["our_announce_stored"] >= 1
    assert observations["libtorrent_finds_us"]


def test_we_find_peers_bittorrent_dht_announced(observations):
    assert observations["bittorrent_dht_announce_error"] is None
    assert observations["we_find_bittorrent_dht"]


def test_bittorrent_dht_finds_peers_we_announced(observations):
    assert observations["bittorrent_dht_finds_us"]


def test_bep44_immutable_both_ways(observations):
    assert observations["bittorrent_dht_put_immutable"] == [None, True]
    assert observations["we_get_immutable"] == "immutable from bittorrent-dht"
    assert observations["our_put_immutable_stored"] >= 1
    assert observations["bittorrent_dht_gets_immutable"] == "immutable from p2pkit"


def test_bep44_mutable_both_ways(observations):
    assert observations["bittorrent_dht_put_mutable"] is None
    assert observations["we_get_mutable"] == ["mutable from bittorrent-dht", 5]
    assert observations["our_put_mutable_stored"] >= 1
    assert observations["bittorrent_dht_gets_mutable"] == ["mutable from p2pkit", 9]


if __name__ == "__main__":
    _main()
