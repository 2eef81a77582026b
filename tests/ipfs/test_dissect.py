"""Dissecting libp2p: tests/data/captures/ipfs-01-p2pkit-hosts.pcap (two p2pkit hosts on
loopback, recorded by tests/ipfs/host_capture_scenario.py): multistream-select in clear, the
Noise handshake, the encrypted session reported, nothing dropped."""

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from p2pkit.capture.dissect import dissect
from p2pkit.ipfs.dissect import detect_libp2p, libp2p_stream
from p2pkit.ipfs.multistream import MultistreamMessage

CAPTURE = Path(__file__).parents[1] / "data" / "captures" / "ipfs-01-p2pkit-hosts.pcap"


def test_capture():
    records = [r for r in dissect(CAPTURE)]
    assert {r.protocol for r in records} == {"ipfs"}
    assert not [r for r in records if r.message == "undecoded" or r.deviations]
    lines = [(r.dst.endswith(":4001"), r.fields["line"]) for r in records
             if r.message == "multistream"]
    assert lines == [(True, "/multistream/1.0.0"), (True, "/noise"),
                     (False, "/multistream/1.0.0"), (False, "/noise")]
    handshake = [r for r in records if r.message == "noise_handshake"]
    assert [(r.fields["step"], r.dst.endswith(":4001")) for r in handshake] == [
        (1, True), (2, False), (3, True)]
    assert len(handshake[1].value.e) == 32 and len(handshake[1].value.encrypted_static) == 48
    transport = [r for r in records if r.message == "noise_transport"]
    # yamux negotiation, three pings, identify: all encrypted, each at least a 16-byte tag
    assert len(transport) > 10 and all(r.fields["encrypted"] >= 16 for r in transport)


def test_detection():
    header = MultistreamMessage.build("/multistream/1.0.0")
    assert detect_libp2p(header) is True
    assert detect_libp2p(header[:3]) is None
    assert detect_libp2p(header[:3], complete=True) is False
    assert detect_libp2p(b"\x13/multistream/2.0.0\n") is False


def test_listener_refusal_keeps_multistream():
    a = libp2p_stream(src="a:1", dst="b:2")
    b = libp2p_stream(src="b:2", dst="a:1", peer=a)
    m = MultistreamMessage.build
    list(a.data(0, m("/multistream/1.0.0") + m("/noise"), 1, 0.0))
    list(b.data(0, m("/multistream/1.0.0") + m("na"), 2, 0.1))
    got = list(a.data(len(m("/multistream/1.0.0") + m("/noise")), m("/tls/1.0.0"), 3, 0.2))
    assert [(r.message, r.fields.get("line")) for r in got] == [("multistream", "/tls/1.0.0")]


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    stream = libp2p_stream(src="a:1", dst="b:2")
    records = list(stream.data(0, MultistreamMessage.build("/multistream/1.0.0") + data, 1, 0.0))
    records += list(stream.end())
    assert all(r.protocol == "ipfs" for r in records)


JS_CAPTURE = CAPTURE.with_name("ipfs-02-p2pkit-js-libp2p.pcap")


def test_js_libp2p_capture():
    """p2pkit dials js-libp2p 3.3.11, then js-libp2p dials p2pkit (tests/interop/
    test_ipfs_interop.py): both connections are followed through multistream and Noise."""
    records = list(dissect(JS_CAPTURE))
    assert {r.protocol for r in records} == {"ipfs"}
    assert not [r for r in records if r.message == "undecoded" or r.deviations]
    connections = {frozenset((r.src, r.dst)) for r in records}
    assert len(connections) == 2
    for pair in connections:
        steps = [r.fields["step"] for r in records
                 if r.message == "noise_handshake" and frozenset((r.src, r.dst)) == pair]
        assert steps == [1, 2, 3]
        lines = [r.fields["line"] for r in records
                 if r.message == "multistream" and frozenset((r.src, r.dst)) == pair]
        assert lines.count("/noise") == 2  # proposed and echoed; yamux was inlined in Noise
