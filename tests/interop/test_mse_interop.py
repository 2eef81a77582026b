"""p2pkit's Message Stream Encryption (MSE (Vuze wiki)) against libtorrent 2.0, aria2 1.36 and
transmission 3.00, each with encryption required, inside ``unshare -n`` on loopback.

* p2pkit (``--encryption require``) downloads from a libtorrent seeder with
  ``out_enc_policy = in_enc_policy = pe_forced`` and ``allowed_enc_level = pe_rc4``; the
  session is captured with tcpdump and dissected with p2pkit's own ``--keylog``: every
  peer-wire message comes out of the RC4 stream.
* libtorrent (forced RC4), aria2 (``--bt-require-crypto=true --bt-min-crypto-level=arc4``)
  and transmission (``"encryption": 2``, required) download from ``p2pkit bt seed
  --encryption require``, which dials them (aria2 and transmission cannot dial a peer on
  loopback). Every download is compared file by file with sha256.
"""

from __future__ import annotations

import pytest

from p2pkit.bittorrent.mse.keylog import parse_keylog
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

FILES = {"a.bin": 300_001, "b.bin": 700_003}
#: libtorrent: enc_policy pe_forced = 0, enc_level pe_rc4 = 2 (libtorrent/settings_pack.hpp).
LT_FORCED_RC4 = {"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2,
                 "prefer_rc4": True}
ENCRYPTED = ("--encryption", "require")


@pytest.fixture
def content(tmp_path):
    made = make_content(tmp_path, FILES, piece_length=32768)
    return made.torrent, made.seed_dir, made.digests


def test_p2pkit_downloads_from_libtorrent_over_rc4(netns, content, tmp_path):
    need("libtorrent")
    torrent, seed_dir, digests = content
    keylog = tmp_path / "keys.log"
    seed = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                data_dir=seed_dir, torrent=torrent,
                settings={**LT_FORCED_RC4, "ignore_limits_on_local_network": False,
                          "upload_rate_limit": 2_000_000})  # tcpdump keeps every segment
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=tmp_path / "ours",
                argv=p2pkit_download_argv(torrent, tmp_path / "ours", peers=(seed.address,),
                                          listen=f"{US[0]}:{US[1]}")
                + ENCRYPTED + ("--keylog", str(keylog), "-v"))
    pcap = tmp_path / "mse.pcap"
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, ours), timeout=60,
                                          capture=Capture(path=pcap, filter="tcp")))
    check(result, torrent, tmp_path / "ours", digests, "p2pkit")
    entries = keylog.read_text().split("\n")
    log = parse_keylog(keylog.read_text())
    assert len(log) == 1, entries
    assert entries[0].split()[5] == "rc4"
    records = list(dissect(pcap, secrets={"bittorrent": log}))
    bt = [r for r in records if r.protocol == "bittorrent"]
    names = [r.message for r in bt]
    assert names.count("mse_preamble") == 2 and names.count("handshake") == 2
    # every byte decrypts; the one allowance is the tail of a direction that the capture ends
    # in the middle of (tcpdump stopped under load before the last segments were written):
    # `truncated`, and nothing from that side after it
    for i, r in enumerate(bt):
        if r.message == "undecoded":
            assert r.fields.get("reason") == "truncated", r.fields
            assert not any(later.src == r.src for later in bt[i + 1:]), r.fields
    pieces = [r for r in bt if r.message == "piece"]
    assert sum(len(r.value.piece) for r in pieces) == sum(FILES.values())
    assert all(r.src.startswith(THEM[0]) for r in pieces)


