"""scapy integration: layers built on p2pkit's schemas, and dissecting scapy packet lists."""

from __future__ import annotations

from collections import Counter

import pytest
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from p2pkit.bittorrent.scapy_layers import UtpLayer
from p2pkit.bittorrent.tracker.scapy_layers import UdpTrackerLayer, UdpTrackerResponseLayer
from p2pkit.capture.dissect import dissect
from p2pkit.capture.scapy_layers import dissect_packets, register, unregister
from tests.pcap_payloads import CAPTURES


@pytest.fixture(autouse=True, scope="module")
def _registered():
    """p2pkit's layers registered for this module's tests only: register() changes how scapy
    decodes every packet, so it is undone before other modules run."""
    register()
    yield
    unregister()


def test_every_utp_packet_becomes_a_utp_layer_that_rebuilds_identically():
    packets = rdpcap(str(CAPTURES / "bt-04-libtorrent-utp-only.pcap"))
    ours = Counter(r.message for r in dissect(CAPTURES / "bt-04-libtorrent-utp-only.pcap")
                   if r.protocol == "bt-utp")
    seen = Counter()
    for pkt in packets:
        if UtpLayer in pkt:
            layer = pkt[UtpLayer]
            seen[str(layer.message.type)] += 1
            assert bytes(layer) == bytes(pkt[UDP].payload)
            assert layer.mysummary().startswith("uTP st_")
    assert seen == ours


def test_udp_tracker_layers_and_answers():
    packets = rdpcap(str(CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap"))
    requests = [p for p in packets if UdpTrackerLayer in p]
    responses = [p for p in packets if UdpTrackerResponseLayer in p]
    assert requests and len(requests) == len(responses)
    for response in responses:
        assert any(response[UdpTrackerResponseLayer].answers(r[UdpTrackerLayer])
                   for r in requests)
    text = requests[-1].show(dump=True)
    assert "transaction_id" in text and "BT UDP tracker request" in text


def test_dissect_packets_matches_dissecting_the_file():
    name = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
    from_scapy = [(r.frame, r.message, r.fields.get("index"))
                  for r in dissect_packets(rdpcap(str(CAPTURES / name)))]
    from_file = [(r.frame, r.message, r.fields.get("index")) for r in dissect(CAPTURES / name)]
    assert from_scapy == from_file and len(from_file) > 500


def test_krpc_layer_shows_the_method_and_pairs_answers():
    from p2pkit.dht.scapy_layers import KrpcLayer

    packets = [p for p in rdpcap(str(CAPTURES / "dht-02-bep44-put-get.pcap")) if KrpcLayer in p]
    ours = [r for r in dissect(CAPTURES / "dht-02-bep44-put-get.pcap") if r.protocol == "bt-dht"]
    assert len(packets) == len(ours)
    queries = [p for p in packets if p[KrpcLayer].message.y == "q"]
    assert all(p[KrpcLayer].mysummary().startswith("KRPC query ") for p in queries)
    first_answer = next(p for p in packets if p[KrpcLayer].message.y == "r")
    assert any(first_answer[KrpcLayer].answers(q[KrpcLayer]) for q in queries)
    assert bytes(queries[0][KrpcLayer]) == bytes(queries[0][UDP].payload)


def test_stream_layers_on_message_aligned_segments():
    from scapy.layers.inet import IP, TCP

    from p2pkit.bittorrent.scapy_layers import PeerMessageLayer
    from p2pkit.bittorrent.wire.messages import PeerMessage
    from p2pkit.gnutella.descriptors import Descriptor
    from p2pkit.gnutella.scapy_layers import GnutellaDescriptorLayer

    register(gnutella_tcp_ports=[6346], bittorrent_tcp_ports=[6881])
    wire = (PeerMessage.build({"type": "have", "index": 3})
            + PeerMessage.build({"type": "request", "index": 1, "begin": 0, "length": 16384}))
    pkt = IP(bytes(IP() / TCP(sport=6881, dport=40000) / wire))
    layers = [layer for layer in pkt.iterpayloads() if isinstance(layer, PeerMessageLayer)]
    assert [str(layer.message.type) for layer in layers] == ["have", "request"]
    assert layers[1].message.length == 16384
    assert bytes(pkt[TCP].payload) == wire
    # a real descriptor from the gtk-gnutella capture (a QRP reset)
    reset = bytes.fromhex("6cf73102930159f83f73d42bfc799c41300100060000000000400000" "02")
    pkt = IP(bytes(IP() / TCP(sport=41865, dport=6346) / reset))
    layer = pkt[GnutellaDescriptorLayer]
    assert layer.mysummary() == "Gnutella route_table_update ttl=1 hops=0"
    assert Descriptor.build(layer.message) == reset
    assert "table_length" in pkt.show(dump=True)
