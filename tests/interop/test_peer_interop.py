"""p2pkit's BitTorrent peer against libtorrent 2.0, aria2 1.36 and transmission 3.00.

Inside ``unshare -n`` on loopback (:mod:`tests.interop.bittorrent_clients`): a multi-file torrent
made by p2pkit (three files, ~2 MiB, 64 KiB pieces, every file boundary inside a piece) is
downloaded by ``p2pkit bt download`` from each client seeding it, and seeded by ``p2pkit bt
seed`` to each client downloading it; a magnet link's metadata comes from libtorrent (BEP 9);
v2 and hybrid torrents (BEP 52) go both ways with libtorrent (aria2 and transmission do not
support them). Every download is compared file by file with sha256.

Who dials whom follows the clients' limits (tests/interop/bittorrent_clients.py): aria2 cannot be
given a peer and transmission never dials 127/8, so p2pkit dials them in both roles.
"""

from __future__ import annotations

import os

import pytest

from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from tests.interop.bittorrent_clients import (
    LT_PYTHON,
    Capture,
    Peer,
    Scenario,
    content_digests,
    make_content,
    p2pkit_download_argv,
    p2pkit_seed_argv,
    run_scenario,
)
from tests.interop.conftest import require, require_executable
from tests.pcap_payloads import tcp_streams

pytestmark = pytest.mark.interop

PIECE_LENGTH = 65536
FILES = {"a.bin": 100_003, "b.bin": 1_500_007, "sub/c.bin": 497_142}
THEM = ("127.0.0.2", 6881)
US = ("127.0.0.3", 6882)
HANDSHAKE = b"\x13BitTorrent protocol"


def need(kind: str) -> None:
    if kind == "libtorrent":
        require(os.path.exists(LT_PYTHON) and os.system(
            f"{LT_PYTHON} -c 'import libtorrent' 2>/dev/null") == 0, "python3-libtorrent")
    elif kind == "aria2":
        require_executable("aria2c")
    elif kind == "transmission":
        require_executable("transmission-daemon")
        require_executable("transmission-remote")


@pytest.fixture
def content(tmp_path):
    made = make_content(tmp_path, FILES, piece_length=PIECE_LENGTH)
    return made.torrent, made.seed_dir, made.digests


def check(result, torrent, save_path, digests, name: str) -> None:
    assert result.returncode == 0, result.report()
    assert result.peers[name].finished, result.report()
    assert content_digests(torrent, save_path) == digests, result.report()


@pytest.mark.parametrize("kind", ["libtorrent", "aria2", "transmission"])
def test_p2pkit_downloads_from(netns, content, tmp_path, kind):
    need(kind)
    torrent, seed_dir, digests = content
    seed = Peer(name=f"{kind}-seed", kind=kind, role="seed", host=THEM[0], port=THEM[1],
                data_dir=seed_dir, torrent=torrent)
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=tmp_path / "ours",
                argv=p2pkit_download_argv(torrent, tmp_path / "ours", peers=(seed.address,),
                                          listen=f"{US[0]}:{US[1]}"))
    pcap = tmp_path / "session.pcap" if kind == "libtorrent" else None
    result = run_scenario(netns, Scenario(
        work=tmp_path, peers=(seed, ours), timeout=60, measure=True,
        capture=Capture(path=pcap, filter="tcp") if pcap else None))
    check(result, torrent, tmp_path / "ours", digests, "p2pkit")
    assert "complete" in result.peers["p2pkit"].log
    if pcap is not None:
        # Both sides of the recorded connection start with a plaintext handshake and ours
        # carries requests. (tcpdump may drop segments of a loopback burst, so the capture's
        # completeness is not asserted; the sha256 comparison above is the proof.)
        streams = tcp_streams(str(pcap))
        # (connections libtorrent answered: p2pkit first tries MSE, which this plaintext-only
        # libtorrent drops, then dials again in plaintext)
        ours_out = [d for (src, dst), d in streams.items()
                    if src[0] == US[0] and (dst, src) in streams]
        theirs = [d for (src, dst), d in streams.items() if src[0] == THEM[0]]
        assert ours_out and theirs and all(d.startswith(HANDSHAKE) for d in ours_out + theirs)
        assert b"\x00\x00\x00\x0d\x06" in ours_out[0]  # a request (BEP 3: id 6, length 13)


@pytest.mark.parametrize("kind", ["libtorrent", "aria2", "transmission"])
def test_p2pkit_seeds_to(netns, content, tmp_path, kind):
    """p2pkit seeds; it dials the leecher (aria2 and transmission cannot dial it on loopback;
    libtorrent is dialled the same way for symmetry)."""
    need(kind)
    torrent, seed_dir, digests = content
    leech = Peer(name=f"{kind}-leech", kind=kind, role="leech", host=THEM[0], port=THEM[1],
                 data_dir=tmp_path / "theirs", torrent=torrent)
    ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                data_dir=seed_dir,
                argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}",
                                      peers=(leech.address,)) + ("-v",))  # logs closes
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(leech, ours), timeout=60))
    check(result, torrent, tmp_path / "theirs", digests, leech.name)


def test_p2pkit_fetches_magnet_metadata_from_libtorrent(netns, content, tmp_path):
    """BEP 9: only the info-hash and ``x.pe``; the info dictionary comes over ut_metadata."""
    need("libtorrent")
    torrent, seed_dir, digests = content
    meta = Metainfo.parse(torrent.read_bytes())
    seed = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                data_dir=seed_dir, torrent=torrent)
    magnet = MagnetLink.from_metainfo(meta).to_uri() + f"&x.pe={seed.address}"
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=tmp_path / "ours",
                argv=p2pkit_download_argv(magnet, tmp_path / "ours",
                                          listen=f"{US[0]}:{US[1]}"))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, ours), timeout=60))
    check(result, torrent, tmp_path / "ours", digests, "p2pkit")


@pytest.mark.parametrize("version", ["v2", "hybrid"])
@pytest.mark.parametrize("direction", ["download", "seed"])
def test_v2_and_hybrid_with_libtorrent(netns, content, tmp_path, version, direction):
    """BEP 52: merkle-verified pieces; a hybrid's libtorrent peer answers our v1 handshake with
    the v2 info-hash ("upgrade"), and libtorrent asks for a v2 file's last piece padded."""
    need("libtorrent")
    _, seed_dir, digests = content
    torrent = tmp_path / f"{version}.torrent"
    torrent.write_bytes(create_torrent(seed_dir / "set", piece_length=PIECE_LENGTH,
                                       version=version))
    if direction == "download":
        other = Peer(name="lt", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                     data_dir=seed_dir, torrent=torrent)
        ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                    data_dir=tmp_path / "out",
                    argv=p2pkit_download_argv(torrent, tmp_path / "out",
                                              peers=(other.address,),
                                              listen=f"{US[0]}:{US[1]}"))
        peers, waiting = (other, ours), "p2pkit"
    else:
        other = Peer(name="lt", kind="libtorrent", role="leech", host=THEM[0], port=THEM[1],
                     data_dir=tmp_path / "out", torrent=torrent)
        ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                    data_dir=seed_dir,
                    argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}",
                                          peers=(other.address,)))
        peers, waiting = (other, ours), "lt"
    result = run_scenario(netns, Scenario(work=tmp_path, peers=peers, timeout=60))
    check(result, torrent, tmp_path / "out", digests, waiting)


@pytest.mark.parametrize("direction", ["download", "seed"])
def test_v2_magnet_piece_layers_with_libtorrent(netns, content, tmp_path, direction):
    """BEP 9 + BEP 52: from a ``btmh`` magnet only, the downloader gets the info dictionary
    over ut_metadata and each file's piece layer with a hash request; p2pkit asks libtorrent,
    and answers libtorrent's requests from the .torrent's piece layers."""
    need("libtorrent")
    _, seed_dir, digests = content
    torrent = tmp_path / "v2.torrent"
    torrent.write_bytes(create_torrent(seed_dir / "set", piece_length=PIECE_LENGTH,
                                       version="v2"))
    meta = Metainfo.parse(torrent.read_bytes())
    magnet = f"magnet:?xt=urn:btmh:1220{meta.info_hash_v2.hex()}"
    if direction == "download":
        other = Peer(name="lt", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                     data_dir=seed_dir, torrent=torrent)
        ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                    data_dir=tmp_path / "out",
                    argv=p2pkit_download_argv(f"{magnet}&x.pe={other.address}",
                                              tmp_path / "out", listen=f"{US[0]}:{US[1]}"))
        peers, waiting = (other, ours), "p2pkit"
    else:
        ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                    data_dir=seed_dir,
                    argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}"))
        other = Peer(name="lt", kind="libtorrent", role="leech", host=THEM[0], port=THEM[1],
                     data_dir=tmp_path / "out", magnet=magnet, dial=(ours.address,))
        peers, waiting = (ours, other), "lt"
    result = run_scenario(netns, Scenario(work=tmp_path, peers=peers, timeout=60))
    check(result, torrent, tmp_path / "out", digests, waiting)
