"""Record two p2pkit libp2p hosts on loopback: the capture the IPFS dissector tests read.

Run as root; it enters a private network namespace with only loopback (``unshare -n``), sets a
1500-byte MTU with segmentation offloads off (so tcpdump sees real segments), and records:

    python tests/ipfs/host_capture_scenario.py OUT.pcap [OUT.keylog]

A host listens on 127.0.0.20:4001; a second one dials it (multistream-select /noise, the Noise
XX handshake, multistream-select /yamux/1.0.0), pings it three times and asks identify, then
closes. With OUT.keylog, the dialing host appends its Noise keys there (``Host(keylog=...)``,
as ``--keylog`` does), so that ``p2pkit dissect --keylog`` decrypts the session. Bounded by a
timeout; only processes it started are stopped.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


async def scenario(keylog: str | None = None) -> None:
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.keys import Ed25519Identity
    from p2pkit.ipfs.noise_keylog import NoiseKeyLogWriter

    writer = NoiseKeyLogWriter(keylog) if keylog else None
    server = Host(Ed25519Identity(bytes(range(32))), rng=random.Random(20))
    client = Host(Ed25519Identity(bytes(range(1, 33))), rng=random.Random(21), keylog=writer)
    addr = await server.listen("127.0.0.20", 4001)
    try:
        connection = await client.dial(addr, timeout=5)
        await connection.ping(3, timeout=5)
        await connection.identify(timeout=5)
        await connection.close()
        await asyncio.sleep(0.3)
    finally:
        await client.close()
        await server.close()
        if writer is not None:
            writer.close()


def inside(out: str, keylog: str | None) -> int:
    for cmd in (["ip", "link", "set", "lo", "mtu", "1500"], ["ip", "link", "set", "lo", "up"],
                ["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", out,
                             "tcp"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        asyncio.run(asyncio.wait_for(scenario(keylog), TIMEOUT))
    finally:
        time.sleep(1.0)  # let tcpdump write the last segments
        dump.terminate()
        dump.wait(timeout=10)
    return 0


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--inside"]
    out = os.path.abspath(args[0])
    keylog = os.path.abspath(args[1]) if len(args) > 1 else None
    if "--inside" in sys.argv:
        if keylog is not None:
            Path(keylog).unlink(missing_ok=True)
        return inside(out, keylog)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["timeout", "-k", "5", str(TIMEOUT + 30), "unshare", "-n",
                           sys.executable, __file__, *args, "--inside"], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
