"""scapy finds p2pkit's layers by content after register(), on ports nobody bound, and
unregister() gives scapy back its own behaviour."""

from __future__ import annotations

from collections import Counter

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.utils import rdpcap

from p2pkit.capture.dissect import dissect
from p2pkit.capture.scapy_layers import register, unregister
from tests.pcap_payloads import CAPTURES


@pytest.fixture
def registered():
    register()
    yield
    unregister()


def layers(name: str) -> Counter:
    return Counter(p.lastlayer().name for p in rdpcap(str(CAPTURES / name)))


def test_the_bundled_sample_shows_utp_and_krpc(registered):
    # peers on random ports: without content detection every packet was Raw
    assert layers("ndpi-bittorrent_utp.pcap") == Counter({"uTP": 88, "BT DHT (KRPC)": 3,
                                                          "Raw": 1})


def test_kad2_and_rpcudp_captures(registered):
    kad = layers("kad2-amule.pcap")
    assert kad == Counter({"eMule Kad": 99, "Raw": 3})  # the 3 obfuscated packets stay Raw
    assert layers("kademlia-py-rpcudp.pcap") == Counter({"Kademlia rpcudp": 60})


def test_gnutella_segments_of_whole_descriptors(registered):
    found = layers("gtkg123-plain-up2-3leaves.pcap")
    ours = sum(1 for r in dissect(CAPTURES / "gtkg123-plain-up2-3leaves.pcap")
               if r.protocol == "gnutella" and r.message not in ("handshake", "undecoded"))
    assert found["Gnutella"] >= 100 and found["Gnutella"] <= ours


def test_udp_tracker_found_by_content_on_its_port(registered):
    found = layers("tracker-01-opentracker-libtorrent-aria2.pcap")
    assert found["BT UDP tracker request"] == found["BT UDP tracker response"] == 11


def test_summary_and_show_read_like_the_dissector(registered):
    from p2pkit.capture.render import message_line

    packets = rdpcap(str(CAPTURES / "kad2-amule.pcap"))
    records = {r.frame: r for r in dissect(CAPTURES / "kad2-amule.pcap")}
    for number in (2, 24, 32):
        assert packets[number - 1].summary().endswith(message_line(records[number]))
    text = packets[23].show(dump=True)
    assert "emule-kad search_res (316 bytes)" in text and 'name: "TAG_FILENAME"' in text
    rpc = rdpcap(str(CAPTURES / "kademlia-py-rpcudp.pcap"))
    assert "kademlia-rpcudp request method=ping" in rpc[0].summary()


def test_other_traffic_is_untouched_and_unregister_restores_scapy(registered):
    dns = IP(bytes(IP(dst="127.0.0.1") / UDP(sport=5353, dport=53) / DNS()))
    assert DNS in dns
    kad = bytes(IP(dst="127.0.0.1") / UDP(sport=1234, dport=4321) / bytes.fromhex("e401"))
    assert IP(kad).lastlayer().name == "eMule Kad"
    unregister()
    assert isinstance(IP(kad).lastlayer(), Raw)
    assert "guess_payload_class" not in UDP.__dict__


def test_krpc_show_is_the_dissector_tree_on_the_bundled_sample(registered):
    # p2pkit/data/sample-bittorrent-utp-dht.pcap is the same file as ndpi-bittorrent_utp.pcap
    first = rdpcap(str(CAPTURES / "ndpi-bittorrent_utp.pcap"))[0]
    text = first.show(dump=True)
    assert "bt-dht query (104 bytes)" in text and 'method: "get_peers"' in text
    assert 'info_hash: "f7f601d8a6276f762c2c3df274af2827f8d1f1de"' in text
