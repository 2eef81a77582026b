"""HTTP tracker admission (issue 13): idle connections cannot make a valid announce fail.

Before the fix, MAX_CONNECTIONS idle sockets filled the tracker and every further connection
was reset. Now a new connection replaces the oldest one still waiting for its request head.
Limits are lowered with monkeypatch so a few dozen sockets (127.0.0.1 and 127.0.0.2) show it.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from p2pkit.bittorrent.tracker import server as tracker_server
from p2pkit.bittorrent.tracker.http import parse_http_response
from tests.bittorrent.tracker.test_server import query, raw_http, run_with_server


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(tracker_server, "MAX_CONNECTIONS", 16)
    monkeypatch.setattr(tracker_server, "MAX_CONNECTIONS_PER_ADDRESS", 6)


def idle_sockets(port, source, count):
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /ann")  # a head that never ends
        socks.append(s)
    return socks


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"], ids=["same-address",
                                                                     "other-address"])
def test_idle_connections_cannot_block_an_announce(small_limits, source):
    def check(server, events):
        socks = idle_sockets(server.http_port, source, 40)
        try:
            for n in range(3):  # the attackers' sockets are the oldest: they go first
                raw = raw_http(server.http_port,
                               f"GET /announce?{query(n)} HTTP/1.0\r\n\r\n".encode())
                assert parse_http_response(raw).message.complete == n + 1
            assert len(server._open) <= tracker_server.MAX_CONNECTIONS
            per_source = sum(1 for h in server._open.values() if h == source)
            assert per_source <= tracker_server.MAX_CONNECTIONS_PER_ADDRESS
        finally:
            for s in socks:
                s.close()

    run_with_server(check)


def test_other_addresses_fill_the_slots_and_still_make_room(small_limits):
    def check(server, events):
        socks = []
        try:
            for i in range(2, 8):  # 6 addresses x 5 idle sockets: above MAX_CONNECTIONS
                socks += idle_sockets(server.http_port, f"127.0.0.{i}", 5)
            raw = raw_http(server.http_port, f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n"
                           .encode())
            assert parse_http_response(raw).message.complete == 1
            assert len(server._open) <= tracker_server.MAX_CONNECTIONS
        finally:
            for s in socks:
                s.close()

    run_with_server(check)


def test_an_exception_on_one_request_closes_that_client_only(monkeypatch, caplog):
    original = tracker_server.TrackerCore.handle_http_request

    def buggy(self, head, peer, *, now):
        if b"boom" in head:
            raise RuntimeError("a bug one request can reach")
        return original(self, head, peer, now=now)

    monkeypatch.setattr(tracker_server.TrackerCore, "handle_http_request", buggy)

    def check(server, events):
        assert raw_http(server.http_port, b"GET /announce?boom HTTP/1.0\r\n\r\n") == b""
        raw = raw_http(server.http_port, f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n".encode())
        assert parse_http_response(raw).message.complete == 1
        assert server._open == {}

    with caplog.at_level("WARNING", logger="p2pkit.bittorrent.tracker.server"):
        run_with_server(check)
    assert [r for r in caplog.records if "a bug one request" in r.getMessage()]


def wait_until(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_every_connection_table_is_empty_once_the_clients_leave(small_limits):
    """Issue 13: per-connection state is freed when the peer leaves, whatever it did: idle
    heads (some evicted), an oversized head, a head cut short, a complete announce."""
    def check(server, events):
        socks = []
        try:
            for i in range(2, 6):
                socks += idle_sockets(server.http_port, f"127.0.0.{i}", 8)  # evictions
            assert server.connection_tables()["open"] <= tracker_server.MAX_CONNECTIONS
            raw = raw_http(server.http_port, b"GET /announce?" + b"a" * 40_000)
            assert b" 400 " in raw.split(b"\r\n")[0]  # too large, answered at the limit
            with socket.create_connection(("127.0.0.1", server.http_port)) as s:
                s.sendall(b"GET /announce?info_hash=")  # cut short
            raw = raw_http(server.http_port, f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n"
                           .encode())
            assert parse_http_response(raw).message.complete == 1
        finally:
            for s in socks:
                s.close()
        assert wait_until(lambda: not any(server.connection_tables().values())), \
            server.connection_tables()

    run_with_server(check)


def test_a_head_whose_blank_line_straddles_two_reads_is_answered():
    def check(server, events):
        head = f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as s:
            for piece in (head[:-3], head[-3:-1], head[-1:]):
                s.sendall(piece)
                time.sleep(0.05)
            raw = b"".join(iter(lambda: s.recv(65536), b""))
        assert parse_http_response(raw).message.complete == 1

    run_with_server(check)


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux's TCP_DEFER_ACCEPT")
def test_connections_that_say_nothing_are_not_handed_to_the_tracker():
    """The HTTP client speaks first (``p2pkit.defer_accept``): 20 sockets that connect and say
    nothing yet, and 20 that connect and reset without a byte (churn), never reach the
    tracker's accept within the deferral, while a request is accepted at once. Without the
    option all 40 were accepted (each a protocol, a timer and its entries in the tables). A
    socket closed with a FIN is still handed over (the kernel queues it)."""
    def check(server, events):
        accepted = []
        made = tracker_server._HttpConnection.connection_made

        def counting(connection, transport):
            accepted.append(connection)
            made(connection, transport)
        tracker_server._HttpConnection.connection_made = counting
        try:
            silent = [socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
                      for _ in range(20)]
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()  # RST
            raw = raw_http(server.http_port,
                           f"GET /announce?{query(1)} HTTP/1.0\r\n\r\n".encode())
            assert parse_http_response(raw).message.complete == 1
            assert len(accepted) == 1, len(accepted)
        finally:
            tracker_server._HttpConnection.connection_made = made
            for s in silent:
                s.close()

    run_with_server(check)
