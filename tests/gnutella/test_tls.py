"""The TLS upgrade of Gnutella 0.6 links (gnet-TLS-upgrade §2) between two p2pkit servents, in
memory and over sockets, and a TLS upgrade to garbage, which drops only that connection."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA, StreamPair
from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella.events import ConnectionClosed, ConnectionEstablished, QueryHit
from p2pkit.gnutella.handshake import Handshake
from p2pkit.gnutella.servent import Servent
from p2pkit.gnutella.server import GnutellaServer
from p2pkit.gnutella.stream import TLS, StreamReader
from tests.gnutella.test_servent import shared


def _pair(a: Servent, b: Servent) -> tuple[StreamPair, list, list, list[bytes]]:
    """Connect ``a`` to ``b``; returns the pair, each side's events and the bytes a wrote."""
    ca, cb = a.connect("b", 0.0), b.accept("a", 0.0)
    pair = StreamPair(ca, cb)
    wire: list[bytes] = []
    original = pair.write

    def write(side, data):
        if side == 0:
            wire.append(data)
        original(side, data)
    pair.write = write
    pair.write(0, ca.data_to_send())
    ea, eb = pair.run()
    return pair, ea, eb, wire


@pytest.mark.parametrize("deflate", [False, True])
def test_two_servents_upgrade_to_tls_and_route_through_it(deflate):
    leaf = Servent(role="leaf", rng=random.Random(1), tls=True, deflate=deflate,
                   shared=shared("alpha_tls_notes.txt"))
    up = Servent(role="ultrapeer", rng=random.Random(2), tls=True, deflate=deflate)
    pair, leaf_events, up_events, wire = _pair(leaf, up)
    ca, cb = pair.ends
    # the three legs, in clear: Upgrade offered, accepted, acknowledged (gnet-TLS-upgrade §2)
    connect, final = Handshake.parse(wire[0]), None
    assert connect.headers["Upgrade"] == "TLS/1.0"
    assert cb.headers["Upgrade"] == "TLS/1.0"  # the connect the ultrapeer read
    assert ca.headers["Connection"] == "Upgrade" and ca.headers["Upgrade"] == "TLS/1.0"
    final_block = wire[1][: wire[1].index(b"\r\n\r\n") + 4]
    final = Handshake.parse(final_block)
    assert final.headers["Connection"] == "Upgrade"
    # right after the final block: a TLS handshake record (content type 22, version 3.x)
    tls_bytes = wire[1][len(final_block):]
    assert tls_bytes[:1] == b"\x16" and tls_bytes[1] == 3
    assert [e.tls for e in leaf_events + up_events if isinstance(e, ConnectionEstablished)] \
        == [True, True]
    assert ca.tls.established and cb.tls.established
    assert up.received["route_table_update"] == 2  # the leaf's QRP RESET and PATCH, via TLS
    # a query through TLS (and deflate inside it), and its hit back
    guid = up.query("alpha", 1.0)
    out = cb.data_to_send()
    assert out[:1] == b"\x17"  # application data records only: nothing readable
    assert b"alpha" not in out
    pair.write(1, out)
    _, up_events = pair.run()
    assert [e.query_guid for e in up_events if isinstance(e, QueryHit)] == [guid]
    assert ca.reader.compressed is deflate and cb.reader.compressed is deflate


def test_no_upgrade_unless_both_want_it():
    leaf = Servent(role="leaf", rng=random.Random(1), tls=True)
    up = Servent(role="ultrapeer", rng=random.Random(2), tls=False)
    pair, _, _, wire = _pair(leaf, up)
    assert pair.ends[0].state == pair.ends[1].state == cs.ESTABLISHED
    assert pair.ends[0].tls is None and pair.ends[1].tls is None
    assert b"Connection: Upgrade" not in b"".join(wire)
    # gnet-TLS-upgrade §2: the recipient does not offer TLS to a peer that did not ask
    leaf = Servent(role="leaf", rng=random.Random(1), tls=False)
    up = Servent(role="ultrapeer", rng=random.Random(2), tls=True)
    pair, _, _, wire = _pair(leaf, up)
    assert "Upgrade" not in pair.ends[0].headers and pair.ends[1].tls is None


