"""The swarm machinery of :mod:`tests.interop.bittorrent_clients`, with third-party peers only.

Each scenario runs inside ``unshare -n`` on loopback: a multi-file torrent made by
:func:`p2pkit.bittorrent.wire.create.create_torrent` (three files, ~2 MiB, 64 KiB pieces, every file
boundary inside a piece) is seeded by one client and downloaded by another, and the downloaded
files must hash like the originals. Together they show that each client can seed and leech under
the machinery, that libtorrent serves metadata for a magnet (what a p2pkit leecher will need) and
that transmission, which never dials 127/8, gets its data when the seeder dials it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from tests.interop.bittorrent_clients import (
    LT_PYTHON,
    Capture,
    Peer,
    Scenario,
    Tracker,
    content_digests,
    libtorrent_command,
    make_content,
    p2pkit_download_argv,
    run_scenario,
    scenario_script,
)
from tests.interop.conftest import require, require_executable
from tests.pcap_payloads import tcp_streams

pytestmark = pytest.mark.interop

PIECE_LENGTH = 65536
#: Sizes chosen so that every file boundary falls inside a piece (2 MiB in all).
FILES = {"a.bin": 100_003, "b.bin": 1_500_007, "sub/c.bin": 497_142}
SEEDER = ("127.0.0.2", 6881)
LEECHER = ("127.0.0.3", 6882)
HANDSHAKE = b"\x13BitTorrent protocol"


@pytest.fixture
def content(tmp_path):
    """``(torrent, seed_dir, digests)``: the torrent and its content under ``seed_dir``."""
    made = make_content(tmp_path, FILES, piece_length=PIECE_LENGTH)
    meta = Metainfo.parse(made.torrent.read_bytes())
    assert [f.length for f in meta.files] == list(FILES.values())
    assert None not in made.digests.values() and len(made.digests) == 3
    return made.torrent, made.seed_dir, made.digests


def need_libtorrent() -> None:
    require(os.path.exists(LT_PYTHON) and os.system(
        f"{LT_PYTHON} -c 'import libtorrent' 2>/dev/null") == 0, "python3-libtorrent")


def need_transmission() -> None:
    require_executable("transmission-daemon")
    require_executable("transmission-remote")


def seeder(kind, torrent, seed_dir, **kw) -> Peer:
    return Peer(name=f"{kind}-seed", kind=kind, role="seed", host=SEEDER[0], port=SEEDER[1],
                data_dir=seed_dir, torrent=torrent, **kw)


def leecher(kind, tmp_path, **kw) -> Peer:
    return Peer(name=f"{kind}-leech", kind=kind, role="leech", host=LEECHER[0],
                port=LEECHER[1], data_dir=tmp_path / "leech", **kw)


def check_download(result, torrent: Path, leech: Peer, digests) -> None:
    assert result.returncode == 0, result.report()
    assert result.peers[leech.name].finished, result.report()
    assert content_digests(torrent, leech.data_dir) == digests, result.report()


def test_aria2_downloads_from_libtorrent_seeder_that_dials_it(netns, content, tmp_path):
    """aria2 cannot be given a peer: the libtorrent seeder dials it. Captured with tcpdump."""
    need_libtorrent()
    require_executable("aria2c")
    require_executable("tcpdump")
    torrent, seed_dir, digests = content
    leech = leecher("aria2", tmp_path, torrent=torrent)
    pcap = tmp_path / "lt-aria2.pcap"
    scenario = Scenario(work=tmp_path, peers=(
        seeder("libtorrent", torrent, seed_dir, dial=(leech.address,)), leech),
        capture=Capture(path=pcap, filter="tcp"))
    result = run_scenario(netns, scenario)
    check_download(result, torrent, leech, digests)
    assert result.peers["libtorrent-seed"].stopped, result.report()
    # The capture holds the whole connection: seeder to aria2, a plaintext handshake first and
    # then at least the 2 MiB of content; aria2's answer starts with a handshake too.
    streams = tcp_streams(str(pcap))
    upload = [data for (src, dst), data in streams.items()
              if src[0] == SEEDER[0] and dst == LEECHER]
    answer = [data for (src, dst), data in streams.items()
              if src == LEECHER and dst[0] == SEEDER[0]]
    assert len(upload) == 1 and len(answer) == 1, streams.keys()
    assert upload[0].startswith(HANDSHAKE) and answer[0].startswith(HANDSHAKE)
    assert len(upload[0]) > sum(FILES.values()), len(upload[0])


def test_libtorrent_downloads_from_transmission_seeder(netns, content, tmp_path):
    """transmission only accepts connections on loopback: the libtorrent leecher dials it."""
    need_libtorrent()
    need_transmission()
    torrent, seed_dir, digests = content
    seed = seeder("transmission", torrent, seed_dir)
    leech = leecher("libtorrent", tmp_path, torrent=torrent, dial=(seed.address,))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, leech)))
    check_download(result, torrent, leech, digests)
    assert "Transmission 3" in result.peers[leech.name].log, result.report()


def test_transmission_downloads_from_libtorrent_seeder_that_dials_it(netns, content, tmp_path):
    need_libtorrent()
    need_transmission()
    torrent, seed_dir, digests = content
    leech = leecher("transmission", tmp_path, torrent=torrent)
    seed = seeder("libtorrent", torrent, seed_dir, dial=(leech.address,))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(leech, seed)))
    check_download(result, torrent, leech, digests)
    assert "DONE" in result.peers[leech.name].log, result.report()


def test_libtorrent_downloads_from_aria2_seeder(netns, content, tmp_path):
    need_libtorrent()
    require_executable("aria2c")
    torrent, seed_dir, digests = content
    seed = seeder("aria2", torrent, seed_dir)
    leech = leecher("libtorrent", tmp_path, torrent=torrent, dial=(seed.address,))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, leech), measure=True))
    check_download(result, torrent, leech, digests)
    # Measured: both clients' resource use, the seeder's after it was stopped.
    done, stopped = result.peers[leech.name], result.peers[seed.name]
    assert done.usage["max_rss_kib"] > 1000 and done.seconds > 0, result.report()
    assert stopped.stopped and stopped.seconds is None  # aria2 exits 0 on TERM
    assert stopped.usage["max_rss_kib"] > 1000, result.report()
    assert "aria2" in result.peers[leech.name].log or "ABC 2.1" in \
        result.peers[leech.name].log, result.report()


def test_libtorrent_serves_metadata_for_a_magnet(netns, content, tmp_path):
    """The leecher (p2pkit's place later) starts from a magnet with only the info-hash."""
    need_libtorrent()
    torrent, seed_dir, digests = content
    seed = seeder("libtorrent", torrent, seed_dir)
    magnet = MagnetLink.from_metainfo(Metainfo.parse(torrent.read_bytes())).to_uri()
    leech = leecher("libtorrent", tmp_path, magnet=magnet, dial=(seed.address,))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, leech)))
    check_download(result, torrent, leech, digests)
    log = result.peers[leech.name].log
    assert "has_metadata=False" in log and "metadata_received_alert" in log, result.report()


