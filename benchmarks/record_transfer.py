"""Record a long BitTorrent transfer between two libtorrent peers on loopback, for benchmarks.

Runs inside a private network namespace with only loopback (``unshare -n``): lo up with a
1500-byte MTU (realistic segments, and tcpdump drops nothing), DHT/LSD/UPnP/NAT-PMP off,
encryption off, peers on 127.0.0.2 and 127.0.0.3. Bounded by ``--timeout``.

    python3 benchmarks/record_transfer.py OUT.pcap --megabytes 300

Needs Debian's python3-libtorrent (run with /usr/bin/python3), tcpdump and ethtool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def _inside(out: str, megabytes: int, timeout: float) -> int:
    import libtorrent as lt

    subprocess.run(["ip", "link", "set", "lo", "mtu", "1500"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Without this, TCP hands loopback 64 KiB super-segments and tcpdump records those.
    subprocess.run(["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"],
                   check=True, stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="p2pkit-bench-")
    seed_dir, leech_dir = os.path.join(work, "seed"), os.path.join(work, "leech")
    os.makedirs(seed_dir)
    os.makedirs(leech_dir)
    payload = os.path.join(seed_dir, "payload.bin")
    block = os.urandom(1 << 20)
    with open(payload, "wb") as f:
        for i in range(megabytes):
            f.write(block[i % 7:] + block[: i % 7])
    fs = lt.file_storage()
    lt.add_files(fs, payload)
    t = lt.create_torrent(fs, 1 << 20, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(t, seed_dir)
    info = lt.torrent_info(lt.bencode(t.generate()))

    def session(ip: str, port: int):
        return lt.session({
            "listen_interfaces": f"{ip}:{port}", "outgoing_interfaces": ip,
            "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
            "enable_natpmp": False, "dht_bootstrap_nodes": "",
            "in_enc_policy": 2, "out_enc_policy": 2, "allow_multiple_connections_per_ip": True,
            "enable_outgoing_utp": False, "enable_incoming_utp": False,
            "alert_mask": 0,
        })

    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-w", out,
                             "tcp"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    seeder, leecher = session("127.0.0.2", 6881), session("127.0.0.3", 6882)
    seeder.add_torrent({"ti": info, "save_path": seed_dir})
    handle = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
    time.sleep(0.5)
    handle.connect_peer(("127.0.0.2", 6881))
    deadline = time.monotonic() + timeout
    status = 0
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            status = 1
            break
        time.sleep(0.2)
    time.sleep(0.5)
    del seeder, leecher
    dump.terminate()
    dump.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return _inside(os.path.abspath(args.out), args.megabytes, args.timeout)
    cmd = ["unshare", "-n", sys.executable, os.path.abspath(__file__), args.out,
           "--megabytes", str(args.megabytes), "--timeout", str(args.timeout), "--inside"]
    return subprocess.run(cmd, timeout=args.timeout + 60).returncode


if __name__ == "__main__":
    sys.exit(main())
