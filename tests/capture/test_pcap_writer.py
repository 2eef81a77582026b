"""The pcap writer: what it writes, the readers and the dissector read back."""

from __future__ import annotations

import io

import pytest

from p2pkit.capture.dissect import dissect
from p2pkit.capture.packets import decode_frame
from p2pkit.capture.pcap_writer import MAX_SNAPLEN, PcapWriter, ip_packet
from p2pkit.capture.readers import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureReader
from p2pkit.dht import krpc


def test_frames_round_trip_with_times_and_link_type():
    out = io.BytesIO()
    with PcapWriter(out, LINKTYPE_ETHERNET) as w:
        w.write(b"\x01" * 60, 1_700_000_000.25)
        w.write(b"\x02" * 10, 1_700_000_001.000001, original_length=1500)
    frames = list(CaptureReader(io.BytesIO(out.getvalue())))
    assert [(f.number, f.linktype, f.data, f.original_length) for f in frames] == [
        (1, LINKTYPE_ETHERNET, b"\x01" * 60, 60), (2, LINKTYPE_ETHERNET, b"\x02" * 10, 1500)]
    assert frames[0].time == pytest.approx(1_700_000_000.25)
    assert frames[1].time == pytest.approx(1_700_000_001.000001)


def test_made_up_tcp_and_udp_packets_decode_as_written():
    tcp = decode_frame(_frame(ip_packet("tcp", ("127.0.0.1", 4000), ("127.0.0.2", 6881), b"hi",
                                        seq=2**32 + 5, ack=7, flags="PA")))
    assert (tcp.transport, tcp.src, tcp.dst, tcp.payload, tcp.seq, tcp.ack) == (
        "tcp", "127.0.0.1:4000", "127.0.0.2:6881", b"hi", 5, 7)
    udp = decode_frame(_frame(ip_packet("udp", ("::1", 5), ("::1", 6881), b"x")))
    assert (udp.transport, udp.src, udp.dst, udp.payload) == ("udp", "[::1]:5", "[::1]:6881",
                                                              b"x")


def test_the_dissector_reads_a_written_session(tmp_path):
    ping = krpc.encode(krpc.query("ping", b"aa", id=bytes(20)))
    path = tmp_path / "s.pcap"
    with PcapWriter(path, LINKTYPE_RAW) as w:
        w.write(ip_packet("udp", ("127.0.0.1", 1000), ("127.0.0.2", 6881), ping), 1.0)
    (record,) = list(dissect(path))
    assert (record.protocol, record.message, record.src) == ("bt-dht", "query",
                                                             "127.0.0.1:1000")


def test_a_packet_beyond_the_snaplen_is_refused():
    with pytest.raises(ValueError, match="snaplen"):
        PcapWriter(io.BytesIO(), LINKTYPE_RAW).write(bytes(MAX_SNAPLEN + 1), 0.0)


def _frame(data: bytes):
    from p2pkit.capture.readers import Frame

    return Frame(1, 0.0, LINKTYPE_RAW, data, len(data), 0)