def test_script_starts_tracker_capture_and_p2pkit_peer_in_order(tmp_path):
    """The generated script (not run): tracker, then capture-less peers in the given order,
    with a p2pkit leecher's own argv and a readiness check on its listening socket."""
    tracker = Tracker()
    seed = Peer(name="lt", kind="libtorrent", role="seed", host="127.0.0.2", port=6881,
                data_dir=tmp_path, torrent=tmp_path / "t.torrent", trackers=(tracker.http_url,))
    ours = Peer(name="ours", kind="p2pkit", role="leech", host="127.0.0.3", port=6882,
                data_dir=tmp_path / "out", argv=p2pkit_download_argv(
                    tmp_path / "t.torrent", tmp_path / "out", peers=(seed.address,),
                    listen="127.0.0.3:6882"))
    script = scenario_script(Scenario(work=tmp_path, peers=(seed, ours), tracker=tracker))
    assert "lt-announce" in script and "from 127.0.0.2:6881 " in script
    order = [script.index(s) for s in ("start tracker", "start lt ", "start ours ",
                                       "waiting 45s for leechers: ours")]
    assert order == sorted(order), script
    assert "bt download" in script and "--peer 127.0.0.2:6881" in script
    assert "src 127.0.0.3:6882" in script
    assert "start capture" not in script


