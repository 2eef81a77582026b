"""``conformance check`` on Gnutella captures: the live catalog's rules judge every servent of
five gtk-gnutella 1.2.3 servents, five p2pkit servents and the deflated links of a public
capture; a capture edited to break a rule is caught at the edited frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pkit.conformance.offline import check_capture
from tests.conformance.test_cli import CAPTURES, _cli

GTKG = CAPTURES / "gtkg123-plain-up2-3leaves.pcap"
P2PKIT = CAPTURES / "gnutella-02-p2pkit-servents.pcap"
NDPI = CAPTURES / "ndpi-gnutella.pcap"
SERVENTS = {"127.0.0.10:6346", "127.0.0.11:6347", "127.0.0.12:6348", "127.0.0.13:6349",
            "127.0.0.14:6350"}


def _tally(report, endpoint: str, rule: str):
    return report.endpoints[endpoint].tallies[rule]


def test_gtk_gnutella_servents() -> None:
    report = check_capture(GTKG)
    # each servent by the address its handshakes announce (gtk-gnutella's Node: header)
    assert set(report.endpoints) == SERVENTS
    assert all(e.implementation.startswith("gtk-gnutella/1.2.3")
               for e in report.endpoints.values())
    assert report.ok
    up = "127.0.0.10:6346"
    assert _tally(report, up, "gnutella/handshake/third-leg").checked >= 60
    assert _tally(report, up, "gnutella/ping/pong-guid").checked >= 20
    # the query from leaf 127.0.0.12 forwarded to leaf 127.0.0.11 and ultrapeer
    # 127.0.0.14 (frames 106, 108): hops judged; its TTL is not (dynamic querying:
    # an ultrapeer "ignores the TTL" of a leaf's query)
    assert _tally(report, up, "gnutella/routing/hops-increment").checked >= 5
    assert _tally(report, up, "gnutella/routing/hops-increment").failed == 0
    assert _tally(report, up, "gnutella/qrp/filter").checked == 3
    assert _tally(report, "127.0.0.12:6348", "gnutella/routing/duplicate").checked == 3


def test_p2pkit_servents() -> None:
    report = check_capture(P2PKIT)
    assert set(report.endpoints) == SERVENTS
    assert report.ok
    up = report.endpoints["127.0.0.10:6346"]
    assert up.implementation == "p2pkit/0.1"
    # two queries, three hits and a Push forwarded by the ultrapeer (frames 72 … 119)
    assert up.tallies["gnutella/routing/ttl-decrement"].checked == 9
    assert up.tallies["gnutella/routing/ttl-decrement"].failed == 0
    # the Byes at shutdown cross within a millisecond: none is judged "sent back"
    assert up.tallies["gnutella/bye/not-sent-back"].checked == 0


def _edited(tmp_path: Path, old: bytes, new: bytes) -> Path:
    """The capture with the first ``old`` bytes replaced by ``new``."""
    data = P2PKIT.read_bytes()
    assert old in data
    path = tmp_path / "edited.pcap"
    path.write_bytes(data.replace(old, new, 1))
    return path


def test_an_edited_capture_is_caught(tmp_path: Path) -> None:
    guid = bytes.fromhex("38ac6d0b6334c59bffc08c382d13b200")
    # frames 139 and 141: the ultrapeer forwards the query of frame 138 (TTL 7) with TTL 6;
    # make the first 7
    path = _edited(tmp_path, guid + b"\x80\x06\x01", guid + b"\x80\x07\x01")
    report = check_capture(path)
    tally = _tally(report, "127.0.0.10:6346", "gnutella/routing/ttl-decrement")
    assert tally.failures == [(139, "forwarded with ttl 7, came with 7")]
    assert not report.ok
    result = _cli("conformance", "check", "--json", str(path))
    assert result.returncode == 1
    [up] = [e for e in json.loads(result.stdout)["endpoints"]
            if e["endpoint"] == "127.0.0.10:6346"]
    [rule] = [r for r in up["rules"] if r["rule"] == "gnutella/routing/ttl-decrement"]
    assert rule["verdict"] == "fail"
    assert rule["failures"] == [{"frame": 139, "reason": "forwarded with ttl 7, came with 7"}]


def test_an_edited_pong_guid_is_caught(tmp_path: Path) -> None:
    report = check_capture(P2PKIT)
    assert _tally(report, "127.0.0.11:6347", "gnutella/ping/pong-guid").failed == 0
    # the first pong of leaf 127.0.0.11 (to its ultrapeer) gets a GUID no ping had
    from p2pkit.capture.dissect import Dissection
    pong = next(r for r in Dissection(P2PKIT) if r.protocol == "gnutella"
                and r.message == "pong" and r.src.startswith("127.0.0.11:"))
    header = pong.value.guid + bytes([0x01, pong.value.ttl, pong.value.hops])
    path = _edited(tmp_path, header, bytes(16) + header[16:])
    edited = check_capture(path)
    failures = _tally(edited, "127.0.0.11:6347", "gnutella/ping/pong-guid").failures
    assert failures and failures[0][0] == pong.frame


def test_ndpi_deflated_links() -> None:
    report = check_capture(NDPI)
    local = report.endpoints["10.0.2.15:28681"]  # gtk-gnutella 1.2.2 on Windows
    assert local.implementation.startswith("gtk-gnutella/1.2.2")
    # its links are deflated (compression §3), inflated by the dissector and judged
    assert local.messages > 400
    assert local.tallies["gnutella/valid"].checked == local.messages
    assert local.tallies["gnutella/qrp/ttl1-hops0"].checked == 9
    assert local.tallies["gnutella/compression/negotiated"].checked > 0
    assert local.tallies["gnutella/compression/negotiated"].failed == 0
    # G2 handshakes (Accept: application/x-gnutella2) are not judged as Gnutella 0.6
    assert local.tallies["gnutella/ultrapeer/x-ultrapeer"].failed == 0
    # remote gtk-gnutella ultrapeers, on deflated links: pongs and hits judged
    remote = report.endpoints["104.156.226.72:53258"]
    assert remote.tallies["gnutella/ping/pong-guid"].checked == 47
    assert remote.tallies["gnutella/routing/hit-back"].checked == 65
    # a deviation (docs/conformance-gnutella.md): three gtk-gnutella 1.2.1/1.2.2 ultrapeers
    # send the local leaf "periscope" queries its QRP table (as p2pkit rebuilds it) lacks
    qrp = _tally(report, "75.133.101.93:52367", "gnutella/qrp/filter")
    assert qrp.failures[0] == (3359, "query 'periscope' matches nothing in the leaf's table")
    assert not report.ok


@pytest.mark.parametrize("capture", [GTKG, P2PKIT], ids=["gtkg123", "p2pkit"])
def test_cli_check(capture: Path) -> None:
    result = _cli("conformance", "check", str(capture))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "5 endpoints, no MUST rule fails" in result.stdout
