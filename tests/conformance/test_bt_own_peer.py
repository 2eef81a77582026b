"""p2pkit's own seeder against the BitTorrent peer-wire catalog, in-process and through the
CLI (``p2pkit bt seed`` in a subprocess), for v1, v2 and hybrid torrents."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from tests.conformance.bt_helpers import run_against_own_seeder, write_torrent

#: MUST cases p2pkit's seeder does not meet: none. (Two did until issue 11's fixes: an unknown
#: ut_metadata msg_type closed the connection, and a base-layer-0 hash request after a served
#: block was rejected; both were the peer's faults, see docs/conformance.md.)
KNOWN_MUST_DEVIATIONS: set[str] = set()
KNOWN_V2_DEVIATIONS: set[str] = set()
#: What a seed of one connection cannot show: no DHT bit (no PORT), no allowed_fast for a
#: complete seed, no PEX with a single peer, no piece it did not announce.
UNSUPPORTED = {
    "bittorrent/bep5/handshake/port-message",
    "bittorrent/bep6/allowed-fast/served-while-choked",
    "bittorrent/bep3/piece/announced-only",
    *(c.id for c in catalog("bittorrent") if c.id.startswith("bittorrent/bep11/message/")
      or c.id == "bittorrent/bep11/rate/once-a-minute"),
}


def _failing(report) -> dict[str, str]:
    return {r.case.id: r.reason for r in report.results
            if r.verdict in ("fail", "target-died", "skipped")}


#: Where the torrent's version changes what is asked (the whole catalog runs on hybrid).
BY_VERSION = ["bittorrent/bep3/request", "bittorrent/bep3/piece", "bittorrent/bep3/bitfield",
              "bittorrent/bep9", "bittorrent/bep52"]


@pytest.mark.parametrize("version", ["hybrid", "v1", "v2"])
def test_every_must_case_passes(tmp_path: Path, version: str) -> None:
    cases = catalog("bittorrent") if version == "hybrid" else select(catalog("bittorrent"),
                                                                      BY_VERSION)
    report = run_against_own_seeder(tmp_path, cases, version=version)
    ids = {c.id for c in cases}
    known = (KNOWN_MUST_DEVIATIONS | (KNOWN_V2_DEVIATIONS if version != "v1" else set())) & ids
    assert set(_failing(report)) == known, _failing(report)
    assert not any(r.verdict == "non-strict" for r in report.results)
    unsupported = {r.case.id for r in report.results if r.verdict == "unsupported"}
    other = {"v1": "v2", "v2": "v1"}.get(version)  # BEP 52 needs v2 files, SHA-1 v1 pieces
    assert unsupported == (UNSUPPORTED | {c.id for c in cases if other in c.tags}) & ids


def test_strict_and_selection(tmp_path: Path) -> None:
    cases = select(catalog("bittorrent"), ["bittorrent/bep6/reject"])
    report = run_against_own_seeder(tmp_path, cases, strict=True)
    assert {r.verdict for r in report.results} == {"pass"}
    assert report.ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def bt_seed(tmp_path: Path):
    """``p2pkit bt seed`` of the v1 test torrent in a subprocess: (HOST:PORT, torrent path)."""
    with _bt_seed(tmp_path, "v1") as seed:
        yield seed


@contextlib.contextmanager
def _bt_seed(tmp_path: Path, version: str):
    torrent = tmp_path / "album.torrent"
    torrent.write_bytes(write_torrent(tmp_path / "seed", version))
    port = _free_port()
    seed = subprocess.Popen(
        [sys.executable, "-m", "p2pkit", "bt", "seed", str(torrent), "--data",
         str(tmp_path / "seed"), "--listen", f"127.0.0.1:{port}", "--no-trackers", "-q",
         "--duration", "90"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", torrent
    finally:
        seed.terminate()
        seed.wait(10)


ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def test_cli_against_bt_seed_subprocess(bt_seed, tmp_path: Path) -> None:
    target, torrent = bt_seed
    out = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "p2pkit", "conformance", "run", "bittorrent", "--target",
         target, "--torrent", str(torrent), "--cases", "bittorrent/bep3",
         "--cases", "bittorrent/bep6", "--cases", "bittorrent/bep9", "--json", str(out)],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    document = json.loads(out.read_text())
    verdicts = {c["id"]: c["verdict"] for c in document["cases"]}
    assert len(verdicts) >= 70
    assert "fail" not in verdicts.values() and "target-died" not in verdicts.values()
    assert verdicts["bittorrent/bep9/request/unknown-msg-type-ignored"] == "pass"


def test_cli_bep52_against_v2_bt_seed(tmp_path: Path) -> None:
    """The BEP 52 section through the CLI against ``p2pkit bt seed`` of a v2 torrent: the
    leaf-hash request after a served block is answered (it was rejected before issue 11)."""
    with _bt_seed(tmp_path, "v2") as (target, torrent):
        out = tmp_path / "report.json"
        run = subprocess.run(
            [sys.executable, "-m", "p2pkit", "conformance", "run", "bittorrent", "--target",
             target, "--torrent", str(torrent), "--cases", "bittorrent/bep52", "--json",
             str(out)], env=ENV, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    verdicts = {c["id"]: c["verdict"] for c in json.loads(out.read_text())["cases"]}
    assert verdicts["bittorrent/bep52/hash-request/leaf-after-piece"] == "pass"
    assert set(verdicts.values()) <= {"pass", "informational"}, verdicts


def test_pytest_plugin_against_bt_seed(bt_seed, tmp_path: Path) -> None:
    target, torrent = bt_seed
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin", "--pyargs",
         "p2pkit.conformance", "--p2p-target", f"bittorrent={target}", "--p2p-torrent",
         str(torrent), "-k", "keep-alive or unknown-msg-type", "-p", "no:cacheprovider", "-q",
         "-rA"], capture_output=True, text=True, timeout=120, env=ENV, cwd=tmp_path)
    assert "PASSED test_conformance.py::test_case[bittorrent/bep3/keep-alive/ignored]" in \
        result.stdout, result.stdout[-3000:]
    # BEP 9: the unknown msg_type is ignored (this item failed before the peer was fixed)
    assert "PASSED test_conformance.py::test_case[bittorrent/bep9/request/unknown-msg-type-" \
        "ignored]" in result.stdout, result.stdout[-3000:]
    assert result.returncode == 0
