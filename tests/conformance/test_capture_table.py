"""``conformance check`` over a set of captures: rows, sections, evidence, deduplication."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from p2pkit.conformance.capture_table import SECTIONS, capture_files, capture_rows, section_of

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests/data/captures"
TORRENTS = ROOT / "tests/data/torrents"


def _copy(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "captures"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CAPTURES / name, folder / name)
    return folder


def test_rows_per_implementation_with_section_verdicts(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "bt-07-p2pkit-seed-aria2.pcap", "dht-03-p2pkit-libtorrent-"
                   "bittorrent-dht.pcap", "tracker-01-opentracker-libtorrent-aria2.pcap",
                   "gnutella-02-p2pkit-servents.pcap")
    rows = {(r.capture, r.implementation): r for r in capture_rows([folder])}
    aria2 = rows[("bt-07-p2pkit-seed-aria2.pcap", "aria2/1.36.0")]
    assert aria2.verdicts == {"DHT": "", "tracker": "", "peer wire": "fail: bep6/have/only-first",
                              "Gnutella": "", "IPFS": ""}
    assert aria2.evidence == [("bep6/have/only-first", 75, "bitfield after have_all/have_none")]
    assert rows[("bt-07-p2pkit-seed-aria2.pcap", "p2pkit 0.1 (-PK0100-)")].verdicts[
        "peer wire"] == "pass"
    npm = rows[("dht-03-p2pkit-libtorrent-bittorrent-dht.pcap", "?")]
    assert npm.verdicts["DHT"] == "pass (SHOULD failed: krpc/version, bep42/ip-field)"
    own = rows[("dht-03-p2pkit-libtorrent-bittorrent-dht.pcap", "PK 0001")]
    assert own.endpoints == ["127.0.0.5:6881", "127.0.0.2:6881", "127.0.0.6:6881"]
    assert rows[("tracker-01-opentracker-libtorrent-aria2.pcap", "?")].verdicts["tracker"] \
        == "pass"
    servents = [r for (capture, _), r in rows.items()
                if capture == "gnutella-02-p2pkit-servents.pcap"]
    assert servents and all(r.endpoints and r.verdicts["Gnutella"] == "pass"
                            and r.verdicts["peer wire"] == "" for r in servents)


def test_same_bytes_judged_once_and_missing_roots_skipped(tmp_path: Path) -> None:
    first = _copy(tmp_path, "bt-06-p2pkit-leech-libtorrent.pcap")
    second = tmp_path / "elsewhere"
    second.mkdir()
    shutil.copy(CAPTURES / "bt-06-p2pkit-leech-libtorrent.pcap", second / "copy.pcap")
    files = capture_files([first, second, tmp_path / "not-there"])
    assert [(p.name, [c.name for c in copies]) for p, copies in files] == [
        ("bt-06-p2pkit-leech-libtorrent.pcap", ["copy.pcap"])]


def test_the_recorded_torrent_gives_the_shape_rules_their_torrent(tmp_path: Path) -> None:
    from p2pkit.conformance.capture_table import _torrents
    from p2pkit.conformance.offline import check_capture

    folder = _copy(tmp_path, "bt-04-libtorrent-utp-only.pcap")
    capture = folder / "bt-04-libtorrent-utp-only.pcap"
    assert _torrents(capture, []) == []
    [torrent] = _torrents(capture, [TORRENTS])
    assert torrent.piece_count == 32
    judged = check_capture(capture, torrents=[torrent])
    bounds = sum(e.tallies["bep3/request/index-bounds"].checked
                 for e in judged.endpoints.values() if "bep3/request/index-bounds" in e.tallies)
    assert bounds > 0
    from p2pkit.conformance.gnutella.offline import RULES as GNUTELLA_RULES

    assert {section_of(rule) for rule in ("bep3/request/index-bounds", "krpc/valid",
                                          "bep15/connect", next(iter(GNUTELLA_RULES)),
                                          "ipfs/yamux/window")} == set(SECTIONS)


def test_docs_directive_cells() -> None:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import p2pkit_captures

    rows = capture_rows([CAPTURES], [TORRENTS])
    cells = p2pkit_captures.verdict_rows(rows)
    assert len(cells) == len(rows)
    assert all(len(c) == len(p2pkit_captures.VERDICT_HEADER) for c in cells)
    assert ("bt-08-libtorrent-mse-rc4.pcap", "—") == cells[[r.capture for r in rows].index(
        "bt-08-libtorrent-mse-rc4.pcap")][:2]
    # the libp2p capture recorded with its key log: judged decrypted, every endpoint passes
    ipfs = [r for r in rows if r.capture == "ipfs-03-p2pkit-js-libp2p-keylog.pcap"]
    assert {r.implementation for r in ipfs} >= {"js-libp2p/3.3.11 node/22.23.5", "p2pkit/0.1.0"}
    assert all(r.verdicts["IPFS"] == "pass" for r in ipfs)
    evidence = p2pkit_captures.evidence_rows(rows)
    assert ("bt-07-p2pkit-seed-aria2.pcap", "aria2/1.36.0", "bep6/have/only-first", "75",
            "bitfield after have_all/have_none") in evidence
    # every failing row has its evidence; no passing row has any
    for row in rows:
        failed = any(v.startswith("fail") or "SHOULD" in v for v in row.verdicts.values())
        assert bool(row.evidence) == failed, row