@pytest.mark.parametrize("kind", ["libtorrent", "aria2", "transmission"])
def test_client_requiring_encryption_downloads_from_p2pkit(netns, content, tmp_path, kind):
    need(kind)
    torrent, seed_dir, digests = content
    options: dict = {}
    if kind == "libtorrent":
        options["settings"] = LT_FORCED_RC4
    elif kind == "aria2":
        options["extra_args"] = ("--bt-require-crypto=true", "--bt-min-crypto-level=arc4")
    else:
        options["settings"] = {"encryption": 2}  # "Require encryption"
    leech = Peer(name=f"{kind}-leech", kind=kind, role="leech", host=THEM[0], port=THEM[1],
                 data_dir=tmp_path / "theirs", torrent=torrent, **options)
    keylog = tmp_path / "keys.log"
    ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                data_dir=seed_dir,
                argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}",
                                      peers=(leech.address,))
                + ENCRYPTED + ("--keylog", str(keylog), "-v"))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(leech, ours), timeout=60))
    check(result, torrent, tmp_path / "theirs", digests, leech.name)
    methods = {line.split()[5] for line in keylog.read_text().splitlines()}
    assert methods == {"rc4"}, result.report()


#: libtorrent's own defaults: pe_enabled both ways, pe_both (what p2pkit's "prefer" meets in
#: the wild); and encryption off (pe_disabled), as the plaintext interop tests run it.
LT_ENABLED = {"out_enc_policy": 1, "in_enc_policy": 1, "allowed_enc_level": 3}
LT_DISABLED = {"out_enc_policy": 2, "in_enc_policy": 2}


@pytest.mark.parametrize("settings,expected", [
    (LT_FORCED_RC4, {"rc4"}),  # an MSE connection, told apart from plaintext by its bytes
    (LT_ENABLED, {"rc4", "plaintext"}),  # libtorrent tries MSE first; it selects the method
    (LT_DISABLED, set()),  # a plain BitTorrent handshake: no MSE, nothing logged
])
def test_libtorrent_dials_a_preferring_p2pkit_seeder(netns, content, tmp_path, settings,
                                                     expected):
    """Incoming connections: libtorrent dials ``p2pkit bt seed`` (default ``--encryption
    prefer``), which recognises MSE or plaintext by the first bytes."""
    need("libtorrent")
    torrent, seed_dir, digests = content
    keylog = tmp_path / "keys.log"
    ours = Peer(name="p2pkit", kind="p2pkit", role="seed", host=US[0], port=US[1],
                data_dir=seed_dir,
                argv=p2pkit_seed_argv(torrent, seed_dir, listen=f"{US[0]}:{US[1]}")
                + ("--keylog", str(keylog), "-v"))
    leech = Peer(name="lt-leech", kind="libtorrent", role="leech", host=THEM[0], port=THEM[1],
                 data_dir=tmp_path / "theirs", torrent=torrent, dial=(ours.address,),
                 settings=settings)
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(ours, leech), timeout=60))
    check(result, torrent, tmp_path / "theirs", digests, leech.name)
    lines = keylog.read_text().splitlines() if keylog.exists() else []
    methods = {line.split()[5] for line in lines}
    assert methods <= expected and bool(methods) == bool(expected), result.report()
    assert all(line.split()[1].startswith(THEM[0]) for line in lines)  # libtorrent initiated


def test_preferring_p2pkit_downloads_from_libtorrent_defaults(netns, content, tmp_path):
    """Outgoing ``prefer`` (the default) against libtorrent's default pe_enabled/pe_both."""
    need("libtorrent")
    torrent, seed_dir, digests = content
    keylog = tmp_path / "keys.log"
    seed = Peer(name="lt-seed", kind="libtorrent", role="seed", host=THEM[0], port=THEM[1],
                data_dir=seed_dir, torrent=torrent, settings=LT_ENABLED)
    ours = Peer(name="p2pkit", kind="p2pkit", role="leech", host=US[0], port=US[1],
                data_dir=tmp_path / "ours",
                argv=p2pkit_download_argv(torrent, tmp_path / "ours", peers=(seed.address,),
                                          listen=f"{US[0]}:{US[1]}")
                + ("--keylog", str(keylog), "-v"))
    result = run_scenario(netns, Scenario(work=tmp_path, peers=(seed, ours), timeout=60))
    check(result, torrent, tmp_path / "ours", digests, "p2pkit")
    lines = keylog.read_text().splitlines()
    assert len(lines) == 1 and lines[0].split()[1].startswith(US[0]), result.report()
    assert lines[0].split()[5] in ("rc4", "plaintext")
