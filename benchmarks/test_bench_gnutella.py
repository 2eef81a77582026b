"""Gnutella descriptor parse/build rates and a servent's routed messages per second.

Run: ``python -m pytest benchmarks/test_bench_gnutella.py --benchmark-enable -p no:doctest``.
Inputs are the real descriptors of tests/data/captures/gtkg123-plain-up2-3leaves.pcap (every
payload type gtk-gnutella 1.2.3 sent: ping, pong with GGEP, QRP, vendor messages, HSEP, query,
query hit with GGEP H and a GTKG trailer, push, bye); ``ops`` is passes over the whole set.
"""

from __future__ import annotations

import io
import random

import pytest

import p2pkit.gnutella.descriptors as descriptors
from p2pkit.core import MemoryNetwork
from p2pkit.gnutella import ggep
from p2pkit.gnutella.deferred import checked_summary
from p2pkit.gnutella.descriptor_fast_path import fast_descriptor
from p2pkit.gnutella.descriptor_records import DescriptorRecords
from p2pkit.gnutella.descriptors import Descriptor, DescriptorLenient
from p2pkit.gnutella.dissect import GnutellaStream
from p2pkit.gnutella.servent import Servent, SharedFile
from p2pkit.gnutella.simulator import Network
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader
from tests.pcap_payloads import tcp_streams

pytestmark = pytest.mark.bench


def capture_descriptors() -> list[bytes]:
    out = []
    for data in tcp_streams("gtkg123-plain-up2-3leaves.pcap").values():
        if data.startswith(b"GNUTELLA"):
            out += [f.data for f in StreamReader().feed(data) if isinstance(f, DescriptorFrame)]
    return out


DESCRIPTORS = capture_descriptors()
PARSED = [Descriptor.parse(d) for d in DESCRIPTORS]
BY_TYPE = {d.type: raw for d, raw in zip(PARSED, DESCRIPTORS, strict=True)}


@pytest.mark.benchmark(group="gnutella-descriptors")
def test_parse_capture(benchmark):
    parse = Descriptor.parse
    result = benchmark(lambda: [parse(d) for d in DESCRIPTORS])
    assert len(result) == len(DESCRIPTORS)


@pytest.mark.benchmark(group="gnutella-descriptors")
def test_build_capture(benchmark):
    build = Descriptor.build
    result = benchmark(lambda: [build(d) for d in PARSED])
    assert result == DESCRIPTORS


@pytest.mark.benchmark(group="gnutella-descriptors")
def test_stream_reader_capture(benchmark):
    stream = b"".join(DESCRIPTORS)

    def run():
        return StreamReader(handshake=False).feed(stream)

    assert len(benchmark(run)) == len(DESCRIPTORS)


@pytest.mark.parametrize("kind", ["ping", "query", "query_hit", "pong"])
@pytest.mark.benchmark(group="gnutella-per-type")
def test_parse_one(benchmark, kind):
    data = BY_TYPE[kind]
    assert benchmark(Descriptor.parse, data).type == kind


@pytest.mark.benchmark(group="gnutella-servent")
def test_routed_queries(benchmark):
    """An ultrapeer between a querying leaf and 10 ultrapeers: 100 queries routed per round."""
    rng = random.Random(7)
    up = Servent(role="ultrapeer", rng=rng)
    leaf = Servent(role="leaf", rng=rng)
    peers = [Servent(role="ultrapeer", rng=rng, shared=[
        SharedFile(index=1, name=f"file {i}.txt", size=1, sha1=bytes(20))]) for i in range(10)]
    net = Network(MemoryNetwork(seed=7))
    net.link(leaf, "up", up, "leaf")
    for i, p in enumerate(peers):
        net.link(p, "up", up, f"p{i}")
    net.run(until=0.0)

    def run():
        before = sum(p.received["query"] for p in peers)
        for i in range(100):
            leaf.query(f"file {i % 10}", 0.0)
        net.flush(leaf)
        net.run(until=0.0)
        return sum(p.received["query"] for p in peers) - before

    assert benchmark(run) == 1000


# -- the dissector's descriptor fast path (issue 12) ----------------------------------------


def _schema_only_parse(data: bytes):
    """The lenient schema alone: construct's streams, no fast path of
    p2pkit.gnutella.descriptor_fast_path or of the GGEP blocks."""
    saved = ggep._fast_extension_block, dict(ggep._FAST_VALUES), descriptors.fast_extension_block
    ggep._fast_extension_block = descriptors.fast_extension_block = lambda d, check=False: None
    ggep._FAST_VALUES.clear()
    try:
        return DescriptorLenient.parse_stream(io.BytesIO(data))
    finally:
        ggep._fast_extension_block, values, descriptors.fast_extension_block = saved
        ggep._FAST_VALUES.update(values)


@pytest.mark.benchmark(group="gnutella-dissection")
def test_lenient_schema_only_capture(benchmark):
    result = benchmark(lambda: [_schema_only_parse(d) for d in DESCRIPTORS])
    assert result == [DescriptorLenient.parse(d) for d in DESCRIPTORS]


@pytest.mark.benchmark(group="gnutella-dissection")
def test_lenient_fast_path_capture(benchmark):
    result = benchmark(lambda: [fast_descriptor(d) for d in DESCRIPTORS])
    assert None not in result


@pytest.mark.benchmark(group="gnutella-dissection")
def test_summary_check_capture(benchmark):
    result = benchmark(lambda: [checked_summary(d) for d in DESCRIPTORS])
    assert None not in result


@pytest.mark.benchmark(group="gnutella-dissection")
def test_descriptor_records_split_capture(benchmark):
    """The dissector's records of the whole set, made in one loop (DescriptorRecords.split)."""
    stream = b"".join(DESCRIPTORS)
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")

    def split() -> list:
        frames: list = []
        assert records.split(stream, 0, 0, frames) == len(stream)
        return frames

    assert len(benchmark(split)) == len(DESCRIPTORS)


def _connected_streams() -> list[tuple[GnutellaStream, int, bytes]]:
    """One dissector stream per direction of the capture, past its handshake, and the
    direction's descriptor bytes."""
    out = []
    for data in tcp_streams("gtkg123-plain-up2-3leaves.pcap").values():
        if not data.startswith(b"GNUTELLA"):
            continue
        reader = StreamReader()
        frames = reader.feed(data)
        start = next(f.offset for f in frames if isinstance(f, DescriptorFrame))
        stream = GnutellaStream(transport="tcp", src="a:1", dst="b:2")
        list(stream.data(0, data[:start], 1, 0.0))
        out.append((stream, start, data[start:]))
    return out


@pytest.mark.benchmark(group="gnutella-dissection")
def test_dissector_stream_records_capture(benchmark):
    """Framing and records of the dissector (``p2pkit dissect``'s Gnutella stream decoder),
    summary lines not drawn: the descriptors in 1448-byte segments; ``extra_info`` holds the
    time per descriptor (the median round over the records)."""
    def run(streams):
        n = 0
        for stream, offset, body in streams:
            for i in range(0, len(body), 1448):
                n += len(list(stream.data(offset + i, body[i:i + 1448], 1, 0.0)))
        return n

    n = benchmark.pedantic(run, setup=lambda: ((_connected_streams(),), {}), rounds=30)
    assert n == len(DESCRIPTORS)
    benchmark.extra_info["us_per_descriptor"] = round(benchmark.stats.stats.median / n * 1e6, 2)
