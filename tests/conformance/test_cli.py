"""``p2pkit conformance run|check``: exit statuses, one-line errors, real captures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from p2pkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests" / "data" / "captures"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "p2pkit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture
def served_node():
    """``p2pkit dht serve`` on 127.0.0.1, no bootstrap, as a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "dht", "serve", "--listen",
                             "127.0.0.1:0", "--duration", "120", "--json"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        doc = json.loads(line)
        yield f"127.0.0.1:{doc['port']}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_full_run_against_served_node(served_node: str, tmp_path) -> None:
    started = time.monotonic()
    result = _cli("conformance", "run", "dht", "--target", served_node,
                  "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json"),
                  "--html", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "no MUST case fails" in result.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["fail"] == 0 and doc["summary"]["total"] >= 60
    assert (tmp_path / "j.xml").stat().st_size and (tmp_path / "r.html").stat().st_size
    assert time.monotonic() - started < 120


def test_strict_run_passes(served_node: str) -> None:
    """p2pkit's node meets the BEP 44 SHOULDs too (``nodes6``, ``k``/``sig`` omitted)."""
    result = _cli("conformance", "run", "dht", "--target", served_node, "--strict",
                  "--cases", "dht/bep44/get/*")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "dht/bep44/get/nodes6" in result.stdout


def test_list() -> None:
    result = _cli("conformance", "run", "dht", "--list", "--cases", "*token*")
    assert result.returncode == 0
    assert "dht/bep5/get_peers/token-returned" in result.stdout


def _one_line_error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_target_address(capsys) -> None:
    assert "expected HOST:PORT" in _one_line_error(
        capsys, "conformance", "run", "dht", "--target", "127.0.0.1")
    assert "missing" in _one_line_error(capsys, "conformance", "run", "dht")


def test_unreachable_target(capsys) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = _one_line_error(capsys, "conformance", "run", "dht", "--target",
                          f"127.0.0.1:{port}", "--timeout", "0.5")
    assert "unreachable" in err or "no answer" in err


def _udp_server(answer: bytes | None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                _, addr = sock.recvfrom(2048)
            except OSError:
                continue
            if answer is not None:
                sock.sendto(answer, addr)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, stop, thread


@pytest.mark.parametrize(("answer", "expected"), [
    (b"GNUTELLA CONNECT/0.6\r\n\r\n", "not KRPC"),
    (None, "no answer to a KRPC ping"),
])
def test_target_that_talks_another_protocol_or_nothing(capsys, answer, expected) -> None:
    sock, stop, thread = _udp_server(answer)
    try:
        err = _one_line_error(capsys, "conformance", "run", "dht", "--target",
                              f"127.0.0.1:{sock.getsockname()[1]}", "--timeout", "0.5")
        assert expected in err
    finally:
        stop.set()
        thread.join(2)
        sock.close()


@pytest.mark.parametrize("name", ["dht-02-bep44-put-get.pcap",
                                  "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"])
def test_check_captures(name: str) -> None:
    result = _cli("conformance", "check", str(CAPTURES / name), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and len(doc["endpoints"]) >= 5
    # the npm bittorrent-dht nodes send no "v" and no BEP 42 "ip" (SHOULDs)
    bad = {e["endpoint"] for e in doc["endpoints"]
           for r in e["rules"] if r["rule"] == "krpc/version" and r["failed"]}
    assert bad


def test_check_one_endpoint_text() -> None:
    result = _cli("conformance", "check", str(CAPTURES / "dht-02-bep44-put-get.pcap"),
                  "--endpoint", "127.0.0.10:6881")
    assert result.returncode == 0
    assert "127.0.0.10:6881 (LT 0208)" in result.stdout
    assert "127.0.0.2:6881" not in result.stdout


def test_check_corrupt_or_missing_capture(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    _one_line_error(capsys, "conformance", "check", str(bad))
    _one_line_error(capsys, "conformance", "check", str(tmp_path / "missing.pcap"))
