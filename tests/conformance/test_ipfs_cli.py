"""``p2pkit conformance run ipfs``: the listing, a run against ``p2pkit ipfs serve`` (a
subprocess serving a CAR), its JSON report, and one-line errors for bad targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from p2pkit.ipfs.car import write_car
from p2pkit.ipfs.cid import Cid
from tests.conformance.test_cli import ROOT, _cli, _one_line_error

BLOCK = b"served over bitswap for the conformance CLI\n" * 20


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``p2pkit ipfs serve`` on 127.0.0.1 (any port) with one block; (multiaddr, CID)."""
    cid = Cid.of(BLOCK)
    car = tmp_path_factory.mktemp("car") / "one.car"
    car.write_bytes(write_car([cid], [(cid, BLOCK)]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "ipfs", "serve", "--listen",
                             "/ip4/127.0.0.1/tcp/0", "--car", str(car), "--json",
                             "--duration", "120"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        event = json.loads(proc.stdout.readline())
        assert event["event"] == "listening", event
        yield event["address"], str(cid)
    finally:
        proc.terminate()
        proc.wait(10)


def test_list() -> None:
    result = _cli("conformance", "run", "ipfs", "--list")
    assert result.returncode == 0
    assert "ipfs/noise/bad-signature" in result.stdout
    assert int(result.stdout.strip().splitlines()[-1].split()[0]) >= 30


def test_run_against_served_node(served, tmp_path) -> None:
    address, cid = served
    report = tmp_path / "report.json"
    result = _cli("conformance", "run", "ipfs", "--target", address, "--cid", cid,
                  "--timeout", "1.5", "--json", str(report), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "no MUST case fails" in result.stdout
    doc = json.loads(report.read_text())
    assert doc["summary"]["fail"] == 0 and doc["summary"]["target-died"] == 0
    assert doc["summary"]["pass"] >= 60 and doc["summary"]["unsupported"] == 0


def test_host_port_target_and_case_selection(served) -> None:
    address, _ = served
    port = address.split("/tcp/")[1].split("/")[0]
    result = _cli("conformance", "run", "ipfs", "--target", f"127.0.0.1:{port}",
                  "--cases", "ipfs/multistream", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ipfs/multistream/na-unknown" in result.stdout


def test_pytest_plugin(served, tmp_path) -> None:
    """``pytest --pyargs p2pkit.conformance --p2p-target ipfs=MULTIADDR``: one case a test."""
    address, _ = served
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin", "--pyargs",
         "p2pkit.conformance", "--p2p-target", f"ipfs={address}", "-k", "noise",
         "-p", "no:cacheprovider", "-q", "-rA"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_case[ipfs/noise/bad-signature]" in result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_bad_targets(capsys) -> None:
    assert "multiaddr" in _one_line_error(capsys, "conformance", "run", "ipfs", "--target",
                                          "/ip4/127.0.0.1/udp/5")
    assert "--cid" in _one_line_error(capsys, "conformance", "run", "ipfs", "--target",
                                      "127.0.0.1:1", "--cid", "not-a-cid")
    assert "no libp2p session" in _one_line_error(capsys, "conformance", "run", "ipfs",
                                                  "--target", "127.0.0.1:1",
                                                  "--timeout", "0.5")
