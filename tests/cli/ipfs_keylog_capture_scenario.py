"""Record the IPFS commands that dial, each with ``--keylog``: the capture that
tests/cli/test_ipfs_keylog.py decrypts with the key log those commands wrote.

Run as root; it enters a private network namespace with only loopback (``unshare -n``), sets a
1500-byte MTU with segmentation offloads off (so tcpdump sees real segments), and records:

    python tests/cli/ipfs_keylog_capture_scenario.py OUT.pcap OUT.keylog

``p2pkit ipfs serve`` (127.0.0.30:4001, a 40,000-byte file from a CAR, no key log of its own)
is dialed by ``ipfs ping -c 2``, ``ipfs identify``, ``ipfs dht provide``, ``ipfs dht
find-providers`` and ``ipfs get``, all with ``--keylog OUT.keylog``: every connection in the
capture has a dialing command at one end, so the key log decrypts all of them. Bounded by
timeouts; only processes it started are stopped.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
LISTEN = "/ip4/127.0.0.30/tcp/4001"


def _p2pkit(*args: str, timeout: float = 30) -> str:
    done = subprocess.run([sys.executable, "-m", "p2pkit", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"p2pkit {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return done.stdout


def scenario(keylog: str, work: Path) -> None:
    data = work / "file.bin"
    data.write_bytes(random.Random(4).randbytes(40_000))
    car = work / "file.car"
    _p2pkit("ipfs", "car", "export", str(data), "-o", str(car))
    cid = _p2pkit("ipfs", "add", str(data)).strip()
    server = subprocess.Popen([sys.executable, "-m", "p2pkit", "ipfs", "serve", "--listen",
                               LISTEN, "--car", str(car), "--json", "--duration", str(TIMEOUT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = b""
        deadline = time.monotonic() + 20
        while b"\n" not in line and time.monotonic() < deadline:
            ready, _, _ = select.select([server.stdout], [], [], 0.5)
            if ready:
                line += os.read(server.stdout.fileno(), 4096)
        addr = json.loads(line.decode().splitlines()[0])["address"]
        key = ("--keylog", keylog)
        _p2pkit("ipfs", "ping", addr, "-c", "2", *key)
        _p2pkit("ipfs", "identify", addr, *key)
        _p2pkit("ipfs", "dht", "provide", cid, "--peer", addr, "--addr",
                "/ip4/127.0.0.1/tcp/9", *key)
        _p2pkit("ipfs", "dht", "find-providers", cid, "--peer", addr, *key)
        _p2pkit("ipfs", "get", cid, "--peer", addr, "-o", str(work / "got.bin"), *key)
        if (work / "got.bin").read_bytes() != data.read_bytes():
            raise SystemExit("ipfs get fetched other bytes")
        time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=20)


def inside(out: str, keylog: str) -> int:
    for cmd in (["ip", "link", "set", "lo", "mtu", "1500"], ["ip", "link", "set", "lo", "up"],
                ["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    Path(keylog).unlink(missing_ok=True)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", out,
                             "tcp"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory() as work:
            scenario(keylog, Path(work))
    finally:
        time.sleep(1.0)  # let tcpdump write the last segments
        dump.terminate()
        dump.wait(timeout=10)
    return 0


def main() -> int:
    out, keylog = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "--inside":
        return inside(out, keylog)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["timeout", "-k", "5", str(TIMEOUT + 30), "unshare", "-n",
                           sys.executable, __file__, out, keylog, "--inside"], env=env,
                          cwd=str(ROOT)).returncode


if __name__ == "__main__":
    sys.exit(main())
