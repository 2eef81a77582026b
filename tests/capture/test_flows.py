"""TCP reassembly: real captures against a simple reference, and adversarial segmentations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.flows import StreamData, StreamEnd, StreamGap, TcpReassembler
from p2pkit.capture.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet, decode_frame
from p2pkit.capture.readers import read_frames
from tests.pcap_payloads import CAPTURES, tcp_streams


def reassemble(packets):
    r = TcpReassembler()
    events = []
    for p in packets:
        events += r.packet(p)
    events += r.finish()
    return r, events


def streams_of(events):
    out: dict[tuple[int, str], bytearray] = {}
    for e in events:
        if isinstance(e, StreamData):
            buf = out.setdefault((e.connection, e.src), bytearray())
            assert e.offset == len(buf)  # in order, each byte once
            buf += e.data
        elif isinstance(e, StreamGap):
            out.setdefault((e.connection, e.src), bytearray()).extend(b"\0" * e.length)
    return out


@pytest.mark.parametrize("name", ["bt-02-libtorrent-magnet-ut_metadata-pex.pcap",
                                  "gtkg123-plain-up2-3leaves.pcap", "ndpi-bittorrent.pcap"])
def test_real_captures_match_reference_streams(name):
    packets = [p for f in read_frames(CAPTURES / name) if (p := decode_frame(f))
               and p.transport == "tcp"]
    r, events = reassemble(packets)
    ours = {}
    for (_cid, src), data in streams_of(events).items():
        ours.setdefault(src, []).append(bytes(data))
    ref = tcp_streams(name)
    for (src, _dst), data in ref.items():
        key = f"{src[0]}:{src[1]}"
        if data:
            assert any(d.startswith(data) for d in ours[key]), key
    assert not any(isinstance(e, StreamGap) for e in events) or name == "ndpi-bittorrent.pcap"
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert {e.reason for e in ends} <= {"fin", "rst", "capture-end"}


def test_capture_starting_mid_stream_is_marked():
    packets = [p for f in read_frames(CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap")
               if (p := decode_frame(f)) and p.transport == "tcp"]
    def by_direction(events):
        out: dict[tuple[str, str], bytes] = {}
        for e in events:
            if isinstance(e, StreamData):
                out[e.src, e.dst] = out.get((e.src, e.dst), b"") + e.data
        return out

    whole = by_direction(reassemble(packets)[1])
    r = TcpReassembler()
    events = []
    marked = []
    for p in packets[40:]:  # as if the capture had started later
        new = r.packet(p)
        for e in new:
            if isinstance(e, StreamData) and e.offset == 0:
                marked.append(r.direction(e.connection, e.src).mid_stream)
        events += new
    events += r.finish()
    assert marked and marked[0]  # connections opened after the cut start with a SYN
    cut = by_direction(events)
    assert any(len(cut[k]) < len(whole[k]) for k in cut)
    for key, data in cut.items():  # each direction seen from mid-way is a suffix of the whole
        assert whole[key].endswith(data)


def _pkt(seq, data=b"", flags=TCP_ACK, missing=0, src="10.0.0.1", sport=5000):
    return Packet(0, 0.0, "tcp", src, sport, "10.0.0.2", 6881, data, seq & 0xFFFFFFFF, 0,
                  flags, missing)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(0, 2**32 - 1), st.randoms(),
       st.integers(0, 3))
def test_any_segmentation_order_and_duplication_reassembles(payload, isn, rnd, dup_every):
    # cut the stream into segments, duplicate some, overlap some, shuffle locally
    cuts = sorted(rnd.sample(range(1, len(payload)), min(len(payload) - 1, rnd.randint(0, 20))))
    bounds = list(zip([0, *cuts], [*cuts, len(payload)]))
    segs = [_pkt(isn + 1 + a, payload[a:b]) for a, b in bounds]
    if dup_every:
        segs += [_pkt(isn + 1 + a, payload[a:min(len(payload), b + 5)])
                 for a, b in bounds[::dup_every]]
    rnd.shuffle(segs)
    r, events = reassemble([_pkt(isn, flags=TCP_SYN), *segs])
    assert streams_of(events) == {(1, "10.0.0.1:5000"): bytearray(payload)}
    assert not any(isinstance(e, StreamGap) for e in events)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=10, max_size=2000), st.integers(0, 2**32 - 1), st.randoms())
def test_lost_segments_become_gaps_of_the_right_size(payload, isn, rnd):
    cuts = sorted(rnd.sample(range(1, len(payload)), min(len(payload) - 1, 8)))
    bounds = list(zip([0, *cuts], [*cuts, len(payload)]))
    lost = {i for i in range(len(bounds) - 1) if rnd.random() < 0.3}  # never the last one
    segs = [_pkt(isn + 1 + a, payload[a:b]) for i, (a, b) in enumerate(bounds) if i not in lost]
    r, events = reassemble([_pkt(isn, flags=TCP_SYN), *segs])
    expected = bytearray(payload)
    for i in lost:
        a, b = bounds[i]
        expected[a:b] = b"\0" * (b - a)
    assert streams_of(events)[(1, "10.0.0.1:5000")] == expected
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert sum(g.length for g in gaps) == sum(bounds[i][1] - bounds[i][0] for i in lost)


def test_snaplen_missing_tail_is_a_gap_then_stream_continues():
    r, events = reassemble([_pkt(0, flags=TCP_SYN), _pkt(1, b"abc", missing=5),
                            _pkt(9, b"xyz")])
    kinds = [(type(e).__name__, e.offset) for e in events]
    assert kinds == [("StreamData", 0), ("StreamGap", 3), ("StreamData", 8),
                     ("StreamEnd", 11)]


def test_fin_waits_for_held_data_and_rst_flushes():
    r = TcpReassembler()
    assert r.packet(_pkt(0, flags=TCP_SYN)) == []
    assert r.packet(_pkt(4, b"def", flags=TCP_FIN | TCP_ACK)) == []
    events = r.packet(_pkt(1, b"abc"))
    assert [type(e).__name__ for e in events] == ["StreamData", "StreamData", "StreamEnd"]
    assert events[-1].reason == "fin" and events[-1].offset == 6
    r2 = TcpReassembler()
    r2.packet(_pkt(0, flags=TCP_SYN))
    r2.packet(_pkt(10, b"late"))
    events = r2.packet(_pkt(1, flags=TCP_RST))
    assert [type(e).__name__ for e in events] == ["StreamGap", "StreamData", "StreamEnd"]


def test_sequence_wraparound():
    isn = 2**32 - 3
    r, events = reassemble([_pkt(isn, flags=TCP_SYN), _pkt(isn + 1, b"abcd"),
                            _pkt(isn + 5, b"efgh")])
    assert streams_of(events)[(1, "10.0.0.1:5000")] == b"abcdefgh"


def test_port_reuse_starts_a_new_connection():
    r, events = reassemble([_pkt(0, flags=TCP_SYN), _pkt(1, b"one", flags=TCP_FIN | TCP_ACK),
                            _pkt(500, flags=TCP_SYN), _pkt(501, b"two")])
    assert streams_of(events) == {(1, "10.0.0.1:5000"): b"one", (2, "10.0.0.1:5000"): b"two"}


def test_pending_bound_declares_a_gap(monkeypatch):
    import p2pkit.capture.flows as flows

    monkeypatch.setattr(flows, "MAX_PENDING_BYTES", 100)
    r = TcpReassembler()
    r.packet(_pkt(0, flags=TCP_SYN))
    events = []
    for i in range(5):
        events += r.packet(_pkt(1001 + 40 * i, bytes(40)))
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert gaps and gaps[0].offset == 0 and gaps[0].length == 1000


def test_closed_connections_are_forgotten():
    r = TcpReassembler()
    for i in range(2000):
        client = dict(src="10.0.0.1", sport=10000 + i)
        for seq, data, flags in ((0, b"", TCP_SYN), (1, b"hello", TCP_ACK),
                                 (6, b"", TCP_FIN | TCP_ACK)):
            r.packet(_pkt(seq, data, flags, **client))
        for seq, data, flags in ((100, b"", TCP_SYN | TCP_ACK), (101, b"", TCP_FIN | TCP_ACK)):
            r.packet(Packet(0, 0.0, "tcp", "10.0.0.2", 6881, "10.0.0.1", 10000 + i, data,
                            seq, 0, flags))
    assert r._connections == {} and r._by_id == {}
