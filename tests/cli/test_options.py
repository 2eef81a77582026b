"""The one HOST:PORT parser, the error boundary, and ``-`` for standard input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from p2pkit.cli import cli
from p2pkit.cli.errors import BadInput, Command, read_input, run
from p2pkit.cli.options import HostPort, parse_host_port

ROOT = Path(__file__).parents[2]
SAMPLE_PCAP = ROOT / "p2pkit" / "data" / "sample-bittorrent-utp-dht.pcap"
SAMPLE_TORRENT = ROOT / "p2pkit" / "data" / "libtorrent-v2.torrent"


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:6881", ("127.0.0.1", 6881)),
    ("localhost:1", ("localhost", 1)),
    ("router.bittorrent.example:65535", ("router.bittorrent.example", 65535)),
    ("[::1]:6881", ("::1", 6881)),
    ("[2001:db8::2]:80", ("2001:db8::2", 80)),
    (" 10.0.0.1:80 ", ("10.0.0.1", 80)),
])
def test_host_port_accepts(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("127.0.0.1", "expected HOST:PORT"),
    ("127.0.0.1:0", "port 0 is out of range (1-65535)"),
    ("127.0.0.1:65536", "port 65536 is out of range"),
    ("127.0.0.1:-1", "not a number"),
    ("127.0.0.1:http", "not a number"),
    ("::1:6881", "in brackets"),
    ("[::1:6881", "unclosed '['"),
    ("[::1]6881", "expected :PORT"),
    ("[not-v6]:80", "is not an IPv6 address"),
    ("300.1.1.1:80", "is not an IPv4 address"),
    ("bad host:80", "is not a host name"),
    (":6881", "the host is missing"),
])
def test_host_port_rejects_with_a_reason(text, reason):
    with pytest.raises(ValueError, match=None) as info:
        parse_host_port(text)
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_port_zero_and_default_host_only_where_asked():
    assert parse_host_port("127.0.0.1:0", allow_zero=True) == ("127.0.0.1", 0)
    assert parse_host_port(":0", allow_zero=True, default_host="0.0.0.0") == ("0.0.0.0", 0)
    with pytest.raises(click.BadParameter, match="port 0 is out of range"):
        HostPort().convert("127.0.0.1:0", None, None)


def _command(error: BaseException) -> click.Command:
    @click.command(cls=Command)
    def boom() -> None:
        """Raise."""
        raise error

    return boom


@pytest.mark.parametrize(("error", "status", "line"), [
    (OSError(98, "Address already in use"), 2, "p2pkit: address already in use"),
    (FileNotFoundError(2, "No such file or directory", "x.torrent"), 2,
     "p2pkit: x.torrent: No such file or directory"),
    (KeyboardInterrupt(), 130, "p2pkit: interrupted"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), 2,
     "p2pkit: unknown host (Name or service not known)"),
    (ZeroDivisionError("a bug\non two lines"), 70,
     "p2pkit: internal error: ZeroDivisionError: a bug on two lines"),
])
def test_boundary_maps_every_failure_to_one_line(error, status, line):
    result = CliRunner().invoke(_command(error), [])
    assert result.exit_code == status
    assert result.stderr.strip().startswith(line) and result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.output


def test_traceback_on_request(monkeypatch):
    monkeypatch.setenv("P2PKIT_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        run(_command(ZeroDivisionError("bug")), [])


def test_every_reading_command_takes_standard_input(tmp_path):
    torrent = SAMPLE_TORRENT.read_bytes()
    runner = CliRunner()
    result = runner.invoke(cli, ["bt", "info", "--json", "-"], input=torrent)
    assert result.exit_code == 0 and json.loads(result.stdout)["name"] == "payload-v2.bin"
    result = runner.invoke(cli, ["bencode", "--json", "-"], input=torrent)
    assert result.exit_code == 0 and "info" in json.loads(result.stdout)["value"]
    result = runner.invoke(cli, ["dissect", "-c", "2", "--json", "-"],
                           input=SAMPLE_PCAP.read_bytes())
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
    # A download with nobody to download from: the torrent was read, the download incomplete.
    result = runner.invoke(cli, ["bt", "download", "-", "-o", str(tmp_path / "dl"), "--listen",
                                 "127.0.0.1:0", "--no-trackers", "-q", "--json", "--timeout",
                                 "0.5"], input=torrent)
    assert result.exit_code == 1 and json.loads(result.stdout)["name"] == "payload-v2.bin"


def test_standard_input_on_a_terminal_is_refused_not_waited_on(monkeypatch):
    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    with pytest.raises(BadInput, match="standard input: is a terminal"):
        read_input("-")
