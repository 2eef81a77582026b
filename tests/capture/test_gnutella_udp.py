"""Gnutella over UDP: one descriptor per datagram, decoded with the TCP side's schemas and
found through the registry (issue 12)."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import registry
from p2pkit.capture.dissect import dissect
from p2pkit.capture.packets import Packet, decode_frame
from p2pkit.capture.readers import read_frames
from p2pkit.capture.record import UNDECODED_REASONS, json_fields
from p2pkit.gnutella.descriptors import DescriptorLenient
from p2pkit.gnutella.dissect import GnutellaDatagrams
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader
from tests.capture.test_undecoded import Wire
from tests.pcap_payloads import CAPTURES, tcp_streams


def test_the_registry_offers_gnutella_datagrams():
    assert "gnutella" in [d.name for d in registry.datagram_protocols()]
    assert registry.get("gnutella").transports == ("tcp", "udp")


def test_real_gnutella_udp_traffic_is_decoded():
    """gtk-gnutella's UDP side in the nDPI capture: pings, pongs, queries, vendor messages,
    and gtk-gnutella's own DHT messages (0x44, kept as ``unknown`` with a deviation)."""
    records = [r for r in dissect(CAPTURES / "ndpi-gnutella.pcap")
               if r.protocol == "gnutella" and r.transport == "udp"]
    kinds = Counter(r.message for r in records)
    assert kinds["ping"] > 100 and kinds["pong"] > 50 and kinds["query"] > 10
    assert kinds["vendor_message"] > 0 and kinds["unknown"] > 100
    datagrams = {f.number: p.payload for f in read_frames(CAPTURES / "ndpi-gnutella.pcap")
                 if (p := decode_frame(f)) is not None and p.transport == "udp"}
    for r in records[:300]:  # the same schema as the TCP side, field for field
        payload = datagrams[r.frame]
        expected = json_fields(DescriptorLenient.parse(payload))
        expected["guid"] = payload[:16].hex()
        assert r.fields == expected
    pongs = [r for r in records if r.message == "pong"]
    assert any(r.fields["extensions"] for r in pongs)  # GGEP


def _tcp_descriptors(name: str) -> list[bytes]:
    out = []
    for stream in tcp_streams(name).values():
        if not stream.startswith(b"GNUTELLA"):
            continue
        reader = StreamReader(strict=False)
        try:
            frames = reader.feed(stream)
        except Exception:  # noqa: BLE001 - a stream cut by the capture
            continue
        out += [f.data for f in frames if isinstance(f, DescriptorFrame)]
    return out


def test_descriptors_sent_over_udp_decode_as_over_tcp():
    """Every descriptor gtk-gnutella 1.2.3 sent over TCP (GGEP pongs, query hits with GGEP
    and the GTKG trailer, vendor messages, QRP, HSEP, pushes), sent again as UDP datagrams,
    gives the records the TCP side gave."""
    raw = _tcp_descriptors("gtkg123-plain-up2-3leaves.pcap")
    assert len(raw) > 50
    w = Wire()
    for data in raw:
        w.udp(("10.0.0.1", 6346), ("10.0.0.2", 6346), data)
    udp_records = w.records()
    assert {r.protocol for r in udp_records} == {"gnutella"}
    tcp_records = [r for r in dissect(CAPTURES / "gtkg123-plain-up2-3leaves.pcap")
                   if r.protocol == "gnutella" and "guid" in r.fields]

    def key(r):
        return r.message, json.dumps(r.fields, sort_keys=True)

    assert Counter(map(key, udp_records)) == Counter(map(key, tcp_records))
    assert {"query_hit", "vendor_message", "pong"} <= {r.message for r in udp_records}


def _header(kind: int, length: int, ttl: int = 1, hops: int = 0) -> bytes:
    return bytes(16) + bytes([kind, ttl, hops]) + length.to_bytes(4, "little")


def test_truncated_and_malformed_gnutella_datagrams_are_undecoded():
    w = Wire()
    a, b = ("10.0.0.1", 6346), ("10.0.0.2", 6346)
    w.udp(a, b, _header(0x01, 14) + b"\x01\x02")                 # pong, 12 bytes missing
    w.udp(a, b, _header(0x80, 3) + b"\x00\x00\x00")               # query without its NUL end
    records = w.records()
    assert [(r.protocol, r.message) for r in records][0] == ("gnutella", "undecoded")
    assert records[0].fields["reason"] == "truncated" and records[0].fields["at"] == 19


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=300), st.integers(0, 40))
def test_random_and_truncated_gnutella_datagrams_give_only_records(kind, body, cut):
    payload = _header(kind, len(body)) + body
    decoder = GnutellaDatagrams()
    for data in (payload, payload[:max(0, len(payload) - cut)]):
        pkt = Packet(1, 0.0, "udp", "10.0.0.1", 6346, "10.0.0.2", 6346, data)
        for forced in (False, True):
            for r in decoder.datagram(pkt, forced=forced) or []:
                assert r.protocol == "gnutella"
                if r.message == "undecoded":
                    assert r.fields["reason"] in UNDECODED_REASONS