def test_tls_upgrade_to_garbage_drops_only_that_connection():
    up = Servent(role="ultrapeer", rng=random.Random(3), tls=True)
    good = Servent(role="leaf", rng=random.Random(4), tls=True, shared=shared("kilo_file.bin"))
    pair, _, _, _ = _pair(good, up)
    # a hostile leaf: it offers TLS, acknowledges the upgrade, then sends plain Gnutella bytes
    bad = Servent(role="leaf", rng=random.Random(5), tls=True)
    theirs = bad.connect("up", 0.0)
    mine = up.accept("bad", 0.0)
    mine.receive_data(theirs.data_to_send(), 0.0)
    theirs.receive_data(mine.data_to_send(), 0.0)
    final = theirs.data_to_send()
    final = final[: final.index(b"\r\n\r\n") + 4]  # the final block, not the ClientHello
    mine.receive_data(final + b"GNUTELLA ping, not TLS" * 10, 1.0)
    events = list(iter(mine.next_event, NEED_DATA))
    [closed] = [e for e in events if isinstance(e, ConnectionClosed)]
    assert mine.state == cs.CLOSED and "TLS handshake failed" in closed.reason
    assert not closed.by_peer
    # the ultrapeer still serves the good leaf over its TLS link
    guid = up.query("kilo", 2.0)
    pair.write(1, pair.ends[1].data_to_send())
    _, up_events = pair.run()
    assert [e.query_guid for e in up_events if isinstance(e, QueryHit)] == [guid]


def test_reader_keeps_the_records_after_the_switch():
    reader = StreamReader(keep_upgraded=True)
    block = (b"GNUTELLA/0.6 200 OK\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n"
             b"Content-Encoding: deflate\r\n\r\n")
    [frame] = reader.feed(block + b"\x16\x03\x01rest")
    assert reader.state == TLS
    assert reader.take_upgrade() == b"\x16\x03\x01rest"
    assert reader.state == "descriptors" and reader.compressed  # deflate inside TLS
    dissecting = StreamReader()
    dissecting.feed(block + b"\x16\x03\x01rest")
    assert dissecting.state == TLS and dissecting.opaque_bytes == 7


def test_two_servers_over_sockets_with_tls():
    async def scenario():
        up = GnutellaServer(ultrapeer=True, seed=1, tls=True)
        leaf = GnutellaServer(seed=2, tls=True, shared=shared("lima_tls_sock.txt"))
        searcher = GnutellaServer(seed=3, tls=True)
        for s in (up, leaf, searcher):
            await s.start()
        try:
            await leaf.connect("127.0.0.1", up.port)
            await searcher.connect("127.0.0.1", up.port)
            await asyncio.wait_for(searcher.connected.wait(), 5)
            await asyncio.sleep(0.5)
            hits = await searcher.search("lima", timeout=1.0)
            conns = [c for c in up.core.connections.values() if c.state == cs.ESTABLISHED]
            return hits, [c.tls is not None and c.tls.established for c in conns]
        finally:
            for s in (searcher, leaf, up):
                await s.close()

    hits, tls = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [h.file_name for h in hits] == ["lima_tls_sock.txt"]
    assert tls == [True, True]


def test_the_dissector_labels_an_upgraded_link(tmp_path):
    """Two servents' TLS upgrade written to a pcap: the handshakes are decoded, the TLS
    records after them are one ``undecoded`` record per direction (encrypted, TLS)."""
    from p2pkit.capture.dissect import dissect
    from p2pkit.capture.pcap_writer import PcapWriter, ip_packet
    from p2pkit.capture.readers import LINKTYPE_RAW

    leaf = Servent(role="leaf", rng=random.Random(1), tls=True, shared=shared("echo.txt"))
    up = Servent(role="ultrapeer", rng=random.Random(2), tls=True)
    ca, cb = leaf.connect("b", 0.0), up.accept("a", 0.0)
    ends = {0: (ca, ("127.0.0.11", 40000), ("127.0.0.10", 6346)),
            1: (cb, ("127.0.0.10", 6346), ("127.0.0.11", 40000))}
    seq = {0: 1000, 1: 5000}
    sent = {0: 0, 1: 0}
    path = tmp_path / "tls.pcap"
    with PcapWriter(path, LINKTYPE_RAW) as w:
        w.write(ip_packet("tcp", ends[0][1], ends[0][2], b"", seq=999, flags="S"), 0.0)
        w.write(ip_packet("tcp", ends[1][1], ends[1][2], b"", seq=4999, ack=1000, flags="SA"),
                0.0)
        side, t = 0, 0.0
        for _ in range(12):
            conn, src, dst = ends[side]
            data = conn.data_to_send()
            if data:
                t += 0.01
                w.write(ip_packet("tcp", src, dst, data, seq=seq[side], ack=seq[1 - side]),
                        t)
                seq[side] += len(data)
                sent[side] += len(data)
                ends[1 - side][0].receive_data(data, t)
            side = 1 - side
    assert ca.tls.established and cb.tls.established
    records = list(dissect(path))
    shakes = [r for r in records if r.message == "handshake"]
    assert len(shakes) == 3
    tls = {r.src: r.fields for r in records if r.message == "undecoded"}
    assert set(tls) == {"127.0.0.11:40000", "127.0.0.10:6346"}
    for src, fields in tls.items():
        assert fields["reason"] == "encrypted" and fields["encryption"] == "TLS"
        side = 0 if src.endswith("40000") else 1
        handshake_bytes = sum(r.length for r in shakes if r.src == src)
        assert fields["bytes"] == sent[side] - handshake_bytes
    assert not [r for r in records if r.protocol == "gnutella" and r.message not in (
        "handshake", "undecoded")]


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_random_bytes_into_tls_raise_only_parse_error(data):
    from p2pkit.errors import ParseError
    from p2pkit.gnutella.tls import TlsLayer

    layer = TlsLayer(server_side=True)
    try:
        assert layer.receive(data) == b""  # no plaintext before a handshake
    except ParseError as e:
        assert e.path == "tls"


def test_tls_upgrade_to_garbage_over_sockets_drops_only_that_connection():
    """A client offers TLS, acknowledges the upgrade, then sends plain bytes: the server closes
    that socket (no traceback, its slot freed) and a TLS leaf is still served."""
    from p2pkit.gnutella.handshake import Handshake as Block
    from p2pkit.http1 import Headers

    async def scenario():
        up = GnutellaServer(ultrapeer=True, seed=1, tls=True)
        leaf = GnutellaServer(seed=2, tls=True, shared=shared("november_tls.txt"))
        searcher = GnutellaServer(seed=3, tls=True)
        for s in (up, leaf, searcher):
            await s.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
            writer.write(Block.build(dict(kind="connect", version="0.6", headers=Headers([
                ("User-Agent", "garbage/1"), ("X-Ultrapeer", "False"),
                ("Upgrade", "TLS/1.0")]))))
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"GNUTELLA/0.6 200 OK\r\nConnection: Upgrade\r\n\r\n" + b"garbage" * 50)
            closed = await asyncio.wait_for(reader.read(), 5)  # the server closes it
            writer.close()
            await leaf.connect("127.0.0.1", up.port)
            await searcher.connect("127.0.0.1", up.port)
            await asyncio.sleep(0.5)
            hits = await searcher.search("november", timeout=1.0)
            return answer, closed, hits, len(up.core.connections)
        finally:
            for s in (searcher, leaf, up):
                await s.close()

    answer, closed, hits, live = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert b"Connection: Upgrade" in answer and b"Upgrade: TLS/1.0" in answer
    assert b"GNUTELLA" not in closed  # nothing readable came back: only the close
    assert [h.file_name for h in hits] == ["november_tls.txt"]
    assert live == 2  # the garbage connection is forgotten


def test_a_tls_handshake_that_never_ends_times_out():
    """The peer acknowledges the upgrade and then says nothing more: after HANDSHAKE_TIMEOUT the
    link is closed (it would otherwise hold a socket and every descriptor queued for it)."""
    from p2pkit.gnutella.servent import HANDSHAKE_TIMEOUT

    up = Servent(role="ultrapeer", rng=random.Random(3), tls=True)
    bad = Servent(role="leaf", rng=random.Random(5), tls=True)
    theirs, mine = bad.connect("up", 0.0), up.accept("bad", 0.0)
    mine.receive_data(theirs.data_to_send(), 0.0)
    theirs.receive_data(mine.data_to_send(), 0.0)
    final = theirs.data_to_send()
    mine.receive_data(final[: final.index(b"\r\n\r\n") + 4], 1.0)  # no ClientHello follows
    assert mine.state == cs.ESTABLISHED and not mine.tls.established
    assert mine.get_timer() == 1.0 + HANDSHAKE_TIMEOUT
    up.query("anything", 2.0)  # held behind the TLS handshake, not sent in clear
    assert mine.data_to_send() == b""
    mine.handle_timer(1.0 + HANDSHAKE_TIMEOUT)
    [closed] = [e for e in iter(mine.next_event, NEED_DATA) if isinstance(e, ConnectionClosed)]
    assert mine.state == cs.CLOSED and closed.reason == "TLS handshake timeout"
