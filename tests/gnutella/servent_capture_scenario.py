"""Record p2pkit's reference servents on loopback, for comparison with gtk-gnutella's capture.

Run as root; it enters a private network namespace with only loopback (``unshare -n``), sets a
1500-byte MTU with segmentation offloads off (so tcpdump sees real segments), and records:

    python tests/gnutella/servent_capture_scenario.py OUT.pcap [--all-features]

Two ultrapeers (127.0.0.10, 127.0.0.14, linked), three leaves (127.0.0.11, .12, .13 — the last
firewalled), the same addresses and roles as tests/data/captures/gtkg123-plain-up2-3leaves.pcap;
searches ``alpha``, ``bravo charlie`` and ``kilo``, one download by urn:sha1 and one through
Push/GIV, then Byes. Bounded by a timeout; only processes it started are stopped. Link
compression is off, as gtk-gnutella's was in its capture (like for like, and the capture stays
readable by tshark); vendor messages, HSEP and ultrapeer QRP are on, as gtk-gnutella's.

``--all-features`` (tests/data/captures/gnutella-03-p2pkit-servents-all-features.pcap; the leaf
.11 runs without UDP there, so that .10 proxies its ``kilo`` query out of band) turns on
everything the servent implements that a capture can show: deflate on every link, UDP on the
servents' ports (UDP connect-back, pongs, out-of-band hits: the ``kilo`` query reaches the
leaf .13 at hops 2, so its hit comes over UDP), dynamic querying on both ultrapeers, and the
HTTP push proxy (the firewalled leaf's hit names its ultrapeer, asked first), GUESS on the
ultrapeer .10 (gtk-gnutella's own query key request and GUESS query, ndpi-gnutella.pcap frames
762 and 2586, replayed from a plain socket at 127.0.0.15:6351 with the key .10 gave: the pong
with QK, the acknowledging pong, the query run at the leaf .11 whose QRP table matches, the
hit over UDP); tcpdump records UDP too. TLS stays off: it would hide every descriptor from the comparison (gtk-gnutella's
capture has none either).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TIMEOUT = 60


async def scenario(work: Path, all_features: bool = False) -> None:
    from p2pkit.gnutella.server import GnutellaServer, download

    def share(name: str, files: dict[str, bytes]) -> Path:
        directory = work / name
        directory.mkdir()
        for file_name, data in files.items():
            (directory / file_name).write_bytes(data)
        return directory

    plain: dict = dict(deflate=False)
    ups: dict = dict(plain)
    if all_features:
        plain = dict(deflate=True, udp=True)
        ups = dict(plain, dynamic_query=True)
    up1 = GnutellaServer(host="127.0.0.10", port=6346, ultrapeer=True, seed=10, **ups)
    up2 = GnutellaServer(host="127.0.0.14", port=6350, ultrapeer=True, seed=14, **ups)
    a_files = {"alpha_first.txt": b"alpha " * 900}
    if all_features:
        a_files["pinkfloyd live.txt"] = b"pf" * 700  # for the GUESS query
    # .11 without UDP, as behind a firewall that drops it: its ultrapeer proxies its queries
    # out of band (out-of-band-v3 §"Ultrapeer Proxying")
    a = GnutellaServer(host="127.0.0.11", port=6347, seed=11, **dict(plain, udp=False),
                       share=share("a", a_files))
    b = GnutellaServer(host="127.0.0.12", port=6348, seed=12, **plain,
                       share=share("b", {"bravo charlie.txt": b"bc" * 3000}))
    c = GnutellaServer(host="127.0.0.13", port=6349, seed=13, firewalled=True, **plain,
                       share=share("c", {"kilo.txt": b"k" * 2500}))
    servers = (up1, up2, a, b, c)
    for s in servers:
        await s.start()
    await up2.connect("127.0.0.10", 6346)
    for leaf in (a, b):
        await leaf.connect("127.0.0.10", 6346)
    await c.connect("127.0.0.14", 6350)
    await asyncio.sleep(1.0)  # handshakes, pings/pongs and QRP tables
    if all_features:  # UDP connect-back: queries go out-of-band once reachable
        for _ in range(50):
            if all(s.core.udp.reachable for s in servers if s.core.udp is not None):
                break
            await asyncio.sleep(0.1)
    try:
        if all_features:
            await guess_client()
        hits = await b.search("alpha", timeout=1.0)
        if hits and all_features:
            await b.fetch(hits[0])  # from the servent's own address, as gtk-gnutella's
        elif hits:
            await download(hits[0])
        await a.search("bravo charlie", timeout=1.0)
        if all_features:  # .13's hit comes to .10 by UDP, then to .11 over TCP
            await a.search("kilo", timeout=1.0)
        hits = await b.search("kilo", timeout=1.0)
        if hits:
            await b.fetch(hits[0], timeout=5.0)  # Push through the ultrapeers, GIV back
        await asyncio.sleep(0.5)
    finally:
        for s in reversed(servers):
            await s.close()
        await asyncio.sleep(0.5)


async def guess_client() -> None:
    """gtk-gnutella's GUESS datagrams (ndpi-gnutella.pcap frames 762, 2586) sent to .10."""
    import socket

    from p2pkit.gnutella.descriptors import Descriptor
    from tests.gnutella.test_udp_guess import GUESS_QUERY, QK_PING, ggep, with_key

    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.15", 6351))
        sock.setblocking(False)
        await loop.sock_sendto(sock, QK_PING, ("127.0.0.10", 6346))
        pong = Descriptor.parse(await asyncio.wait_for(loop.sock_recv(sock, 4096), 2))
        key = ggep(pong)["QK"].payload
        await loop.sock_sendto(sock, with_key(GUESS_QUERY, key), ("127.0.0.10", 6346))
        answers = []
        with contextlib.suppress(TimeoutError):
            while len(answers) < 2:  # the acknowledging pong and the leaf's hit
                answers.append(await asyncio.wait_for(loop.sock_recv(sock, 4096), 2))


def inside(out: str, all_features: bool) -> int:
    for cmd in (["ip", "link", "set", "lo", "mtu", "1500"], ["ip", "link", "set", "lo", "up"],
                ["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"]):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", out,
                             "tcp or udp" if all_features else "tcp"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory() as work:
            asyncio.run(asyncio.wait_for(scenario(Path(work), all_features), TIMEOUT))
    finally:
        time.sleep(1.0)  # let tcpdump write the last segments (Byes, FINs)
        dump.terminate()
        dump.wait(timeout=10)
    return 0


def main() -> int:
    out = os.path.abspath(sys.argv[1])
    all_features = "--all-features" in sys.argv[2:]
    if "--inside" in sys.argv[2:]:
        return inside(out, all_features)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["timeout", "-k", "5", str(TIMEOUT + 30), "unshare", "-n",
                           sys.executable, __file__, out, "--inside", *sys.argv[2:]],
                          env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
