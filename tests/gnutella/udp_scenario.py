"""Four p2pkit servents with UDP on 127.0.0.x, run by test_udp.py inside ``unshare -n`` (only
``lo`` up; every address is loopback; the run ends by itself within its timeout).

up1 (127.0.0.10) - up2 (127.0.0.14); leaf q (127.0.0.11) on up1, leaf r (127.0.0.13, sharing
``kilo lima.bin``) on up2. Checked: the GTKG/7 UDP connect-back both ways makes every servent
UDP-reachable; q's query is out-of-band (its GUID carries q's address) and r's hit arrives over
UDP, never relayed over TCP; q downloads it; gtk-gnutella's real UDP ping (ndpi-gnutella frame
673) sent from a plain socket gets a pong with GGEP; a flood of pings from one socket is cut to
the per-source rate. Exits 1 with the failed check.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.server import GnutellaServer
from p2pkit.gnutella.udp import MAX_PER_SOURCE, oob_address

GTKG_PING = bytes.fromhex("24d5310268fc1981ffbcc6e01fdbbe0300010018000000c303534350410202"
                          "56434547544b47628644485449505040")


def check(condition: bool, what: str) -> None:
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)


async def main(tmp: Path) -> None:
    share = tmp / "r"
    share.mkdir()
    (share / "kilo lima.bin").write_bytes(b"k" * 4321)
    up1 = GnutellaServer(ultrapeer=True, host="127.0.0.10", port=6346, seed=1, udp=True)
    up2 = GnutellaServer(ultrapeer=True, host="127.0.0.14", port=6350, seed=2, udp=True)
    q = GnutellaServer(host="127.0.0.11", port=6347, seed=3, udp=True)
    r = GnutellaServer(share=share, host="127.0.0.13", port=6349, seed=4, udp=True)
    servers = (up1, up2, q, r)
    for s in servers:
        await s.start()
    try:
        await up2.connect("127.0.0.10", 6346)
        await q.connect("127.0.0.10", 6346)
        await r.connect("127.0.0.14", 6350)
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in servers)), 5)
        for _ in range(50):  # Messages Supported, GTKG/7, the pings back
            if all(s.core.udp.reachable for s in servers):
                break
            await asyncio.sleep(0.05)
        check(all(s.core.udp.reachable for s in servers),
              f"UDP connect-back: reachable {[s.core.udp.reachable for s in servers]}")
        check(up1.core.received["vendor_message"] > 0 and
              up1.core.udp.received.get("ping", 0) >= 1, "up1 was pinged over UDP")

        hits = await q.search("kilo", timeout=1.0)
        check([h.file_name for h in hits] == ["kilo lima.bin"], f"hits {hits}")
        check(q.core.udp.received.get("query_hit") == 1, "the hit came over UDP")
        check(up1.core.received["query_hit"] == 0 and up2.core.received["query_hit"] == 0,
              "no hit relayed over TCP")
        guid = next(iter(q.core.udp.oob_queries))
        check(oob_address(guid) == ("127.0.0.11", 6347), "the query's GUID names q")
        data = await q.fetch(hits[0], timeout=5)
        check(data == b"k" * 4321, "download of the out-of-band hit")

        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.50", 0))
        sock.setblocking(False)
        await loop.sock_sendto(sock, GTKG_PING, ("127.0.0.10", 6346))
        answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 2)
        pong = Descriptor.parse(answer)
        ids = [e.id for b in pong.extensions for e in b.extensions]
        check(pong.type == "pong" and pong.guid == GTKG_PING[:16] and pong.port == 6346,
              f"pong {pong}")
        check(ids[:4] == ["VC", "GUE", "UP", "DU"], f"pong GGEP {ids}")
        for _ in range(MAX_PER_SOURCE + 20):
            await loop.sock_sendto(sock, GTKG_PING, ("127.0.0.10", 6346))
        await asyncio.sleep(0.3)
        answers = 0
        while True:
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
            answers += 1
        check(answers == MAX_PER_SOURCE - 1, f"{answers} pongs to a flood (rate limit)")
        sock.close()
    finally:
        for s in reversed(servers):
            await s.close()
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(Path(sys.argv[1])), 45))