def test_peer_refuses_what_a_client_cannot_do(tmp_path):
    with pytest.raises(ValueError, match="cannot be told to dial"):
        Peer(name="a", kind="aria2", role="leech", host="127.0.0.2", port=1, data_dir=tmp_path,
             torrent=tmp_path / "t", dial=("127.0.0.3:2",))
    with pytest.raises(ValueError, match="loopback"):
        Peer(name="a", kind="aria2", role="leech", host="10.0.0.1", port=1, data_dir=tmp_path,
             torrent=tmp_path / "t")
    with pytest.raises(ValueError, match="needs the .torrent"):
        Peer(name="a", kind="libtorrent", role="seed", host="127.0.0.2", port=1,
             data_dir=tmp_path, magnet="magnet:?xt=urn:btih:" + "0" * 40)


def test_aria2_finds_transmission_seeder_through_the_p2pkit_tracker(netns, content, tmp_path):
    """Neither can be told of the other: transmission announces over HTTP (from its bind
    address), aria2 over UDP (from its DHT socket) and dials the address the tracker gives."""
    need_transmission()
    require_executable("aria2c")
    torrent, seed_dir, digests = content
    tracker = Tracker()
    seed = seeder("transmission", torrent, seed_dir, trackers=(tracker.http_url,))
    leech = leecher("aria2", tmp_path, torrent=torrent, trackers=(tracker.udp_url,))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, leech), tracker=tracker))
    check_download(result, torrent, leech, digests)
    announces = result.tracker_log.splitlines()
    assert any(line.startswith("http announce") and f"from {seed.address} " in line
               and "left=0" in line for line in announces), result.report()
    assert any(line.startswith("udp announce") and f"from {leech.address} " in line
               and "peers=1" in line for line in announces), result.report()


def test_p2pkit_slot_runs_the_given_command_and_waits_for_its_socket(netns, content, tmp_path):
    """Until p2pkit's peer exists, a libtorrent leecher stands in the p2pkit slot: its argv is
    run as given and it counts as ready once it listens on its address."""
    need_libtorrent()
    torrent, seed_dir, digests = content
    # Upload at 1 MB/s (limits apply to loopback peers only when told), so the stand-in
    # listens for about 2 s: long enough to be seen ready.
    seed = seeder("libtorrent", torrent, seed_dir, settings={
        "ignore_limits_on_local_network": False, "upload_rate_limit": 1_000_000})
    stand_in = leecher("libtorrent", tmp_path, torrent=torrent, dial=(seed.address,))
    ours = Peer(name="p2pkit-leech", kind="p2pkit", role="leech", host=stand_in.host,
                port=stand_in.port, data_dir=stand_in.data_dir,
                argv=tuple(libtorrent_command(stand_in, tmp_path, 60)))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, ours)))
    check_download(result, torrent, ours, digests)
    assert "p2pkit-leech ready" in result.script_log, result.report()
    assert result.peers[ours.name].seconds > 1.5, result.report()


def test_leecher_that_gets_no_data_is_stopped_at_the_timeout(netns, content, tmp_path):
    """Nobody dials aria2 and it cannot dial anyone: the scenario ends after ``timeout`` with
    124 and every process it started is stopped."""
    need_libtorrent()
    require_executable("aria2c")
    torrent, seed_dir, _ = content
    seed = seeder("libtorrent", torrent, seed_dir)
    leech = leecher("aria2", tmp_path, torrent=torrent)
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, leech), timeout=3))
    assert result.returncode == 124, result.report()
    assert all(p.stopped and p.exit_status is not None for p in result.peers.values()), \
        result.report()
    assert "leechers out of time" in result.script_log and not result.peers[leech.name].finished
