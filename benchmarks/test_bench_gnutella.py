"""Gnutella descriptor parse/build rates and a servent's routed messages per second.

Run: ``python -m pytest benchmarks/test_bench_gnutella.py --benchmark-enable -p no:doctest``.
Inputs are the real descriptors of tests/data/captures/gtkg123-plain-up2-3leaves.pcap (every
payload type gtk-gnutella 1.2.3 sent: ping, pong with GGEP, QRP, vendor messages, HSEP, query,
query hit with GGEP H and a GTKG trailer, push, bye); ``ops`` is passes over the whole set.
"""

from __future__ import annotations

import random

import pytest

from p2pkit.core import MemoryNetwork
from p2pkit.gnutella.descriptors import Descriptor
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
