"""The asyncio tracker on 127.0.0.1 ephemeral ports: HTTP via raw sockets and urllib, UDP via a
socket, hostile clients, and the ``bt tracker`` command as a process. Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from p2pkit.bittorrent.tracker import server as tracker_server
from p2pkit.bittorrent.tracker.core import PeerAnnounced, TrackerConfig, TrackerCore
from p2pkit.bittorrent.tracker.http import parse_http_response
from p2pkit.bittorrent.tracker.query import AnnounceRequest, build_announce_query
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceRequest,
    UdpConnectRequest,
    UdpTrackerResponse,
)
from p2pkit.cli.bt_tracker import tracker

HASH = b"\x42" * 20
TIMEOUT = 10


def query(n: int, left: int = 0) -> str:
    return build_announce_query(AnnounceRequest(info_hash=HASH, peer_id=b"-PK0001-%012d" % n,
                                                port=7000 + n, left=left, event="started"))


def raw_http(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def udp_exchange(port: int, data: bytes, *, expect_reply: bool = True):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(TIMEOUT if expect_reply else 0.3)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return UdpTrackerResponse.parse(s.recv(2048))
        except TimeoutError:
            return None


def run_with_server(check, **config):
    """Start a server on ephemeral ports, run ``check(server, events)`` in a thread."""
    events: list = []

    async def main():
        server = TrackerServer(TrackerCore(TrackerConfig(**config), rng=random.Random(0)),
                               on_event=events.append)
        await server.start(host="127.0.0.1", http_port=0, udp_port=0)
        try:
            await asyncio.wait_for(asyncio.to_thread(check, server, events), 60)
        finally:
            await server.close()

    asyncio.run(main())
    return events


def test_http_announce_and_scrape():
    def check(server, events):
        raw = raw_http(server.http_port, f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n".encode())
        assert parse_http_response(raw).message.complete == 1
        url = f"http://127.0.0.1:{server.http_port}/announce?{query(2, left=5)}"
        body = urllib.request.urlopen(url, timeout=TIMEOUT).read()
        resp = parse_http_response(b"HTTP/1.0 200 OK\r\n\r\n" + body)
        assert [(str(p.ip), p.port) for p in resp.message.peers] == [("127.0.0.1", 7001)]
        url = f"http://127.0.0.1:{server.http_port}/scrape?info_hash=" + "%42" * 20
        body = urllib.request.urlopen(url, timeout=TIMEOUT).read()
        files = parse_http_response(b"HTTP/1.0 200 OK\r\n\r\n" + body, kind="scrape").message.files
        assert (files[HASH].complete, files[HASH].incomplete) == (1, 1)

    events = run_with_server(check)
    assert [e.port for e in events if isinstance(e, PeerAnnounced)] == [7001, 7002]


def test_udp_connect_announce():
    def check(server, events):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.sendto(UdpConnectRequest.build(dict(transaction_id=1)),
                     ("127.0.0.1", server.udp_port))
            cid = UdpTrackerResponse.parse(s.recv(2048)).connection_id
            s.sendto(UdpAnnounceRequest.build(dict(
                connection_id=cid, transaction_id=2, info_hash=HASH, peer_id=b"x" * 20,
                downloaded=0, left=0, uploaded=0, event="started", key=0, port=7000)),
                ("127.0.0.1", server.udp_port))
            resp = UdpTrackerResponse.parse(s.recv(2048))
        assert (resp.action, resp.transaction_id, resp.seeders) == ("announce", 2, 1)

    run_with_server(check)


def test_hostile_clients_do_not_stop_the_server(monkeypatch):
    monkeypatch.setattr(tracker_server, "REQUEST_TIMEOUT", 0.5)

    def check(server, events):
        assert udp_exchange(server.udp_port, os.urandom(64), expect_reply=False) is None
        assert udp_exchange(server.udp_port, b"\x00" * 60000, expect_reply=False) is None
        huge = b"GET /announce?" + b"a" * 100000 + b" HTTP/1.0\r\n\r\n"
        try:
            answer = raw_http(server.http_port, huge)
            assert answer == b"" or parse_http_response(answer).status == 400
        except ConnectionError:
            pass  # closed on us while we were still sending: also a refusal
        answer = raw_http(server.http_port, b"GET /announce?info_hash=x HTTP/1.0\r\n\r\n")
        assert parse_http_response(answer).status == 400
        # A client that never finishes its head is cut off after REQUEST_TIMEOUT.
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT) as s:
            s.sendall(b"GET /announce")
            assert s.recv(100) == b""
        # Still serving.
        assert udp_exchange(server.udp_port,
                            UdpConnectRequest.build(dict(transaction_id=7))).transaction_id == 7
        raw = raw_http(server.http_port, f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n".encode())
        assert parse_http_response(raw).status == 200

    run_with_server(check)


def test_cli_runs_until_sigterm_and_logs_announces():
    code = "from p2pkit.cli.bt_tracker import tracker; tracker()"
    proc = subprocess.Popen([sys.executable, "-c", code, "--listen", "127.0.0.1:0", "-v",
                             "--interval", "60"], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    try:
        http_line = proc.stdout.readline()
        udp_line = proc.stdout.readline()
        assert http_line.startswith("HTTP tracker: http://127.0.0.1:")
        assert udp_line.startswith("UDP tracker: udp://127.0.0.1:")
        port = int(http_line.rsplit(":", 1)[1].split("/")[0])
        resp = parse_http_response(raw_http(
            port, f"GET /announce?{query(3)} HTTP/1.0\r\n\r\n".encode()))
        assert resp.message.interval == 60
        assert proc.stdout.readline().startswith(f"http announce {HASH.hex()} from 127.0.0.1:7003")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args", [["--no-http", "--no-udp"],
                                  ["--listen", "127.0.0.1:0", "--allow", "abcd"],
                                  ["--listen", "127.0.0.1:65536"]])
def test_cli_bad_input(args):
    result = CliRunner().invoke(tracker, args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
