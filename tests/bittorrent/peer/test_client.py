"""TorrentClient over real TCP on 127.0.0.1: p2pkit peers only, two or three of them.

(Third-party clients and larger swarms run inside ``unshare -n``: tests/interop.)
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.tracker.core import TrackerConfig, TrackerCore
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.magnet import MagnetLink, PeerAddress
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.cli import main
from tests.bittorrent.album import write_album

LOCAL = ("127.0.0.1", 0)


@pytest.fixture
def album(tmp_path):
    files = write_album(tmp_path / "seed", {"one.bin": 200_001, "two/three.bin": 333_333,
                                            "four.txt": 4}, seed=3)
    return tmp_path / "seed", files


def same(root: Path, files: dict[str, bytes]) -> bool:
    return all((root / "album" / n).exists() and (root / "album" / n).read_bytes() == d
               for n, d in files.items())


async def seed_and_fetch(meta, seed_root, leech_root, *, magnet=None, timeout=20.0):
    seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False)
    await seeder.start()
    address = ("127.0.0.1", seeder.listen_port)
    if magnet is not None:  # btih for v1 and hybrid torrents, btmh for v2-only ones
        source = MagnetLink(info_hash_v1=meta.info_hash_v1,
                            info_hash_v2=None if meta.has_v1 else meta.info_hash_v2,
                            peers=(PeerAddress(host=address[0], port=address[1]),))
        leecher = TorrentClient(source, leech_root, listen=LOCAL, trackers=False)
    else:
        leecher = TorrentClient(meta, leech_root, listen=LOCAL, trackers=False,
                                peers=[address])
    await leecher.start()
    try:
        await asyncio.wait_for(leecher.wait_complete(), timeout)
    finally:
        await leecher.close()
        await seeder.close()
    return leecher


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_download_over_tcp(album, tmp_path, version):
    seed_root, files = album
    meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=65536,
                                         version=version))
    leecher = asyncio.run(seed_and_fetch(meta, seed_root, tmp_path / "leech"))
    assert leecher.session.complete and same(tmp_path / "leech", files)
    assert leecher.errors == [] and leecher.session.failed_pieces == 0


def test_magnet_over_tcp(album, tmp_path):
    seed_root, files = album
    meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=65536))
    leecher = asyncio.run(seed_and_fetch(meta, seed_root, tmp_path / "leech", magnet=True))
    assert leecher.metainfo.info_hash == meta.info_hash and same(tmp_path / "leech", files)


def test_peers_found_through_the_reference_tracker(album, tmp_path):
    seed_root, files = album

    async def scenario():
        server = TrackerServer(TrackerCore(TrackerConfig(interval=60),
                                           rng=random.Random(1)))
        await server.start(http_port=0, udp_port=0)
        meta = Metainfo.parse(create_torrent(
            seed_root / "album", piece_length=65536,
            trackers=[[f"udp://127.0.0.1:{server.udp_port}/announce"],
                      [f"http://127.0.0.1:{server.http_port}/announce"]]))
        seeder = TorrentClient(meta, seed_root, listen=LOCAL)
        await seeder.start()
        for _ in range(200):  # until the seeder's "started" announce reached the tracker
            counts = server.core.scrape((meta.info_hash,), now=0.0)[meta.info_hash]
            if counts.complete:
                break
            await asyncio.sleep(0.05)
        leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL)
        await leecher.start()
        try:
            await asyncio.wait_for(leecher.wait_complete(), 20)
        finally:
            await leecher.close()
            await seeder.close()
            await server.close()
        return leecher

    leecher = asyncio.run(scenario())
    assert leecher.session.complete and same(tmp_path / "leech", files)


def test_cli_download_and_exit_status(album, tmp_path, capsys):
    seed_root, files = album
    torrent = tmp_path / "album.torrent"
    torrent.write_bytes(create_torrent(seed_root / "album", piece_length=65536))
    meta = Metainfo.parse(torrent.read_bytes())

    async def serve_for(seconds: float) -> None:
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", 0), trackers=False)
        await seeder.start()
        port = seeder.listen_port
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(None, main, [
            "bt", "download", str(torrent), "-o", str(tmp_path / "cli"), "--listen",
            "127.0.0.1:0", "--peer", f"127.0.0.1:{port}", "--no-trackers", "--json",
            "--timeout", "20", "--request-queue", "4"])
        await seeder.close()
        return status

    assert asyncio.run(serve_for(20)) == 0
    out = capsys.readouterr().out
    assert '"complete": true' in out and same(tmp_path / "cli", files)
    # Nobody to download from: exit 1 after the timeout, files incomplete.
    status = main(["bt", "download", str(torrent), "-o", str(tmp_path / "none"), "--listen",
                   "127.0.0.1:0", "--no-trackers", "--timeout", "1", "-q"])
    assert status == 1 and "INCOMPLETE" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["bt", "download", "{bad}", "-o", "{tmp}"], "{bad}: "),
    (["bt", "download", "{good}", "-o", "{tmp}", "--peer", "nowhere"], "nowhere: expected"),
    (["bt", "seed", "{good}", "--data", "{seed}", "--listen", "1.2.3.4:x"], "1.2.3.4:x: port 'x' is not a number"),
])
def test_cli_bad_input_is_one_line(album, tmp_path, capsys, args, message):
    seed_root, _ = album
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"d4:infoi3ee")
    good = tmp_path / "good.torrent"
    good.write_bytes(create_torrent(seed_root / "album", piece_length=65536))
    fill = dict(bad=bad, good=good, tmp=tmp_path / "out", seed=seed_root)
    status = main([a.format(**fill) for a in args])
    err = capsys.readouterr().err
    assert status == 2 and message.format(**fill) in err and len(err.strip().splitlines()) == 1


def test_peers_found_through_the_dht(album, tmp_path):
    """BEP 5: seeder and leecher each run a DHT node joined through a third node; the leecher
    has no tracker and no peer address, and finds the seeder with get_peers."""
    from p2pkit.dht.server import DhtServer

    seed_root, files = album
    meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=65536))

    async def scenario():
        router = await DhtServer.start("127.0.0.1", 0, rng=random.Random(1))
        bootstrap = [router.address]
        seeder = TorrentClient(meta, seed_root, listen=LOCAL, trackers=False,
                               dht_bootstrap=bootstrap, rng=random.Random(2))
        await seeder.start()
        leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL, trackers=False,
                                dht_bootstrap=bootstrap, rng=random.Random(3))
        try:
            loop = asyncio.get_running_loop()
            for _ in range(200):  # until the seeder's announce_peer reached the router
                if router.node.peers.peers(meta.info_hash, loop.time()):
                    break
                await asyncio.sleep(0.05)
            await leecher.start()
            await asyncio.wait_for(leecher.wait_complete(), 30)
        finally:
            await leecher.close()
            await seeder.close()
            router.close()
        return leecher

    leecher = asyncio.run(scenario())
    assert leecher.session.complete and same(tmp_path / "leech", files)


def test_peer_not_listening_yet_is_dialled_again(album, tmp_path):
    """The seeder starts a second after the leecher dialled it: refused, then redialled
    (over TCP: a uTP dial would simply be answered by its SYN's retransmission)."""
    import socket

    seed_root, files = album
    meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=65536))
    with socket.socket() as probe:  # a free port for the seeder-to-be
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        leecher = TorrentClient(meta, tmp_path / "leech", listen=LOCAL, trackers=False,
                                peers=[("127.0.0.1", port)], transport="tcp")
        await leecher.start()
        await asyncio.sleep(1.2)
        seeder = TorrentClient(meta, seed_root, listen=("127.0.0.1", port), trackers=False,
                               transport="tcp")
        await seeder.start()
        try:
            await asyncio.wait_for(leecher.wait_complete(), 20)
        finally:
            await leecher.close()
            await seeder.close()
        return leecher

    leecher = asyncio.run(scenario())
    assert leecher.session.complete and same(tmp_path / "leech", files)
    assert leecher._redials[("127.0.0.1", port)] >= 1


def test_v2_only_magnet_fetches_piece_layers_with_hash_requests(album, tmp_path):
    """BEP 9 metadata of a v2-only torrent lacks the piece layers: the leecher asks the seeder
    for each file's layer (BEP 52 hash request), checks it against the pieces root, then
    downloads and verifies every piece with it."""
    seed_root, files = album
    meta = Metainfo.parse(create_torrent(seed_root / "album", piece_length=16384,
                                         version="v2"))
    assert len(meta.piece_layers) == 2  # one.bin and two/three.bin span several pieces
    leecher = asyncio.run(seed_and_fetch(meta, seed_root, tmp_path / "leech", magnet=True))
    assert leecher.session.complete and same(tmp_path / "leech", files)
    assert set(leecher.storage.piece_layers) == set(meta.piece_layers)
