"""Record ``bt-11-p2pkit-utp-gso.pcap``: p2pkit to p2pkit over uTP with UDP GSO (run by hand).

    python -m tests.bittorrent.record_utp_gso_capture

Inside ``unshare -n`` (re-run there by this script) with ``lo`` at MTU 1500 and its offloads on
(as a Linux host's own capture sees them: ``tx-udp-segmentation`` on, so tcpdump sees what one
``sendmsg`` with ``UDP_SEGMENT`` carried as one UDP payload, up to 44 uTP packets):
``p2pkit bt seed`` on 127.0.0.2:6881, ``p2pkit bt download --peer 127.0.0.2:6881`` on
127.0.0.3:6881, both ``--transport utp --encryption plaintext --no-trackers``, a 300 kB file
in 16 KiB pieces (``torrents/bt-11-p2pkit-utp-gso.torrent``), tcpdump on ``lo`` (UDP only).
Every step is bounded in time; processes are stopped by PID. The files are copied to
tests/data/ only when the download hashed right.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
NAME = "bt-11-p2pkit-utp-gso"
P2PKIT = (sys.executable, "-c", "import sys; from p2pkit.cli import main; sys.exit(main())")
COMMON = ("--transport", "utp", "--encryption", "plaintext", "--no-trackers", "-q")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def record(work: Path) -> None:
    from p2pkit.bittorrent.wire.create import create_torrent

    data = work / "seed" / "gso.bin"
    data.parent.mkdir(parents=True)
    data.write_bytes(random.Random(11).randbytes(300_000))
    torrent = work / f"{NAME}.torrent"
    torrent.write_bytes(create_torrent(data, piece_length=16384))
    pcap = work / f"{NAME}.pcap"
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", str(pcap), "udp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    seed = subprocess.Popen([*P2PKIT, "bt", "seed", str(torrent), "--data", str(data.parent),
                             "--listen", "127.0.0.2:6881", *COMMON])
    try:
        time.sleep(1.5)
        subprocess.run([*P2PKIT, "bt", "download", str(torrent), "-o", str(work / "out"),
                        "--listen", "127.0.0.3:6881", "--peer", "127.0.0.2:6881",
                        "--timeout", "30", *COMMON], check=True, timeout=60)
        time.sleep(0.5)
    finally:
        _stop(seed)
        time.sleep(0.5)
        _stop(dump, signal.SIGTERM)
    if (work / "out" / "gso.bin").read_bytes() != data.read_bytes():
        raise SystemExit("the download differs from the seed: nothing copied")
    shutil.copy(pcap, DATA / "captures" / pcap.name)
    shutil.copy(torrent, DATA / "torrents" / torrent.name)
    print(f"wrote {DATA / 'captures' / pcap.name}")


def main() -> None:
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        script = ("ip link set lo mtu 1500 && ip link set lo up && "
                  "ethtool -K lo tx-udp-segmentation on >/dev/null 2>&1; exec \"$@\"")
        os.execvp("timeout", ["timeout", "-k", "5", "120", "unshare", "-n", "sh", "-c", script,
                              "sh", sys.executable, "-m", "tests.bittorrent.record_utp_gso_capture"])
    with tempfile.TemporaryDirectory(prefix="utp-gso-") as tmp:
        record(Path(tmp))


if __name__ == "__main__":
    main()
