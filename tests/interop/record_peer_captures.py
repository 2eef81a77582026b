"""Record the committed captures of p2pkit's BitTorrent peer with real clients (run by hand).

    python -m tests.interop.record_peer_captures

Inside ``unshare -n`` on loopback (tests/interop/bittorrent_clients.py, tcpdump on lo with MTU
1500 and offloads off), a 3-file torrent of ~300 kB in 16 KiB pieces, made by p2pkit:

- ``bt-06-p2pkit-leech-libtorrent.pcap``: ``p2pkit bt download`` (127.0.0.3) dials a libtorrent
  2.0.8 seeder (127.0.0.2, upload limited to 1 MB/s) and downloads everything;
- ``bt-07-p2pkit-seed-aria2.pcap``: ``p2pkit bt seed`` (127.0.0.3) dials an aria2 1.36 leecher
  (127.0.0.2), which downloads everything (aria2 sends a second bitfield mid-stream).

The files are copied to tests/data/captures/ only when every download hashed right.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.interop.bittorrent_clients import (
    Capture,
    Peer,
    Scenario,
    content_digests,
    make_content,
    p2pkit_download_argv,
    p2pkit_seed_argv,
    run_scenario,
)
from tests.interop.conftest import run_in_netns
from tests.pcap_payloads import tcp_streams

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"
FILES = {"a.bin": 40_003, "b.bin": 200_007, "sub/c.bin": 60_000}
THEM, US = ("127.0.0.2", 6881), ("127.0.0.3", 6882)


def record(work: Path, name: str, *, ours_seed: bool, kind: str) -> Path:
    made = make_content(work, FILES, piece_length=16384)
    pcap = work / name
    if ours_seed:
        other = Peer(name=kind, kind=kind, role="leech", host=THEM[0], port=THEM[1],
                     data_dir=work / "out", torrent=made.torrent)
        ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                    data_dir=made.seed_dir,
                    argv=p2pkit_seed_argv(made.torrent, made.seed_dir,
                                          listen=f"{US[0]}:{US[1]}", peers=(other.address,)))
        peers = (other, ours)
    else:
        # At full loopback speed tcpdump drops segments; 1 MB/s keeps the capture whole.
        other = Peer(name=kind, kind=kind, role="seed", host=THEM[0], port=THEM[1],
                     data_dir=made.seed_dir, torrent=made.torrent,
                     settings={"ignore_limits_on_local_network": False,
                               "upload_rate_limit": 1_000_000})
        ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                    data_dir=work / "out",
                    argv=p2pkit_download_argv(made.torrent, work / "out",
                                              peers=(other.address,),
                                              listen=f"{US[0]}:{US[1]}"))
        peers = (other, ours)
    result = run_scenario(run_in_netns, Scenario(work=work, peers=peers, timeout=60,
                                                 capture=Capture(path=pcap, filter="tcp")))
    if result.returncode != 0 or content_digests(made.torrent, work / "out") != made.digests:
        sys.exit(f"{name}: the download failed\n{result.report()}")
    carried = sum(len(d) for d in tcp_streams(str(pcap)).values())
    if carried < sum(FILES.values()):
        sys.exit(f"{name}: tcpdump lost segments ({carried} bytes in whole streams)")
    return pcap


def main() -> None:
    for name, ours_seed, kind in (("bt-06-p2pkit-leech-libtorrent.pcap", False, "libtorrent"),
                                  ("bt-07-p2pkit-seed-aria2.pcap", True, "aria2")):
        with tempfile.TemporaryDirectory() as tmp:
            pcap = record(Path(tmp), name, ours_seed=ours_seed, kind=kind)
            shutil.copy(pcap, CAPTURES / name)
            print(f"{CAPTURES / name}: {pcap.stat().st_size} bytes")


if __name__ == "__main__":
    main()
