"""The pytest plugin: one item per case, selected with -k."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


#: The issue's line, word for word, and the same for the other protocols: each runs against
#: p2pkit's own server on the standard port, inside a private network namespace (so the port
#: is free and nothing leaves loopback).
AS_WRITTEN = {
    "dht": (["--p2p-target", "dht=127.0.0.1:6881", "-k", "token"],
            "test_case[dht/bep5/get_peers/token-returned]"),
    "bittorrent": (["--p2p-target", "bittorrent=127.0.0.1:6881", "--p2p-torrent", "{torrent}",
                    "-k", "handshake"], "test_case[bittorrent/bep3/handshake/info-hash-echo]"),
    "tracker-udp": (["--p2p-target", "tracker=udp://127.0.0.1:6969", "-k", "scrape"],
                    "test_case[tracker/bep15/scrape/counts]"),
    "tracker-http": (["--p2p-target", "tracker=http://127.0.0.1:6969/announce", "-k",
                      "bep48"], "test_case[tracker/bep48/scrape/counts]"),
    "gnutella": (["--p2p-target", "gnutella=127.0.0.1:6346", "-k", "handshake"],
                 "test_case[gnutella/handshake/"),
}
PORTS = {"dht": 6881, "bittorrent": 6881, "tracker": 6969, "gnutella": 6346}


def _entry_point_shim(where: Path) -> None:
    """The ``pytest11`` entry point pyproject.toml declares, as an installed distribution's
    metadata, for an environment whose p2pkit install predates it (a source checkout on
    PYTHONPATH, an editable install made before the entry point existed). pip writes the same
    file; CI installs p2pkit afresh and does not need this."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "entry-points"]["pytest11"]
    info = where / "p2pkit_pytest_plugin-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: p2pkit-pytest-plugin\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))


def _as_written(out: Path) -> None:
    """Inside the namespace: p2pkit's four servers on their standard ports, then the pytest
    command line of each protocol; writes ``{name: [returncode, stdout]}`` to ``out``."""
    import json
    from importlib.metadata import entry_points

    from tests.conformance.served_targets import served

    env = dict(os.environ)
    if "p2pkit.conformance.pytest_plugin" not in {e.name for e in entry_points(group="pytest11")}:
        _entry_point_shim(out.parent / "site")
        env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), str(out.parent / "site")])
    pytest_command = Path(sys.executable).with_name("pytest")
    command = [str(pytest_command)] if pytest_command.exists() else [sys.executable, "-m",
                                                                     "pytest"]
    seen = {}
    with served(out.parent / "served", ports=PORTS) as targets:
        for name, (args, _) in AS_WRITTEN.items():
            args = [a.replace("{torrent}", str(targets.torrent)) for a in args]
            done = subprocess.run([*command, "--pyargs", "p2pkit.conformance", *args, "-rA"],
                                  capture_output=True, text=True, timeout=120, env=env,
                                  cwd=out.parent)
            seen[name] = [done.returncode, done.stdout[-6000:] + done.stderr[-2000:]]
    out.write_text(json.dumps(seen))


def test_the_issue_command_line_as_written(tmp_path) -> None:
    """``pytest --pyargs p2pkit.conformance --p2p-target dht=127.0.0.1:6881 -k token`` with no
    ``-p``: the plugin comes from the entry point; the same for BitTorrent, both tracker
    transports and Gnutella."""
    import json

    from tests.interop.conftest import _can_unshare, require, run_in_netns

    require(_can_unshare(), "unshare -n and ip")
    out = tmp_path / "seen.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, "-c", "import sys; from pathlib import Path; "
                         "from tests.conformance.test_plugin import _as_written; "
                         "_as_written(Path(sys.argv[1]))", str(out)],
                        timeout=300, env=env, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(out.read_text())
    for name, (_, item) in AS_WRITTEN.items():
        code, text = seen[name]
        assert code == 0, (name, text)
        assert item in text and " passed" in text, (name, text)
        assert "failed" not in text and " error" not in text, (name, text)
