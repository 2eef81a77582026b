"""Bad input to the harness itself (issue 11): "an unreachable target, a target that talks
another protocol, a torrent the target does not have, a corrupt capture: one-line reason and a
non-zero exit, never a traceback" — for ``conformance run`` of every protocol, ``check``,
``replay`` and ``record``.

Each case runs the real CLI in a subprocess against real sockets on 127.0.0.1: p2pkit's own
four servers (tests/conformance/served_targets.py: each is the wrong protocol for the others),
a port nothing listens on, and two foreign services (an echo service that mirrors every byte,
and an HTTP server that answers every request with a web page).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.bt_helpers import write_torrent
from tests.conformance.served_targets import Targets, served

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests" / "data" / "captures"
PCAP = CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap"
PCAPNG = CAPTURES / "ndpi-bittorrent_tcp_miss.pcapng"
TRACE = ROOT / "p2pkit" / "conformance" / "traces" / "dht-libtorrent-bep44-put-get"
FAST = ("--timeout", "0.5")


@dataclass(frozen=True)
class World:
    """Everything a bad-input case points the CLI at."""

    ours: Targets
    closed: str  # HOST:PORT where nothing listens (TCP and UDP)
    echo: str  # TCP and UDP echo service (RFC 862 style): our bytes come back
    web: str  # an HTTP server that is not a tracker
    huge: str  # an HTTP server announcing a 100 GB body
    files: Path  # bad files: torrents, captures, traces


def _closed_port() -> int:
    """A port nothing listens on, TCP nor UDP (bound once, then released)."""
    for _ in range(50):
        port = random.randint(20000, 60000)
        with contextlib.ExitStack() as stack:
            try:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = stack.enter_context(socket.socket(socket.AF_INET, kind))
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


async def _tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
    writer.close()


async def _web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await reader.read(65536)
        page = b"<html>not a tracker</html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                     + str(len(page)).encode() + b"\r\n\r\n" + page)
        await writer.drain()
    writer.close()


async def _huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\nd8:interval")
        await writer.drain()
        await asyncio.sleep(2)
    writer.close()


@contextlib.contextmanager
def _foreign() -> Iterator[tuple[str, str, str]]:
    """The echo service (TCP and UDP on one port), the web server and the one with a huge
    body, as ``HOST:PORT``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[list, str, str, str]:
        echo = await asyncio.start_server(_tcp_echo, "127.0.0.1", 0)
        port = echo.sockets[0].getsockname()[1]
        udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", port))
        web = await asyncio.start_server(_web, "127.0.0.1", 0)
        huge = await asyncio.start_server(_huge, "127.0.0.1", 0)
        return [echo, udp, web, huge], f"127.0.0.1:{port}", *(
            f"127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in (web, huge))

    servers, echo, web, huge = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield echo, web, huge
    finally:
        for server in servers:
            loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _bad_files(files: Path) -> None:
    (files / "other").mkdir()
    (files / "other.torrent").write_bytes(write_torrent(files / "other", "v1", seed=99))
    (files / "corrupt.torrent").write_bytes(b"d4:infod4:name")
    (files / "random.pcap").write_bytes(random.Random(1).randbytes(600))
    (files / "text.pcap").write_text("GET / HTTP/1.1\r\n\r\n" * 20)
    (files / "empty.pcap").write_bytes(b"")
    data = PCAP.read_bytes()
    (files / "truncated.pcap").write_bytes(data[:len(data) // 2 + 7])
    (files / "header-only.pcap").write_bytes(data[:30])
    data = PCAPNG.read_bytes()
    (files / "truncated.pcapng").write_bytes(data[:len(data) // 2 + 3])
    (files / "no-manifest").mkdir()
    (files / "bad-json").mkdir()
    (files / "bad-json" / "manifest.json").write_text("{not json")
    (files / "bad-fields").mkdir()
    (files / "bad-fields" / "manifest.json").write_text('{"id": "dht/trace/x"}')
    shutil.copytree(TRACE, files / "bad-capture")
    (files / "bad-capture" / "trace.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\0" * 10)
    shutil.copytree(TRACE, files / "no-capture")
    (files / "no-capture" / "trace.pcap").unlink()
    manifest = json.loads((TRACE / "manifest.json").read_text())
    manifest["session"]["transport"] = "carrier-pigeon"
    shutil.copytree(TRACE, files / "bad-transport")
    (files / "bad-transport" / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("served")
    files = tmp_path_factory.mktemp("bad")
    _bad_files(files)
    with served(root) as ours, _foreign() as (echo, web, huge):
        yield World(ours, f"127.0.0.1:{_closed_port()}", echo, web, huge, files)


def _host_port(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


Argv = Callable[[World], list[str]]
RUN = ["conformance", "run"]

#: (id, the command line, what the one line must say).
CASES: list[tuple[str, Argv, str]] = [
    # BitTorrent
    ("bittorrent-unreachable", lambda w: [*RUN, "bittorrent", "--target", w.closed,
                                          "--torrent", str(w.ours.torrent)], "cannot connect"),
    ("bittorrent-talks-http", lambda w: [*RUN, "bittorrent", "--target", w.web, "--torrent",
                                         str(w.ours.torrent)], "another protocol?"),
    ("bittorrent-talks-gnutella", lambda w: [*RUN, "bittorrent", "--target", w.ours.gnutella,
                                             "--torrent", str(w.ours.torrent)],
     "closed the connection after our bittorrent handshake"),
    ("bittorrent-echo", lambda w: [*RUN, "bittorrent", "--target", w.echo, "--torrent",
                                   str(w.ours.torrent)], "an echo service, not a peer"),
    ("bittorrent-torrent-not-served", lambda w: [*RUN, "bittorrent", "--target",
                                                 w.ours.bittorrent, "--torrent",
                                                 str(w.files / "other.torrent")],
     "does the target serve this torrent?"),
    ("bittorrent-magnet-not-served", lambda w: [*RUN, "bittorrent", "--target",
                                                w.ours.bittorrent, "--magnet",
                                                "magnet:?xt=urn:btih:" + "ab" * 20],
     "does the target serve this torrent?"),
    ("bittorrent-no-torrent", lambda w: [*RUN, "bittorrent", "--target", w.ours.bittorrent],
     "--torrent: missing"),
    ("bittorrent-torrent-missing", lambda w: [*RUN, "bittorrent", "--target",
                                              w.ours.bittorrent, "--torrent",
                                              str(w.files / "nothing.torrent")],
     "No such file or directory"),
    ("bittorrent-torrent-corrupt", lambda w: [*RUN, "bittorrent", "--target",
                                              w.ours.bittorrent, "--torrent",
                                              str(w.files / "corrupt.torrent")],
     "field info.name, offset 14"),
    ("bittorrent-magnet-corrupt", lambda w: [*RUN, "bittorrent", "--target", w.ours.bittorrent,
                                             "--magnet", "magnet:?xt=urn:sha1:x"], "--magnet"),
    # DHT
    ("dht-unreachable", lambda w: [*RUN, "dht", "--target", w.closed], "unreachable"),
    ("dht-talks-udp-tracker", lambda w: [*RUN, "dht", "--target", _host_port(w.ours.tracker_udp)],
     "no answer to a KRPC ping"),
    ("dht-echo", lambda w: [*RUN, "dht", "--target", w.echo], "no answer to a KRPC ping"),
    ("dht-bad-address", lambda w: [*RUN, "dht", "--target", "127.0.0.1:99999"],
     "out of range"),
    ("dht-no-port", lambda w: [*RUN, "dht", "--target", "localhost"], "expected HOST:PORT"),
    # trackers
    ("tracker-http-unreachable", lambda w: [*RUN, "tracker", "--target",
                                            f"http://{w.closed}/announce"], "Connection refused"),
    ("tracker-udp-unreachable", lambda w: [*RUN, "tracker", "--target", f"udp://{w.closed}"],
     "unreachable"),
    ("tracker-http-talks-bittorrent", lambda w: [*RUN, "tracker", "--target",
                                                 f"http://{w.ours.bittorrent}/announce"],
     "not HTTP"),
    ("tracker-http-web-page", lambda w: [*RUN, "tracker", "--target", f"http://{w.web}/announce"],
     "without a bencoded tracker response"),
    ("tracker-http-huge-body", lambda w: [*RUN, "tracker", "--target",
                                          f"http://{w.huge}/announce"], "body larger than"),
    ("tracker-udp-talks-dht", lambda w: [*RUN, "tracker", "--target", f"udp://{w.ours.dht}"],
     "no answer to a BEP 15 connect"),
    ("tracker-udp-echo", lambda w: [*RUN, "tracker", "--target", f"udp://{w.echo}"],
     "not a BEP 15 connect response"),
    ("tracker-bad-url", lambda w: [*RUN, "tracker", "--target", "ftp://127.0.0.1/announce"],
     "a tracker URL is"),
    # Gnutella
    ("gnutella-unreachable", lambda w: [*RUN, "gnutella", "--target", w.closed],
     "cannot connect"),
    ("gnutella-talks-bittorrent", lambda w: [*RUN, "gnutella", "--target", w.ours.bittorrent],
     "not gnutella"),
    ("gnutella-talks-http", lambda w: [*RUN, "gnutella", "--target", w.web], "not gnutella"),
    ("gnutella-echo", lambda w: [*RUN, "gnutella", "--target", w.echo],
     "an echo service, not a peer"),
    # several targets: the bad one is named by its label
    ("matrix-one-target-unreachable", lambda w: [*RUN, "dht", "--target", f"ours={w.ours.dht}",
                                                 "--target", f"gone={w.closed}",
                                                 "--cases", "dht/bep5/ping/*"], "--target gone"),
    # check: corrupt captures
    ("check-random-bytes", lambda w: ["conformance", "check", str(w.files / "random.pcap")],
     "not a pcap or pcapng file"),
    ("check-text", lambda w: ["conformance", "check", str(w.files / "text.pcap")],
     "not a pcap or pcapng file"),
    ("check-empty", lambda w: ["conformance", "check", str(w.files / "empty.pcap")],
     "truncated"),
    ("check-header-only", lambda w: ["conformance", "check", str(w.files / "header-only.pcap")],
     "record header needs 16 bytes"),
    ("check-truncated-pcap", lambda w: ["conformance", "check", str(w.files / "truncated.pcap")],
     "(judged up to there)"),
    ("check-truncated-pcapng", lambda w: ["conformance", "check",
                                          str(w.files / "truncated.pcapng")],
     "(judged up to there)"),
    ("check-missing", lambda w: ["conformance", "check", str(w.files / "nothing.pcap")],
     "No such file or directory"),
    ("check-directory", lambda w: ["conformance", "check", str(w.files)], "Is a directory"),
    ("check-bad-torrent", lambda w: ["conformance", "check", str(PCAP), "--torrent",
                                     str(w.files / "corrupt.torrent")], "field info.name"),
    # replay: bad traces
    ("replay-no-manifest", lambda w: ["conformance", "replay", str(w.files / "no-manifest"),
                                      "--target", w.ours.dht], "no manifest.json"),
    ("replay-manifest-not-json", lambda w: ["conformance", "replay", str(w.files / "bad-json"),
                                            "--target", w.ours.dht], "not JSON"),
    ("replay-manifest-incomplete", lambda w: ["conformance", "replay",
                                              str(w.files / "bad-fields"), "--target",
                                              w.ours.dht], "missing"),
    ("replay-capture-corrupt", lambda w: ["conformance", "replay", str(w.files / "bad-capture"),
                                          "--target", w.ours.dht], "trace.pcap"),
    ("replay-capture-missing", lambda w: ["conformance", "replay", str(w.files / "no-capture"),
                                          "--target", w.ours.dht], "trace.pcap"),
    ("replay-bad-transport", lambda w: ["conformance", "replay", str(w.files / "bad-transport"),
                                        "--target", w.ours.dht], "carrier-pigeon"),
    ("replay-unknown-name", lambda w: ["conformance", "replay", "no-such-trace", "--target",
                                       w.ours.dht], "not a trace directory"),
    ("replay-unreachable", lambda w: ["conformance", "replay", str(TRACE), "--target",
                                      w.closed], "unreachable"),
    ("replay-talks-tracker", lambda w: ["conformance", "replay", str(TRACE), "--target",
                                        _host_port(w.ours.tracker_udp)],
     "no answer to a KRPC ping"),
    # record: a corrupt capture
    ("record-corrupt-capture", lambda w: ["conformance", "record", str(w.files / "random.pcap"),
                                          "--endpoint", "127.0.0.1:6881", "-o",
                                          str(w.files / "out")], "not a pcap or pcapng file"),
]


def _cli(argv: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    env.pop("P2PKIT_TRACEBACK", None)
    timed = [*argv, *FAST] if argv[:2] in (RUN, ["conformance", "replay"]) else argv
    return subprocess.run([sys.executable, "-m", "p2pkit", *timed], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


@pytest.mark.parametrize("argv, says", [(argv, says) for _, argv, says in CASES],
                         ids=[name for name, _, _ in CASES])
def test_one_line_and_exit_2(world: World, argv: Argv, says: str) -> None:
    out = _cli(argv(world))
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.returncode == 2, (out.returncode, out.stderr, out.stdout[-2000:])
    assert len(lines) == 1 and lines[0].startswith("p2pkit: "), out.stderr
    assert says in lines[0], lines[0]


def test_a_truncated_capture_is_still_judged(world: World) -> None:
    """The damage is reported and the exit is 2, but what came before it is judged."""
    out = _cli(["conformance", "check", str(world.files / "truncated.pcap"), "--json"])
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    assert doc["frames"] > 0 and doc["endpoints"]
