"""Record the committed MSE captures of p2pkit with libtorrent and transmission, and their key
logs (run by hand).

    python -m tests.interop.record_mse_capture

Inside ``unshare -n`` on loopback (tests/interop/bittorrent_clients.py, tcpdump on lo with MTU
1500), a 2-file ~1 MiB torrent in 32 KiB pieces:

- ``bt-09-p2pkit-leech-libtorrent-mse``: ``p2pkit bt download --encryption require --keylog``
  (127.0.0.3:6882) dials a libtorrent 2.0.8 seeder (127.0.0.2:6881, ``pe_forced`` both ways,
  ``pe_rc4`` only, upload limited to 400 kB/s so that tcpdump keeps every segment);
- ``bt-10-p2pkit-seed-transmission-mse``: ``p2pkit bt seed --encryption require --keylog``
  (127.0.0.3:6882) dials a transmission 3.00 leecher (127.0.0.2:6881, ``"encryption": 2``,
  download limited to 400 kB/s).

tcpdump keeps only the peer connection (``tcp port 6881``: not transmission-remote's RPC).

Each is written to tests/data/captures/ (``NAME.pcap``, ``NAME.keylog``; the torrent to
tests/data/torrents/``NAME.torrent``) only when the download hashed right, the key log holds
one RC4 connection and the capture holds every byte of it.
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

DATA = Path(__file__).resolve().parents[1] / "data"
#: Capture name -> the client p2pkit talks to.
RECORDINGS = {"bt-09-p2pkit-leech-libtorrent-mse": "libtorrent",
              "bt-10-p2pkit-seed-transmission-mse": "transmission"}
FILES = {"a.bin": 300_001, "b.bin": 748_571}
THEM, US = ("127.0.0.2", 6881), ("127.0.0.3", 6882)
LT_FORCED_RC4 = {"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2,
                 "prefer_rc4": True}


def record(work: Path, name: str, kind: str) -> tuple[Path, Path, Path]:
    made = make_content(work, FILES, piece_length=32768, name="mse")
    keylog = work / f"{name}.keylog"
    encrypted = ("--encryption", "require", "--keylog", str(keylog))
    if kind == "libtorrent":
        other = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0],
                     port=THEM[1], data_dir=made.seed_dir, torrent=made.torrent,
                     settings={**LT_FORCED_RC4, "ignore_limits_on_local_network": False,
                               "upload_rate_limit": 400_000})
        out = work / "out"
        ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                    data_dir=out,
                    argv=p2pkit_download_argv(made.torrent, out, peers=(other.address,),
                                              listen=f"{US[0]}:{US[1]}") + encrypted)
    else:
        out = work / "theirs"
        other = Peer(name="tr-leech", kind="transmission", role="leech", host=THEM[0],
                     port=THEM[1], data_dir=out, torrent=made.torrent,
                     settings={"encryption": 2, "speed-limit-down": 400,
                               "speed-limit-down-enabled": True})
        ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                    data_dir=made.seed_dir,
                    argv=p2pkit_seed_argv(made.torrent, made.seed_dir,
                                          listen=f"{US[0]}:{US[1]}", peers=(other.address,))
                    + encrypted)
    pcap = work / f"{name}.pcap"
    result = run_scenario(run_in_netns, Scenario(work=work, peers=(other, ours), timeout=60,
                                                 capture=Capture(path=pcap, filter=(
                                                     f"tcp port {THEM[1]}"))))
    if result.returncode != 0 or content_digests(made.torrent, out) != made.digests:
        sys.exit(f"{name}: the download failed\n{result.report()}")
    if len(keylog.read_text().splitlines()) != 1 or " rc4" not in keylog.read_text():
        sys.exit(f"{name}: expected one RC4 connection in the key log")
    carried = sum(len(d) for d in tcp_streams(str(pcap)).values())
    if carried < sum(FILES.values()):
        sys.exit(f"{name}: tcpdump lost segments ({carried} bytes in whole streams)")
    return pcap, keylog, made.torrent


def main() -> None:
    wanted = sys.argv[1:] or list(RECORDINGS)
    for name in wanted:
        with tempfile.TemporaryDirectory() as tmp:
            pcap, keylog, torrent = record(Path(tmp), name, RECORDINGS[name])
            shutil.copy(pcap, DATA / "captures" / pcap.name)
            shutil.copy(keylog, DATA / "captures" / keylog.name)
            shutil.copy(torrent, DATA / "torrents" / f"{name}.torrent")
            print(f"{DATA / 'captures' / pcap.name}: {pcap.stat().st_size} bytes")


if __name__ == "__main__":
    main()
