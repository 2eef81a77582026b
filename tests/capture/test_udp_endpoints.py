"""The fast path's UDP endpoint texts (one per endpoint, kept in a bounded table) against the
texts :class:`~p2pkit.capture.packets.Packet` formats, and the datagram records of the
fast path against the full path on the DHT capture."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from p2pkit.capture import dissect as dissect_module
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.packets import EndpointPacket, Packet
from p2pkit.capture.render import render_summary
from tests.pcap_payloads import CAPTURES


@given(st.binary(min_size=4, max_size=4), st.integers(0, 65535),
       st.binary(min_size=4, max_size=4), st.integers(0, 65535))
def test_endpoint_texts_are_the_packet_texts(source, sport, destination, dport):
    endpoints: dict = {}
    named = Dissection._endpoint(endpoints, source, sport)
    to = Dissection._endpoint(endpoints, destination, dport)
    plain = Packet(1, 0.0, "udp", named[0], sport, to[0], dport, b"x")
    fast = EndpointPacket(1, 0.0, "udp", named[0], sport, to[0], dport, b"x", 0, 0, 0, 0,
                          named[1], to[1])
    assert (fast.src, fast.dst) == (plain.src, plain.dst)
    assert endpoints[(source, sport)] == named
    # a copy (uTP re-slices a datagram with dataclasses.replace) keeps the texts
    assert replace(fast, payload=b"y").src == plain.src


def test_the_endpoint_table_is_bounded(monkeypatch):
    monkeypatch.setattr(dissect_module, "MAX_ENDPOINTS", 3)
    endpoints: dict = {}
    for port in range(10):
        Dissection._endpoint(endpoints, b"\x7f\x00\x00\x01", port)
        assert len(endpoints) <= 3


def test_small_endpoint_table_same_records_as_the_full_path(monkeypatch):
    # the table emptied every few datagrams: the records are still the full path's
    monkeypatch.setattr(dissect_module, "MAX_ENDPOINTS", 2)
    name = CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"
    fast = [(r.src, r.dst, render_summary(r, 0.0)) for r in Dissection(name)]
    full = [(r.src, r.dst, render_summary(r, 0.0)) for r in Dissection(name, fast=False)]
    assert fast == full and len(fast) > 100


def _datagrams(name, fast: bool, monkeypatch) -> list[tuple]:
    """Every packet the datagram dissector is handed, as the values of Packet's fields."""
    from p2pkit.capture.datagrams import DatagramDissector

    seen = []
    records = DatagramDissector.records

    def spy(self, pkt, protocol=None):
        seen.append(tuple(getattr(pkt, f) for f in (
            "frame", "time", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
            "payload", "seq", "ack", "flags", "missing", "src", "dst")))
        return records(self, pkt, protocol)

    with monkeypatch.context() as m:
        m.setattr(DatagramDissector, "records", spy)
        for _ in Dissection(name, fast=fast):
            pass
    return seen


def test_the_fast_path_s_udp_packets_are_decode_frame_s(monkeypatch):
    """The fast path sets an EndpointPacket's slots itself: the same values decode_frame's
    Packet has, for every datagram."""
    for name in (CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap",
                 CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap"):
        fast = _datagrams(name, True, monkeypatch)
        assert fast == _datagrams(name, False, monkeypatch) and len(fast) > 20
