"""p2pkit's own tracker (HTTP and UDP, in-process) passes every MUST case of the tracker
catalog; through the CLI too."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from tests.conformance.tracker_helpers import FAST, run_against_own_tracker

ROOT = Path(__file__).resolve().parents[2]

#: SHOULD cases p2pkit's tracker does not meet today (none: see docs/conformance.md).
KNOWN_SHOULD_DEVIATIONS: set[str] = set()


def test_every_must_case_passes() -> None:
    reports = run_against_own_tracker()
    results = [r for report in reports for r in report.results]
    assert len(results) == len(FAST) >= 35
    failing = {r.case.id: r.reason for r in results
               if r.verdict in ("fail", "target-died", "skipped", "unsupported")}
    assert failing == {}
    assert all(report.ok for report in reports)
    assert {r.case.id for r in results if r.verdict == "non-strict"} == KNOWN_SHOULD_DEVIATIONS


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_over_ipv6_peers_share_the_harness_address() -> None:
    """On [::1] one source address serves every peer of a case (they differ by port); only the
    cases about a second address are unsupported; peers come in peers6 and 18-byte records."""
    reports = run_against_own_tracker(host="::1")
    results = [r for report in reports for r in report.results]
    assert {r.case.id for r in results if r.verdict == "unsupported"} == {
        "tracker/bep15/connection-id/different", "tracker/bep15/connection-id/other-address"}
    assert {r.verdict for r in results} <= {"pass", "informational", "unsupported"}
    listed = next(r for r in results if r.case.id == "tracker/bep23/compact/peer-listed")
    assert "peers6.0.ip" in dict(listed.exchanges[-1].received_fields())


def _short_lifetime_case(wait: float):
    """The one-minute case with a short wait (the catalog's waits 58 s)."""
    (case,) = select(catalog("tracker"), ["tracker/bep15/connection-id/one-minute"])
    steps = list(case.steps)
    steps[1] = dataclasses.replace(steps[1], wait=wait)
    return dataclasses.replace(case, steps=tuple(steps))


def test_connection_id_lifetime_logic() -> None:
    """The lifetime case's steps pass with a short wait (the full minute is the CLI's)."""
    (report,) = run_against_own_tracker([_short_lifetime_case(0.3)], ("udp",))
    assert [r.verdict for r in report.results] == ["pass"]


def test_strict_and_transport_selection() -> None:
    cases = select(FAST, ["tracker/bep23", "tracker/bep15/connect/*"])
    http, udp = run_against_own_tracker(cases, strict=True)
    assert {r.case.id.split("/")[1] for r in http.results} == {"bep23"}
    assert {r.case.id.split("/")[2] for r in udp.results} == {"connect"}
    assert http.ok and udp.ok


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "p2pkit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture
def served_tracker():
    """``p2pkit bt tracker --listen 127.0.0.1:0`` as a subprocess: its two announce URLs."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "bt", "tracker", "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    try:
        urls = {}
        while len(urls) < 2:
            line = proc.stdout.readline()
            assert line, "the tracker exited"
            kind, _, url = line.strip().partition(": ")
            urls[kind.split()[0].lower()] = url
        yield urls
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_runs_against_served_tracker(served_tracker: dict, tmp_path) -> None:
    result = _cli("conformance", "run", "tracker", "--target", served_tracker["http"],
                  "--json", str(tmp_path / "h.json"), "--timeout", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "no MUST case fails" in result.stdout
    result = _cli("conformance", "run", "tracker", "--target", served_tracker["udp"],
                  "--cases", "tracker/bep15/connect/*", "--cases", "tracker/bep15/scrape/*",
                  "--cases", "tracker/robustness/udp-*", "--junit", str(tmp_path / "u.xml"),
                  "--timeout", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "tracker/bep15/scrape/order" in result.stdout
    assert (tmp_path / "u.xml").stat().st_size


def test_cli_bad_targets(served_tracker: dict) -> None:
    for target, words in ((served_tracker["udp"].replace("udp://", "http://"),
                           "no answer|refused|not HTTP|Connection"),
                          ("ftp://127.0.0.1:1/", "tracker URL"),
                          (served_tracker["http"].rsplit("/", 1)[0] + "/nothing",
                           "announce URL")):
        result = _cli("conformance", "run", "tracker", "--target", target, "--timeout", "1")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert any(w in lines[0] for w in words.split("|")), lines[0]
