"""Record the committed MSE capture of p2pkit with libtorrent, and its key log (run by hand).

    python -m tests.interop.record_mse_capture

Inside ``unshare -n`` on loopback (tests/interop/bittorrent_clients.py, tcpdump on lo with MTU
1500): ``p2pkit bt download --encryption require --keylog`` (127.0.0.3:6882) dials a
libtorrent 2.0.8 seeder (127.0.0.2:6881, ``pe_forced`` both ways, ``pe_rc4`` only, upload
limited to 400 kB/s so that tcpdump keeps every segment) and downloads a 2-file ~1 MiB torrent
in 32 KiB pieces. Written to tests/data/captures/ only when the download hashed right, the key
log holds one RC4 connection and the capture holds every byte of it:

- ``bt-09-p2pkit-leech-libtorrent-mse.pcap``, ``bt-09-p2pkit-leech-libtorrent-mse.keylog``;
- ``tests/data/torrents/bt-09-p2pkit-leech-libtorrent-mse.torrent``.
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
    run_scenario,
)
from tests.interop.conftest import run_in_netns
from tests.pcap_payloads import tcp_streams

DATA = Path(__file__).resolve().parents[1] / "data"
NAME = "bt-09-p2pkit-leech-libtorrent-mse"
FILES = {"a.bin": 300_001, "b.bin": 748_571}
THEM, US = ("127.0.0.2", 6881), ("127.0.0.3", 6882)
LT_FORCED_RC4 = {"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2,
                 "prefer_rc4": True}


def record(work: Path) -> tuple[Path, Path, Path]:
    made = make_content(work, FILES, piece_length=32768, name="mse")
    keylog = work / f"{NAME}.keylog"
    seed = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                data_dir=made.seed_dir, torrent=made.torrent,
                settings={**LT_FORCED_RC4, "ignore_limits_on_local_network": False,
                          "upload_rate_limit": 400_000})
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=work / "out",
                argv=p2pkit_download_argv(made.torrent, work / "out", peers=(seed.address,),
                                          listen=f"{US[0]}:{US[1]}")
                + ("--encryption", "require", "--keylog", str(keylog)))
    pcap = work / f"{NAME}.pcap"
    result = run_scenario(run_in_netns, Scenario(work=work, peers=(seed, ours), timeout=60,
                                                 capture=Capture(path=pcap, filter="tcp")))
    if result.returncode != 0 or content_digests(made.torrent, work / "out") != made.digests:
        sys.exit(f"{NAME}: the download failed\n{result.report()}")
    if len(keylog.read_text().splitlines()) != 1 or " rc4" not in keylog.read_text():
        sys.exit(f"{NAME}: expected one RC4 connection in the key log")
    carried = sum(len(d) for d in tcp_streams(str(pcap)).values())
    if carried < sum(FILES.values()):
        sys.exit(f"{NAME}: tcpdump lost segments ({carried} bytes in whole streams)")
    return pcap, keylog, made.torrent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pcap, keylog, torrent = record(Path(tmp))
        shutil.copy(pcap, DATA / "captures" / pcap.name)
        shutil.copy(keylog, DATA / "captures" / keylog.name)
        shutil.copy(torrent, DATA / "torrents" / f"{NAME}.torrent")
        print(f"{DATA / 'captures' / pcap.name}: {pcap.stat().st_size} bytes")


if __name__ == "__main__":
    main()
