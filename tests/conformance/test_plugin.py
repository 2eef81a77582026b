"""The pytest plugin: one item per case, selected with -k."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conformance.test_cli import ROOT, served_node  # noqa: F401  (fixture)


def test_pyargs_run_with_k(served_node: str, tmp_path) -> None:  # noqa: F811
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin", "--pyargs",
         "p2pkit.conformance", "--p2p-target", f"dht={served_node}", "-k", "token",
         "-p", "no:cacheprovider", "-q", "-rA"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_case[dht/bep5/get_peers/token-returned]" in result.stdout
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_plugin_reports_a_failing_case(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin", "--pyargs",
         "p2pkit.conformance", "--p2p-target", "dht=127.0.0.1:9", "--p2p-timeout", "0.3",
         "-k", "t-echo-1-byte", "-p", "no:cacheprovider", "-q"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "127.0.0.1:9" in result.stdout


def test_pyargs_tracker_url(tmp_path) -> None:
    """``--p2p-target tracker=URL`` runs the cases of the URL's transport."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "bt", "tracker", "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    try:
        http = proc.stdout.readline().strip().partition(": ")[2]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "p2pkit.conformance.pytest_plugin",
             "--pyargs", "p2pkit.conformance", "--p2p-target", f"tracker={http}", "-k",
             "bep48", "-p", "no:cacheprovider", "-q", "-rA"],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    finally:
        proc.terminate()
        proc.wait(10)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "test_case[tracker/bep48/scrape/counts]" in result.stdout
    assert "bep15" not in result.stdout and "failed" not in result.stdout
