"""p2pkit's uTP (BEP 29) against libtorrent 2.0 with TCP disabled, inside ``unshare -n``.

libtorrent runs with ``enable_outgoing_tcp = enable_incoming_tcp = False`` and uTP on (INTEROP.md,
"uTP only"); p2pkit with ``--transport utp``. Both directions: p2pkit downloads from a libtorrent
seeder it dials, and seeds to a libtorrent leecher it dials (and which may dial it back). Every
download is compared file by file with sha256; the download is captured (UDP) and p2pkit's own
dissector must find the pieces inside uTP, so the transfer provably went over uTP. Both plaintext
and MSE (libtorrent's default policy, which p2pkit prefers) ride on uTP.
"""

from __future__ import annotations

import pytest

from p2pkit.capture.dissect import dissect
from tests.interop.bittorrent_clients import (
    Capture,
    Peer,
    Scenario,
    make_content,
    p2pkit_download_argv,
    p2pkit_seed_argv,
    run_scenario,
)
from tests.interop.test_peer_interop import THEM, US, check, need

pytestmark = pytest.mark.interop

FILES = {"a.bin": 300_001, "b.bin": 900_007}
#: libtorrent: uTP only (libtorrent/settings_pack.hpp).
LT_UTP_ONLY = {"enable_outgoing_tcp": False, "enable_incoming_tcp": False,
               "enable_outgoing_utp": True, "enable_incoming_utp": True}
#: libtorrent's default encryption policy (pe_enabled = 1): MSE offered and accepted.
LT_MSE = {"in_enc_policy": 1, "out_enc_policy": 1}
UTP = ("--transport", "utp", "-v")


@pytest.fixture
def content(tmp_path):
    made = make_content(tmp_path, FILES, piece_length=32768)
    return made.torrent, made.seed_dir, made.digests


@pytest.mark.parametrize("encryption", ["plaintext", "prefer"])
def test_p2pkit_downloads_from_libtorrent_over_utp(netns, content, tmp_path, encryption):
    need("libtorrent")
    torrent, seed_dir, digests = content
    seed = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                data_dir=seed_dir, torrent=torrent,
                settings={**LT_UTP_ONLY, **(LT_MSE if encryption == "prefer" else {})})
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=tmp_path / "ours", ready="connected to",
                argv=p2pkit_download_argv(torrent, tmp_path / "ours", peers=(seed.address,),
                                          listen=f"{US[0]}:{US[1]}")
                + UTP + ("--encryption", encryption))
    pcap = tmp_path / "utp.pcap"
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, ours), timeout=40,
                                          capture=Capture(path=pcap, filter="udp")))
    check(result, torrent, tmp_path / "ours", digests, "p2pkit")
    records = list(dissect(pcap))
    utp = [r for r in records if r.protocol == "bt-utp"]
    assert {r.message for r in utp} >= {"st_syn", "st_state", "st_data"}
    if encryption == "plaintext":  # the peer wire inside uTP is readable: pieces came that way
        pieces = [r for r in records if r.protocol == "bittorrent" and r.message == "piece"]
        assert pieces and all(r.transport == "utp" for r in pieces)
        assert all(r.src.startswith(THEM[0]) for r in pieces)
    else:
        # The MSE stream, carried by uTP (tcpdump may miss a few datagrams of a loopback burst).
        data = sum(len(r.value.payload) for r in utp if r.src.startswith(THEM[0]))
        assert data >= 0.9 * sum(FILES.values())
        log = result.peers["p2pkit"].log
        assert "to 127.0.0.2:6881: MSE" in log and "MSE with" not in log, log


def test_libtorrent_downloads_from_p2pkit_over_utp(netns, content, tmp_path):
    need("libtorrent")
    torrent, seed_dir, digests = content
    leech = Peer(name="lt-leech", kind="libtorrent", role="leech", host=THEM[0], port=THEM[1],
                 data_dir=tmp_path / "theirs", torrent=torrent, settings=LT_UTP_ONLY)
    ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                data_dir=seed_dir, ready="connected to",
                argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}",
                                      peers=(leech.address,)) + UTP)
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(leech, ours), timeout=40))
    check(result, torrent, tmp_path / "theirs", digests, leech.name)


@pytest.mark.parametrize("encryption", ["prefer", "require"])
def test_transmission_downloads_from_p2pkit_over_utp(netns, content, tmp_path, encryption):
    """transmission 3.00 with ``utp-enabled``; p2pkit (``--transport utp``) dials it, since
    transmission never dials 127/8 peers, so the connection can only be uTP. ``prefer``:
    transmission (``encryption`` 0, clear preferred) drops the MSE exchange and p2pkit dials
    again in plaintext, over uTP; ``require``: transmission with ``encryption`` 2, RC4 over uTP."""
    need("transmission")
    torrent, seed_dir, digests = content
    leech = Peer(name="tr-leech", kind="transmission", role="leech", host=THEM[0],
                 port=THEM[1], data_dir=tmp_path / "theirs", torrent=torrent,
                 settings={"utp-enabled": True,
                           "encryption": 2 if encryption == "require" else 0})
    ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                data_dir=seed_dir, ready="connected to",
                argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}",
                                      peers=(leech.address,)) + UTP
                + ("--encryption", encryption))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(leech, ours), timeout=40))
    check(result, torrent, tmp_path / "theirs", digests, leech.name)
    log = result.peers["p2pkit"].log
    if encryption == "require":
        assert "to 127.0.0.2:6881: MSE rc4" in log, log
