"""KRPC decode/encode speed per message (BEP 5, 44), on real datagrams.

Run: ``python -m pytest benchmarks/test_bench_krpc.py --benchmark-enable -p no:doctest``.
Messages from tests/data/captures/dht-02-bep44-put-get.pcap (libtorrent 2.0.8 and npm
bittorrent-dht 11.0.12) and ndpi-bittorrent_utp.pcap; one of each kind, chosen by content.
"""

from __future__ import annotations

import pytest

from p2pkit.dht.krpc import KrpcMessage, decode, decode_lenient
from tests.pcap_payloads import udp_datagrams


def _pick() -> dict[str, bytes]:
    """The first captured datagram of each kind (query method, response shape, error)."""
    wanted = {
        "get_peers_query": lambda m: m.y == "q" and m.method == "get_peers",
        "find_node_query": lambda m: m.y == "q" and m.method == "find_node",
        "put_mutable_query": lambda m: m.y == "q" and m.method == "put" and "k" in m.a,
        "nodes_response": lambda m: m.y == "r" and "nodes" in m.r and "k" not in m.r,
        "get_mutable_response": lambda m: m.y == "r" and "sig" in m.r,
        "ping_like_response": lambda m: m.y == "r" and set(m.r) == {"id"},
        "error_302": lambda m: m.y == "e" and m.e.code == 302,
    }
    found: dict[str, bytes] = {}
    for _, _, payload in udp_datagrams("dht-02-bep44-put-get.pcap"):
        if payload[:1] != b"d":
            continue
        message = decode(payload)
        for name, test in wanted.items():
            if name not in found and test(message):
                found[name] = payload
    return found


CASES = _pick()


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode(benchmark, name):
    data = CASES[name]
    message = benchmark(KrpcMessage.parse, data)
    assert KrpcMessage.build(message) == data


@pytest.mark.parametrize("name", sorted(CASES))
def test_encode(benchmark, name):
    data = CASES[name]
    message = KrpcMessage.parse(data)
    assert benchmark(KrpcMessage.build, message) == data


@pytest.mark.parametrize("name", ["nodes_response", "get_mutable_response"])
def test_decode_lenient(benchmark, name):
    result = benchmark(decode_lenient, CASES[name])
    assert result.message == decode(CASES[name])


@pytest.mark.parametrize("name", ["get_peers_query", "find_node_query"])
def test_node_answers_query(benchmark, name):
    """One query through the sans-I/O node: decode, routing-table lookup, answer, encode."""
    import random

    from p2pkit.dht.node import Node
    from p2pkit.dht.security import RateLimiter

    node = Node(bytes(20), rng=random.Random(1), now=0.0,
                rate_limit=RateLimiter(rate=1e12, burst=1e12))
    for i in range(200):
        node.table.seen_response(random.Random(i).randbytes(20), (f"10.0.{i}.1", 6881), 0.0)
    data = CASES[name]

    def answer():
        node.receive_datagram(data, ("10.9.9.9", 6881), 1.0)
        return node.datagrams_to_send(1.0)

    sent = benchmark(answer)
    assert any(decode(d).y == "r" for d, _ in sent)


def _all_datagrams() -> list[bytes]:
    return [payload for _, _, payload in udp_datagrams("dht-02-bep44-put-get.pcap")
            if payload[:1] == b"d"]


@pytest.mark.parametrize("decoder", ["canonical-pure-python", "compiled-front"])
def test_canonical_dictionaries(benchmark, decoder):
    """Every KRPC datagram of the capture through the canonical decoder the deferred
    dissection uses: p2pkit's pure-Python one, or fastbencode's compiled decoder in front of
    it (p2pkit.bencode.compiled; docs/dissect-performance.md)."""
    from p2pkit.bencode import compiled
    from p2pkit.bencode.canonical import decode_canonical

    if decoder == "compiled-front" and not compiled.COMPILED:
        pytest.skip("fastbencode's compiled extension not installed")
    decode = decode_canonical if decoder == "canonical-pure-python" else \
        compiled.decode_canonical_dict
    datagrams = _all_datagrams()

    def run() -> int:
        return sum(decode(d) is not None for d in datagrams)

    assert benchmark(run) > 0.9 * len(datagrams)


@pytest.mark.parametrize("way", ["generic", "generated"])
def test_record_fields(benchmark, way):
    """A record's ``-V``/JSON fields of every KRPC datagram of the capture: the lenient
    message, its JSON conversion and the deviations split (generic), or the function
    generated for the message's shape (p2pkit.dht.krpc_fields); top-level spans included
    (docs/dissect-performance.md, seventh round)."""
    from p2pkit.bencode.compiled import value_spans
    from p2pkit.dht import dissect as dht_dissect
    from p2pkit.dht.deferred import decode_deferred
    from p2pkit.dht.krpc_fields import record_fields

    deferred = [d for d in (decode_deferred(data, dht_dissect._DeferredDatagram)
                            for data in _all_datagrams()) if d is not None]
    for d in deferred:
        d.paired = d.method

    def generic() -> int:
        for d in deferred:
            dht_dissect._fields(d.paired_message())
            dht_dissect._named_spans(value_spans(d.raw, len(d.data)))
        return len(deferred)

    def generated() -> int:
        answered = 0
        for d in deferred:
            answered += record_fields(d, d.paired) is not None
            d.named_spans()
        return answered

    assert benchmark(generic if way == "generic" else generated) > 0.9 * len(deferred)
