"""uTP (BEP 29) against TCP: one p2pkit seeder, one p2pkit downloader, loopback, with loss.

Runs inside ONE ``unshare -n`` network namespace whose only interface is ``lo`` (brought up
with ``--mtu``: 65536, loopback's own, by default; 1500 gives TCP segments and uTP datagrams
Ethernet's sizes; ``--lo-segmentation``: whether a UDP GSO send crosses ``lo`` whole or is cut
into its datagrams before it, the default, so that loss hits datagrams one by one); it re-runs
itself there. For each transport (``tcp``, ``utp``) and each loss rate (every packet arriving on
``lo``, both directions, dropped with probability P by ``iptables -A INPUT -i lo -m statistic
--mode random --probability P -j DROP``: this machine's kernel has no ``sch_netem``, so ``tc
netem`` is not available), ``p2pkit bt seed``
on 127.0.0.2:6881 and ``p2pkit bt download`` on 127.0.0.3:6881 (``--transport`` the same on both,
plaintext, no trackers) move a deterministic random file (v1 torrent, 1 MiB pieces); the
download is timed from the downloader's start to its exit (every piece hash-checked), bounded by
``--timeout`` (a stall shows as a timeout). Processes are started and stopped by PID by this
script only.

    /work/venv/bin/python benchmarks/utp_transfer.py --size-mb 64 --loss 0 1 5 \
        --utp-mtu interface   # datagrams up to lo's 65536 (p2pkit peers only)

It prints one JSON document on its last line (MB = 10**6 bytes); figures in
docs/performance.md and docs/protocols/utp.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
P2PKIT = (sys.executable, "-c", "import sys; from p2pkit.cli import main; sys.exit(main())")
SEED, LEECH = ("127.0.0.2", 6881), ("127.0.0.3", 6881)
UTP_MTU = "ethernet"


def in_namespace() -> bool:
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def make_content(work: Path, size_mb: int) -> Path:
    from p2pkit.bittorrent.wire.create import create_torrent

    data = work / "seed" / "blob.bin"
    data.parent.mkdir(parents=True)
    rng = random.Random(29)
    with data.open("wb") as f:
        for _ in range(size_mb):
            f.write(rng.randbytes(1 << 20))
    torrent = work / "blob.torrent"
    torrent.write_bytes(create_torrent(data, piece_length=1 << 20))
    return torrent


def transfer(work: Path, torrent: Path, transport: str, loss: float, timeout: float) -> dict:
    run(["iptables", "-F", "INPUT"])
    if loss:
        run(["iptables", "-A", "INPUT", "-i", "lo", "-m", "statistic", "--mode", "random",
             "--probability", str(loss / 100), "-j", "DROP"])
    common = ["--transport", transport, "--encryption", "plaintext", "--no-trackers", "-q",
              "--utp-mtu", UTP_MTU]
    seed = subprocess.Popen([*P2PKIT, "bt", "seed", str(torrent), "--data", str(work / "seed"),
                             "--listen", f"{SEED[0]}:{SEED[1]}", *common],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = work / f"out-{transport}-{loss}"
    try:
        time.sleep(1.5)  # the seeder checks its data and listens
        start = time.monotonic()
        try:
            done = subprocess.run([*P2PKIT, "bt", "download", str(torrent), "-o", str(out),
                                   "--listen", f"{LEECH[0]}:{LEECH[1]}",
                                   "--peer", f"{SEED[0]}:{SEED[1]}", "--timeout",
                                   str(timeout), *common], capture_output=True, text=True,
                                  timeout=timeout + 30)
            status = done.returncode
        except subprocess.TimeoutExpired:
            status = "killed"
        seconds = time.monotonic() - start
    finally:
        seed.send_signal(signal.SIGTERM)
        try:
            seed.wait(10)
        except subprocess.TimeoutExpired:
            seed.kill()
            seed.wait()
    size = (work / "seed" / "blob.bin").stat().st_size
    same = (out / "blob.bin").exists() and (out / "blob.bin").read_bytes() == \
        (work / "seed" / "blob.bin").read_bytes()
    shutil.rmtree(out, ignore_errors=True)
    return {"transport": transport, "loss_percent": loss, "exit": status, "intact": same,
            "seconds": round(seconds, 2), "MB_per_s": round(size / seconds / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--loss", type=float, nargs="*", default=[0.0, 1.0, 5.0])
    parser.add_argument("--transports", nargs="*", default=["tcp", "utp"])
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--mtu", type=int, default=65536, help="MTU of lo in the namespace")
    parser.add_argument("--utp-mtu", choices=("ethernet", "interface"), default="ethernet",
                        help="the peers' --utp-mtu (interface: datagrams up to lo's MTU)")
    parser.add_argument("--lo-segmentation", choices=("off", "on"), default="off",
                        help="lo's tx-udp-segmentation (ethtool -K): off, the kernel cuts a GSO "
                             "send into datagrams before lo, so the loss rule drops datagrams "
                             "one by one as a lossy link would; on, a GSO send crosses lo whole "
                             "(received coalesced, and dropped whole)")
    args = parser.parse_args()
    global UTP_MTU
    UTP_MTU = args.utp_mtu
    if not in_namespace():
        script = (f"ip link set lo mtu {args.mtu} && ip link set lo up && "
                  f"(ethtool -K lo tx-udp-segmentation {args.lo_segmentation} >/dev/null 2>&1 "
                  f"|| true) && exec \"$@\"")
        total = (args.timeout + 60) * len(args.loss) * len(args.transports) + 60
        os.execvp("timeout", ["timeout", "-k", "5", str(int(total)), "unshare", "-n", "sh",
                              "-c", script, "sh", sys.executable, *sys.argv])
    rows = []
    with tempfile.TemporaryDirectory(prefix="utp-bench-") as tmp:
        work = Path(tmp)
        torrent = make_content(work, args.size_mb)
        for loss in args.loss:
            for transport in args.transports:
                rows.append(transfer(work, torrent, transport, loss, args.timeout))
                print(rows[-1], file=sys.stderr, flush=True)
    print(json.dumps({"size_mb": args.size_mb, "mtu": args.mtu, "utp_mtu": args.utp_mtu,
                      "lo_segmentation": args.lo_segmentation,
                      "load_average": os.getloadavg()[0], "rows": rows}))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
