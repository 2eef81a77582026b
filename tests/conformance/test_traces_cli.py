"""``p2pkit conformance record|replay``: real captures, exit statuses, one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest

from p2pkit.cli import main
from p2pkit.conformance.trace_replay import shipped_traces
from tests.conformance.test_cli import served_node  # noqa: F401 (a fixture)
from tests.conformance.trace_helpers import CAPTURES

DHT02 = CAPTURES / "dht-02-bep44-put-get.pcap"


def _one_line_error(capsys, status: int, expected: str) -> None:
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected in err, err


def test_record_then_replay_against_a_served_node(tmp_path, capsys, served_node):  # noqa: F811
    out = tmp_path / "trace"
    assert main(["conformance", "record", str(DHT02), "--endpoint", "127.0.0.10:6881",
                 "--session", "1", "--software", "npm bittorrent-dht 11.0.12", "-o",
                 str(out)]) == 0
    assert "dht/trace/trace: 7 steps, 127.0.0.2:6881 → 127.0.0.10:6881" in \
        capsys.readouterr().out
    status = main(["conformance", "replay", str(out), "--target", served_node,
                   "--json", str(tmp_path / "r.json"), "--timeout", "1"])
    shown = capsys.readouterr().out
    assert status == 0, shown
    assert "dht/trace/trace" in shown
    doc = json.loads((tmp_path / "r.json").read_text())
    text = json.dumps(doc)
    assert "dht/trace/trace" in text and '"pass"' in text


def test_replay_shipped_traces_by_glob(capsys, served_node):  # noqa: F811
    assert main(["conformance", "replay", "dht/trace/*", "--target", served_node,
                 "--timeout", "1"]) == 0
    shown = capsys.readouterr().out
    assert "dht/trace/bittorrent-dht-bep44-put-get" in shown
    assert "dht/trace/libtorrent-bep44-put-get" in shown


def test_list_shows_the_shipped_traces(capsys):
    assert main(["conformance", "replay", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(shipped_traces()) >= 6
    assert any(line.startswith("gnutella/trace/gtk-gnutella-leaf ") for line in lines)


def test_missing_manifest_is_one_line(tmp_path, capsys):
    _one_line_error(capsys, main(["conformance", "replay", str(tmp_path), "--target",
                                  "127.0.0.1:9"]), "no manifest.json (not a trace directory)")


def test_manifest_naming_a_session_not_in_the_capture(tmp_path, capsys):
    trace = tmp_path / "t"
    shutil.copytree(shipped_traces()[0], trace)
    doc = json.loads((trace / "manifest.json").read_text())
    doc["session"]["server"] = "127.0.0.99:1"
    (trace / "manifest.json").write_text(json.dumps(doc))
    _one_line_error(capsys, main(["conformance", "replay", str(trace), "--target",
                                  "127.0.0.1:9"]), "no packet of the session")


def test_corrupt_pcap_in_a_trace(tmp_path, capsys):
    trace = tmp_path / "t"
    shutil.copytree(shipped_traces()[0], trace)
    (trace / "trace.pcap").write_bytes(b"\x00" * 64)
    _one_line_error(capsys, main(["conformance", "replay", str(trace), "--target",
                                  "127.0.0.1:9"]), "not a readable capture")


def test_corrupt_capture_to_record(tmp_path, capsys):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all" * 4)
    _one_line_error(capsys, main(["conformance", "record", str(bad), "--endpoint",
                                  "127.0.0.1:1", "-o", str(tmp_path / "t")]),
                    "not a readable capture")


def test_manifest_that_is_not_json(tmp_path, capsys):
    trace = tmp_path / "t"
    shutil.copytree(shipped_traces()[0], trace)
    (trace / "manifest.json").write_text("{nope")
    _one_line_error(capsys, main(["conformance", "replay", str(trace), "--target",
                                  "127.0.0.1:9"]), "not JSON")


@pytest.mark.parametrize(("args", "expected"), [
    (["record", str(DHT02), "--endpoint", "127.0.0.10:6881", "--session", "99"],
     "--session 99: 127.0.0.10:6881 has"),
    (["record", str(DHT02), "--endpoint", "10.9.9.9:1"], "no DHT, UDP tracker, BitTorrent"),
    (["record", str(DHT02)], "--endpoint: missing"),
    (["record"], "CAPTURE: missing"),
    (["record", "--proxy", "127.0.0.1:0"], "needs --to"),
    (["replay", "no-such-trace", "--target", "127.0.0.1:9"], "not a trace directory"),
    (["replay", "dht/trace/*"], "--target: missing"),
    (["replay", "dht/trace/*", "--target", "localhost"], "expected HOST:PORT"),
])
def test_bad_input_is_one_line_and_status_2(args, expected, tmp_path, capsys):
    if args[0] == "record":
        args = [*args, "-o", str(tmp_path / "out")]
    _one_line_error(capsys, main(["conformance", *args]), expected)


def test_unreachable_target_is_one_line(capsys):
    _one_line_error(capsys, main(["conformance", "replay", "tracker/trace/*", "--target",
                                  "127.0.0.1:9", "--timeout", "0.3"]), "--target")


def test_record_through_the_proxy_cli_then_replay(tmp_path, capsys, served_node):  # noqa: F811
    """``record --proxy --udp`` as a subprocess between a KRPC client (a plain socket sending
    the harness's ping) and a served node; the trace it writes replays against that node."""
    import os
    import socket
    import subprocess
    import sys

    from p2pkit.dht import krpc
    from tests.conformance.test_cli import ROOT

    out = tmp_path / "trace"
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pkit", "conformance", "record", "--proxy", "127.0.0.1:0",
         "--to", served_node, "--udp", "--duration", "2", "--software", "a test socket",
         "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    try:
        line = proc.stderr.readline()
        assert line.startswith("recording udp 127.0.0.1:"), line
        port = int(line.split()[2].rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(krpc.encode(krpc.query("ping", b"pp", id=bytes(range(20)))),
                     ("127.0.0.1", port))
            answer = krpc.decode_lenient(s.recv(2048)).message
            assert answer["t"] == b"pp" and answer["y"] == "r"
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "dht/trace/trace: 1 steps" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "trace.pcap"]
    assert main(["conformance", "replay", str(out), "--target", served_node]) == 0


def test_run_selects_shipped_datagram_traces_among_the_cases(capsys, served_node):  # noqa: F811
    assert main(["conformance", "run", "dht", "--list", "--cases", "trace/*"]) == 0
    listed = capsys.readouterr().out
    assert "dht/trace/libtorrent-bep44-put-get" in listed and "2 cases" in listed
    assert main(["conformance", "run", "dht", "--target", served_node, "--cases",
                 "dht/trace/*", "--cases", "dht/bep5/ping/response", "--timeout", "1"]) == 0
    shown = capsys.readouterr().out
    assert "dht/trace/bittorrent-dht-bep44-put-get" in shown and "dht/bep5/ping/response" in shown
    # without a pattern naming traces, the catalog stays the catalog
    assert main(["conformance", "run", "dht", "--list"]) == 0
    assert "trace" not in capsys.readouterr().out
