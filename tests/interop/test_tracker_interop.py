"""Interop of the p2pkit tracker (HTTP and UDP, BEP 3, 15, 23) with libtorrent 2.0 and aria2.

Inside ``unshare -n`` on loopback: ``bt tracker`` serves HTTP and UDP on 127.0.0.1:6969; a
libtorrent seeder (127.0.0.2) announces a torrent made by :mod:`p2pkit.bittorrent.wire.create` to the
HTTP tracker; then a leecher that can only learn the seeder from our tracker (no DHT, LSD, PEX
source, UPnP or NAT-PMP) downloads it: a libtorrent session through the UDP tracker, and aria2
through the HTTP tracker and through the UDP tracker. The downloaded file must hash like the original.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from p2pkit.bittorrent.wire.create import create_torrent
from tests.interop.conftest import require, require_executable

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
LT_PYTHON = "/usr/bin/python3"
TRACKER_PORT = 6969
HTTP_URL = f"http://127.0.0.1:{TRACKER_PORT}/announce"
UDP_URL = f"udp://127.0.0.1:{TRACKER_PORT}/announce"
#: Seconds one scenario may take (the namespace dies with it).
SCENARIO_TIMEOUT = 90

#: A libtorrent session, seeding or leeching one torrent from one tracker URL.
LIBTORRENT_PEER = r'''
import sys, time
import libtorrent as lt

mode, torrent, save, tracker, host, port = sys.argv[1:7]
s = lt.session({
    "listen_interfaces": f"{host}:{port}", "outgoing_interfaces": host,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "in_enc_policy": 2, "out_enc_policy": 2, "allow_multiple_connections_per_ip": True,
    "alert_mask": lt.alert_category.error | lt.alert_category.tracker,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.trackers = [tracker]
h = s.add_torrent(atp)
deadline = time.time() + float(sys.argv[7])
while time.time() < deadline:
    for a in s.pop_alerts():
        print(type(a).__name__, a.message(), flush=True)
    st = h.status()
    if mode == "leech" and st.is_seeding:
        print("DONE", flush=True)
        sys.exit(0)
    time.sleep(0.2)
print("TIMEOUT", h.status().progress, flush=True)
sys.exit(mode == "leech")
'''

#: Orchestration inside the namespace: tracker, seeder, then the leecher in the foreground.
SCENARIO = r'''
set -u
cd "$WORK"
"$VENV_PYTHON" -c "from p2pkit.cli.bt_tracker import tracker; tracker()" \
    --listen 127.0.0.1:{port} --interval 30 -v > tracker.log 2>&1 &
TRACKER=$!
for i in $(seq 50); do grep -q "UDP tracker" tracker.log && break; sleep 0.1; done
"$LT_PYTHON" peer.py seed t.torrent seed {http_url} 127.0.0.2 6881 60 > seed.log 2>&1 &
SEEDER=$!
for i in $(seq 100); do grep -q "from 127.0.0.2" tracker.log && break; sleep 0.1; done
{leecher} > leech.log 2>&1
RC=$?
kill $SEEDER $TRACKER
wait
exit $RC
'''


@pytest.fixture
def swarm(tmp_path):
    """A 1 MiB file, its torrent (made by p2pkit) and the peer script, in ``tmp_path``."""
    require(os.path.exists(LT_PYTHON) and os.system(
        f"{LT_PYTHON} -c 'import libtorrent' 2>/dev/null") == 0, "python3-libtorrent")
    seed = tmp_path / "seed"
    seed.mkdir()
    data = bytes(hashlib.sha256(i.to_bytes(4, "big")).digest()[0] for i in range(1 << 20))
    (seed / "payload.bin").write_bytes(data)
    (tmp_path / "t.torrent").write_bytes(create_torrent(seed / "payload.bin",
                                                        piece_length=65536))
    (tmp_path / "peer.py").write_text(LIBTORRENT_PEER)
    (tmp_path / "leech").mkdir()
    return tmp_path, hashlib.sha256(data).hexdigest()


def run_scenario(netns, work: Path, leecher: str):
    script = SCENARIO.format(port=TRACKER_PORT, http_url=HTTP_URL, leecher=leecher)
    env = dict(os.environ, WORK=str(work), VENV_PYTHON=sys.executable, LT_PYTHON=LT_PYTHON,
               PYTHONPATH=str(ROOT))
    done = netns(["sh", "-c", script], timeout=SCENARIO_TIMEOUT, env=env)
    logs = {name: (work / name).read_text() if (work / name).exists() else ""
            for name in ("tracker.log", "seed.log", "leech.log")}
    return done, logs


def downloaded(work: Path) -> str | None:
    path = work / "leech" / "payload.bin"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_libtorrent_leecher_finds_seeder_through_udp_tracker(netns, swarm):
    work, digest = swarm
    leecher = f'"$LT_PYTHON" peer.py leech t.torrent leech {UDP_URL} 127.0.0.3 6882 60'
    done, logs = run_scenario(netns, work, leecher)
    assert done.returncode == 0, (done.stdout, done.stderr, logs)
    assert downloaded(work) == digest
    tracker_log = logs["tracker.log"]
    assert "http announce" in tracker_log and "from 127.0.0.2:6881 event=started left=0" \
        in tracker_log, tracker_log
    # The leecher's UDP announce was answered with the seeder.
    assert any(line.startswith("udp announce") and "from 127.0.0.3:6882" in line
               and "peers=1" in line for line in tracker_log.splitlines()), tracker_log


def test_aria2_leecher_finds_seeder_through_http_tracker(netns, swarm):
    require_executable("aria2c")
    work, digest = swarm
    leecher = ("timeout 60 aria2c --interface=127.0.0.4 --listen-port=6883 --enable-dht=false "
               "--bt-enable-lpd=false --enable-peer-exchange=false --seed-time=0 "
               f"--bt-tracker={HTTP_URL} --bt-exclude-tracker='*' --dir=leech "
               "--check-integrity=false --console-log-level=warn --summary-interval=0 "
               "t.torrent")
    done, logs = run_scenario(netns, work, leecher)
    assert done.returncode == 0, (done.stdout, done.stderr, logs)
    assert downloaded(work) == digest
    assert any(line.startswith("http announce") and "from 127.0.0.4:6883" in line
               and "peers=1" in line for line in logs["tracker.log"].splitlines()), logs


def test_aria2_leecher_finds_seeder_through_udp_tracker(netns, swarm):
    """aria2 sends UDP tracker requests from its DHT socket, so DHT is on (with no entry
    point and a fresh routing table file: it can learn nothing from it)."""
    require_executable("aria2c")
    work, digest = swarm
    leecher = ("timeout 60 aria2c --interface=127.0.0.5 --listen-port=6884 --enable-dht=true "
               "--dht-listen-port=6885 --dht-file-path=dht.dat --enable-dht6=false "
               "--bt-enable-lpd=false --enable-peer-exchange=false --seed-time=0 "
               f"--bt-tracker={UDP_URL} --dir=leech --console-log-level=warn "
               "--summary-interval=0 t.torrent")
    done, logs = run_scenario(netns, work, leecher)
    assert done.returncode == 0, (done.stdout, done.stderr, logs)
    assert downloaded(work) == digest
    assert any(line.startswith("udp announce") and "from 127.0.0.5:6884" in line
               and "peers=1" in line for line in logs["tracker.log"].splitlines()), logs
