"""``p2pkit conformance run gnutella``: the listing, a run against ``p2pkit gnutella serve``,
one-line errors for bad targets, and the pytest plugin's ``--p2p-target gnutella=HOST:PORT``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from tests.conformance.test_cli import ROOT, _cli, _one_line_error


@pytest.fixture(scope="module")
def served_ultrapeer():
    """``p2pkit gnutella serve --ultrapeer`` on 127.0.0.1, as a subprocess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "gnutella", "serve",
                             "--ultrapeer", "--listen", "127.0.0.1:0", "--duration", "180"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stderr.readline()  # "ultrapeer on 127.0.0.1:PORT, sharing 0 files"
        assert line.startswith("ultrapeer on 127.0.0.1:"), line
        yield line.split()[2].rstrip(",")
    finally:
        proc.terminate()
        proc.wait(10)


def test_list() -> None:
    result = _cli("conformance", "run", "gnutella", "--list")
    assert result.returncode == 0
    assert "gnutella/routing/hit-reverse-path-only" in result.stdout
    assert int(result.stdout.strip().splitlines()[-1].split()[0]) >= 40


def test_run_against_served_ultrapeer(served_ultrapeer: str, tmp_path) -> None:
    result = _cli("conformance", "run", "gnutella", "--target", served_ultrapeer,
                  "--cases", "gnutella/routing", "--cases", "gnutella/qrp",
                  "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "no MUST case fails" in result.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["summary"]["fail"] == 0 and doc["summary"]["pass"] >= 18


def test_strict_run_fails_on_a_should(served_ultrapeer: str) -> None:
    result = _cli("conformance", "run", "gnutella", "--target", served_ultrapeer, "--strict",
                  "--cases", "gnutella/handshake/0.4-greeting")
    assert result.returncode == 1
    assert "gnutella/handshake/0.4-greeting" in result.stdout


def test_unreachable_target(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        err = _one_line_error(capsys, "conformance", "run", "gnutella", "--target",
                              f"127.0.0.1:{port}", "--timeout", "0.5")
    assert "cannot connect" in err


def _tcp_server(answer: bytes | None):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(4096)
            if answer is not None:
                conn.sendall(answer)
            threading.Timer(2.0, conn.close).start()
    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.mark.parametrize(("answer", "expected"), [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "another protocol?"),
    (None, "no gnutella answer within"),
], ids=["http", "silent"])
def test_target_that_is_not_a_servent(capsys, answer, expected) -> None:
    server = _tcp_server(answer)
    try:
        port = server.getsockname()[1]
        err = _one_line_error(capsys, "conformance", "run", "gnutella", "--target",
                              f"127.0.0.1:{port}", "--timeout", "0.5")
    finally:
        server.close()
    assert expected in err


def test_pytest_plugin_target(served_ultrapeer: str, tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin", "--pyargs",
         "p2pkit.conformance", "--p2p-target", f"gnutella={served_ultrapeer}", "-k",
         "duplicate", "-p", "no:cacheprovider", "-q", "-rA"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_case[gnutella/routing/duplicate-dropped]" in result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout
