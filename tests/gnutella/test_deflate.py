"""Deflated links (compression §2-§3): both directions between two p2pkit servents, as
ultrapeer and leaf, the asymmetric case, and the limits against deflate bombs."""

from __future__ import annotations

import random
import zlib

import pytest

from p2pkit.core import NEED_DATA, StreamPair
from p2pkit.errors import LimitExceeded
from p2pkit.gnutella.deflate import (
    DEFLATE_MEMORY_LEVEL,
    DEFLATE_WINDOW_BITS,
    SYNC_FLUSH_BYTES,
    Deflater,
    InflateGuard,
)
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import QueryHit
from p2pkit.gnutella.servent import Servent
from p2pkit.gnutella.stream import StreamReader
from tests.gnutella.test_servent import shared


def _pair(a: Servent, b: Servent) -> StreamPair:
    pair = StreamPair(a.connect("b", 0.0), b.accept("a", 0.0))
    pair.write(0, pair.ends[0].data_to_send())
    pair.run()
    return pair


def _ping(guid: bytes) -> bytes:
    return Descriptor.build(dict(guid=guid, type="ping", ttl=1, hops=0, extensions=[]))


def test_batch_is_the_zlib_stream_with_one_sync_flush():
    d = Deflater()
    batch = _ping(b"A" * 16) + _ping(b"B" * 16)
    expected = zlib.compressobj(6, zlib.DEFLATED, DEFLATE_WINDOW_BITS, DEFLATE_MEMORY_LEVEL)
    wire = expected.compress(batch) + expected.flush(zlib.Z_SYNC_FLUSH)
    assert d.batch(batch) == wire
    assert wire.endswith(b"\x00\x00\xff\xff")  # the empty stored block of a sync flush
    # a second batch continues the same stream (one dictionary per link)
    more = d.batch(_ping(b"C" * 16))
    inflater = zlib.decompressobj()
    assert inflater.decompress(wire + more) == batch + _ping(b"C" * 16)


def test_big_batch_is_flushed_every_4k():
    d = Deflater()
    data = random.Random(1).randbytes(3 * SYNC_FLUSH_BYTES)
    wire = d.batch(data)
    assert wire.count(b"\x00\x00\xff\xff") >= 3
    assert zlib.decompressobj().decompress(wire) == data


@pytest.mark.parametrize(("roles"), [("leaf", "ultrapeer"), ("ultrapeer", "ultrapeer")])
def test_both_directions_deflated_between_two_servents(roles):
    a = Servent(role=roles[0], rng=random.Random(1), deflate=True,
                shared=shared("alpha_notes.txt"))
    b = Servent(role=roles[1], rng=random.Random(2), deflate=True)
    pair = _pair(a, b)
    ca, cb = pair.ends
    assert ca.state == cb.state == "ESTABLISHED"
    # each side said Content-Encoding: deflate in its own block, and reads the other inflated
    assert ca.reader.compressed and cb.reader.compressed
    assert ca.deflater is not None and cb.deflater is not None
    assert "deflate" in ca.headers.tokens("Content-Encoding")  # b's answer, as a read it
    # the first bytes after the handshake are a zlib header, then routing works through it
    guid = b.query("alpha", 1.0)
    wire = cb.data_to_send()
    assert wire and not wire.startswith(guid)  # not the plain descriptor: deflated
    pair.write(1, wire)
    _, events = pair.run()
    [hit] = [e for e in events if isinstance(e, QueryHit)]
    assert hit.query_guid == guid
    assert ca.deflater.plain_bytes > 0 and ca.deflater.deflated_bytes > 0


def test_asymmetric_only_the_willing_side_compresses():
    """compression §3's second example: A compresses, B does not."""
    a = Servent(role="leaf", rng=random.Random(1), deflate=True, shared=shared("xray_yankee.txt"))
    b = Servent(role="ultrapeer", rng=random.Random(2), deflate=False)
    pair = _pair(a, b)
    ca, cb = pair.ends
    assert ca.deflater is not None and cb.deflater is None
    assert cb.reader.compressed and not ca.reader.compressed
    guid = b.query("xray", 1.0)
    plain = cb.data_to_send()
    assert Descriptor.parse(plain).guid == guid  # B's direction stays plain
    pair.write(1, plain)
    _, events = pair.run()
    assert any(isinstance(e, QueryHit) for e in events)


def test_nobody_compresses_unasked():
    a = Servent(role="leaf", rng=random.Random(1), deflate=False)
    b = Servent(role="ultrapeer", rng=random.Random(2), deflate=True)
    pair = StreamPair(a.connect("b", 0.0), b.accept("a", 0.0))
    hello = pair.ends[0].data_to_send()
    pair.ends[1].receive_data(hello.replace(b"Accept-Encoding: deflate\r\n", b""), 0.0)
    answer = pair.ends[1].data_to_send()
    assert b"Content-Encoding" not in answer and pair.ends[1].deflater is None


def _bomb_peer(up: Servent, conn_id: str, now: float = 0.0):
    """A hand-driven leaf that negotiates deflate and returns its connection on ``up``."""
    leaf = Servent(role="leaf", rng=random.Random(7), deflate=True)
    conn = leaf.connect("up", now)
    theirs = up.accept(conn_id, now)
    theirs.receive_data(conn.data_to_send(), now)
    conn.receive_data(theirs.data_to_send(), now)
    theirs.receive_data(conn.data_to_send(), now)  # the final 200 with Content-Encoding
    assert theirs.state == "ESTABLISHED" and theirs.reader.compressed
    return conn, theirs


def test_deflate_bomb_drops_only_that_connection():
    up = Servent(role="ultrapeer", rng=random.Random(3), deflate=True)
    good_leaf = Servent(role="leaf", rng=random.Random(4), deflate=True,
                        shared=shared("alpha_file.txt"))
    pair = _pair(good_leaf, up)
    leaf, bomber = _bomb_peer(up, "bomber")
    while bomber.next_event() is not NEED_DATA:
        pass
    # 16 MiB of zeros (endless all-zero pings) on the leaf's own zlib stream: ~16 KiB
    stream = leaf.deflater._z  # the leaf's zlib stream, without the 4 KiB flushes
    wire = stream.compress(bytes(16 * 1024 * 1024)) + stream.flush(zlib.Z_SYNC_FLUSH)
    assert len(wire) < 20_000
    bomber.receive_data(wire, 1.0)
    assert bomber.state == "CLOSING"  # Bye sent, nothing more read
    assert up.received["ping"] == 0  # the bomb's frames were dropped, not acted upon
    inflated = zlib.decompressobj().decompress(bomber.data_to_send())
    d = StreamReader(handshake=False).feed(inflated)[-1]
    assert d.descriptor.type == "bye" and d.descriptor.code == 400
    assert "deflate bomb" in d.descriptor.message
    # the other leaf is still served: a query reaches it and its hit comes back
    guid = up.query("alpha", 2.0)
    pair.write(1, pair.ends[1].data_to_send())
    _, up_events = pair.run()
    assert [e.query_guid for e in up_events if isinstance(e, QueryHit)] == [guid]
    assert up.connections["a"].state == "ESTABLISHED"


def test_inflate_guard_limits():
    g = InflateGuard(max_ratio=100, grace=1000, max_per_second=10_000, max_buffered=5000)
    g.check(consumed=100, produced=900)  # within the grace
    with pytest.raises(LimitExceeded, match="deflate bomb"):
        g.check(consumed=0, produced=20_000 - 900)
    g = InflateGuard(max_per_second=10_000)
    g.now = 0.0
    g.check(consumed=5000, produced=9000)
    g.now = 0.5  # half a second refills half the bucket
    g.check(consumed=5000, produced=5000)
    with pytest.raises(LimitExceeded, match="per second"):
        g.check(consumed=5000, produced=2000)
    with pytest.raises(LimitExceeded, match="buffered"):
        InflateGuard(max_buffered=10).check(consumed=10, produced=10, buffered=11)


def test_reader_reports_the_bomb_at_its_compressed_offset():
    guard = InflateGuard(max_ratio=50, grace=4096)
    reader = StreamReader(handshake=False, inflate_guard=guard)
    reader.compressed = True
    reader._inflater = zlib.decompressobj()
    bomb = zlib.compressobj(9)
    wire = bomb.compress(bytes(1 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(LimitExceeded) as e:
        reader.feed(wire)
    assert e.value.offset is not None and e.value.offset <= len(wire)


def test_ratio_on_a_busy_network(capsys):
    """compression §2: "Typical compression ratios have been measured to be between 40%-50%.
    If you achieve less than that, it probably means you are flushing too often." Eight
    servents (2 ultrapeers, 6 leaves of 40 files), 200 queries, one batch per delivery: the
    figure docs/guide/gnutella-servent.md quotes (run with ``-s`` to see it)."""
    from tests.gnutella.test_servent import Network

    net = Network(seed=1)
    opts = dict(deflate=True, vendor_messages=True, hsep=True, ultrapeer_qrp=True)
    net.add("up1", "ultrapeer", **opts)
    net.add("up2", "ultrapeer", **opts)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    for i in range(6):
        rng = random.Random(i)
        net.add(f"leaf{i}", "leaf", [f"{rng.choice(words)}_{rng.choice(words)}_{n}.txt"
                                     for n in range(40)], **opts)
    net.link("up2", "up1")
    for i in range(6):
        net.link(f"leaf{i}", "up1" if i < 3 else "up2")
    t = 1.0
    for q in range(200):
        net.nodes[f"leaf{q % 6}"].query(f"{words[q % 8]} {words[(q * 3) % 8]}", t)
        t += 0.5
        net.pump(t)
    deflaters = [c.deflater for s in net.nodes.values() for c in s.connections.values()]
    assert all(d is not None for d in deflaters) and len(deflaters) == 14
    plain = sum(d.plain_bytes for d in deflaters)
    sent = sum(d.deflated_bytes for d in deflaters)
    with capsys.disabled():
        print(f"\ndeflate: {plain} descriptor bytes sent as {sent} ({sent / plain:.1%})")
    assert sent < 0.5 * plain
