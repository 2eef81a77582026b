"""The BEP 15 datagram decoder's quick refusal: a datagram whose first byte is not zero is
no connect request and no response, and no other request before a connection id is known."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker.dissect import UdpTrackerDecoder
from p2pkit.capture.packets import Packet
from tests.pcap_payloads import udp_datagrams

TRACKER01 = "tracker-01-opentracker-libtorrent-aria2.pcap"


def _packet(n: int, src, dst, payload: bytes) -> Packet:
    return Packet(frame=n, time=0.0, transport="udp", src_ip=src[0], src_port=src[1],
                  dst_ip=dst[0], dst_port=dst[1], payload=payload)


def test_every_packet_of_the_capture_is_decoded_in_order():
    decoder = UdpTrackerDecoder()
    datagrams = udp_datagrams(TRACKER01)
    records = [decoder.datagram(_packet(n, *d)) for n, d in enumerate(datagrams, 1)]
    assert all(r is not None for r in records)
    # libtorrent's announce carries the connection id opentracker gave (first byte 0xff)
    announce = next(i for i, (_, _, p) in enumerate(datagrams) if p[0] == 0xFF)
    assert records[announce][0].message == "announce"


def test_refused_before_a_connection_id_is_known():
    datagrams = udp_datagrams(TRACKER01)
    announce = next(d for d in datagrams if d[2][0] == 0xFF)
    assert UdpTrackerDecoder().datagram(_packet(1, *announce)) is None
    krpc = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    assert UdpTrackerDecoder().datagram(_packet(1, ("10.0.0.1", 1), ("10.0.0.2", 2), krpc)) \
        is None


def _refused_at_once(decoder: UdpTrackerDecoder, pkt: Packet) -> bool:
    """What ``detect`` stands for: the stateless detector says no, or ``datagram`` gives None
    (it has no state to change then)."""
    from p2pkit.bittorrent.tracker.dissect import detect_udp_tracker

    return not detect_udp_tracker(pkt.payload) or decoder.datagram(pkt) is None


def test_detect_refuses_only_what_datagram_refuses():
    """On every UDP datagram of committed captures of each UDP protocol (tracker, DHT, uTP,
    Kad, rpcudp), fed in order to one decoder: ``detect`` says no only when the datagram gives
    no record (and every tracker packet is let through)."""
    for name in (TRACKER01, "dht-02-bep44-put-get.pcap", "bt-04-libtorrent-utp-only.pcap",
                 "kad2-amule.pcap", "kademlia-py-rpcudp.pcap"):
        datagrams = udp_datagrams(name)
        decoder = UdpTrackerDecoder()
        let_through = 0
        for n, d in enumerate(datagrams, 1):
            pkt = _packet(n, *d)
            if decoder.detect(pkt.payload):
                let_through += 1
                decoder.datagram(pkt)
            else:
                assert _refused_at_once(decoder, pkt), (name, n)
        if name == TRACKER01:
            assert let_through == len(datagrams)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.booleans(), st.integers(0, 255))
def test_detect_on_random_datagrams(payload, connected, first):
    decoder = UdpTrackerDecoder()
    if connected:  # a connection id known (what a connect response leaves)
        decoder._connections[("", "10.0.0.2:2", 7)] = True
    payload = bytes([first]) + payload
    pkt = _packet(1, ("10.0.0.1", 1), ("10.0.0.2", 2), payload)
    if not decoder.detect(payload):
        assert _refused_at_once(decoder, pkt)
    else:
        assert len(payload) >= 8 and (first == 0 or connected)
