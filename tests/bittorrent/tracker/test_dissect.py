"""The BEP 15 datagram decoder's quick refusal: a datagram whose first byte is not zero is
no connect request and no response, and no other request before a connection id is known."""

from __future__ import annotations

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
