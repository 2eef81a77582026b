"""The dissection pipeline on real captures: uTP-carried BitTorrent, UDP trackers, damage."""

from __future__ import annotations

import io
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import decode, encode
from p2pkit.capture.datagrams import DatagramDissector
from p2pkit.capture.detect import parse_decode_as
from p2pkit.capture.dissect import Dissection, Dissector, dissect
from p2pkit.capture.packets import decode_frame
from p2pkit.capture.readers import read_frames
from tests.pcap_payloads import CAPTURES

TORRENTS = CAPTURES.parent / "torrents"


def _total_length(torrent: str) -> int:
    info = decode((TORRENTS / torrent).read_bytes())[b"info"]
    if b"length" in info:
        return info[b"length"]
    return sum(f[b"length"] for f in info[b"files"])


def test_bittorrent_over_utp_carries_the_whole_torrent():
    records = list(dissect(CAPTURES / "bt-04-libtorrent-utp-only.pcap"))
    pieces = [r for r in records if r.protocol == "bittorrent" and r.message == "piece"]
    assert {r.transport for r in pieces} == {"utp"}
    assert sum(r.fields["piece"]["length"] for r in pieces) == _total_length(
        "bt-04-libtorrent-utp-only.torrent")
    requests = {(r.fields["index"], r.fields["begin"]) for r in records if r.message == "request"}
    assert requests == {(r.fields["index"], r.fields["begin"]) for r in pieces}
    handshakes = [r for r in records if r.message == "handshake"]
    assert len(handshakes) == 2
    kinds = Counter(r.message for r in records if r.protocol == "bt-utp")
    assert kinds["st_syn"] == 1 and kinds["st_data"] > 1000


def _utp_records(packets):
    d = DatagramDissector()
    out = []
    for p in packets:
        out += d.datagram(p)
    out += d.finish()
    return [r for r in out if r.protocol == "bittorrent"]


def _utp_packets():
    return [p for f in read_frames(CAPTURES / "bt-04-libtorrent-utp-only.pcap")
            if (p := decode_frame(f)) and p.transport == "udp"]


def test_utp_reordering_and_duplicates_do_not_change_the_messages():
    packets = _utp_packets()
    def per_direction(records):
        out: dict[str, list] = {}
        for r in records:
            out.setdefault(r.src, []).append((r.message, r.fields.get("index"),
                                              r.fields.get("begin")))
        return out

    reference = per_direction(_utp_records(packets))
    rnd = random.Random(7)
    shuffled = list(packets)
    for i in range(0, len(shuffled) - 8, 8):  # local reordering, as on a real network
        window = shuffled[i:i + 8]
        rnd.shuffle(window)
        shuffled[i:i + 8] = window
    shuffled += rnd.sample(packets, 100)  # late duplicates
    assert per_direction(_utp_records(shuffled)) == reference


def test_a_lost_utp_packet_costs_only_the_messages_it_carried():
    packets = _utp_packets()
    reference = _utp_records(packets)
    data_packets = [i for i, p in enumerate(packets) if p.payload[:1] == b"\x01"]
    lost = data_packets[len(data_packets) // 2]
    damaged = _utp_records(packets[:lost] + packets[lost + 1:])
    assert not [r for r in reference if r.message == "undecoded"]
    skipped = [r for r in damaged if r.message == "undecoded"]
    damaged = [r for r in damaged if r.message != "undecoded"]
    assert len(reference) - 2 <= len(damaged) < len(reference)
    assert Counter(r.message for r in damaged)["piece"] >= 126
    # nothing disappears silently: what was skipped around the hole is said, and why
    assert skipped and {r.fields["reason"] for r in skipped} <= {"truncated", "after a gap"}
    assert all(r.fields["bytes"] == r.length > 0 for r in skipped)


def test_udp_tracker_requests_and_responses_pair_up():
    records = [r for r in dissect(CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap")
               if r.protocol == "bt-tracker"]
    assert records
    requests = Counter(r.fields["transaction_id"] for r in records
                       if r.fields["direction"] == "request")
    responses = Counter(r.fields["transaction_id"] for r in records
                        if r.fields["direction"] == "response")
    assert requests == responses
    # the answers are of the kind asked, but for opentracker's "Connection ID missmatch"
    kinds = {(r.fields["transaction_id"], r.fields["direction"]): r.message for r in records}
    mismatched = {t for (t, d), m in kinds.items() if d == "response" and m == "error"}
    assert all(m == kinds[(t, "response")] for (t, d), m in kinds.items()
               if d == "request" and t not in mismatched)
    assert len(mismatched) == 4
    for r in records:
        if r.message == "announce" and r.fields["direction"] == "request":
            assert len(r.fields["info_hash"]) == 40 and r.fields["port"] > 0


def test_decode_as_forces_a_protocol_on_a_port():
    packets = [p for f in read_frames(CAPTURES / "bt-04-libtorrent-utp-only.pcap")
               if (p := decode_frame(f))]
    forced = Dissector(decode_as=[parse_decode_as("udp.port==6881,bt-tracker")])
    records = [r for p in packets for r in forced.packet(p)]
    assert not any(r.protocol == "bt-utp" for r in records)


def test_truncated_capture_gives_partial_results_and_an_error():
    data = (CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap").read_bytes()
    full = sum(1 for _ in dissect(io.BytesIO(data)))
    d = Dissection(io.BytesIO(data[: len(data) // 2]))
    partial = list(d)
    assert 0 < len(partial) < full
    assert d.error is not None and d.error.offset is not None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_corrupted_captures_never_raise(data):
    name = data.draw(st.sampled_from(["ndpi-bittorrent.pcap", "ndpi-bittorrent_utp.pcap",
                                      "ndpi-bittorrent_tcp_miss.pcapng"]))
    raw = bytearray((CAPTURES / name).read_bytes()[:40000])
    for _ in range(data.draw(st.integers(1, 30))):
        i = data.draw(st.integers(24, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    d = Dissection(io.BytesIO(bytes(raw)))
    for record in d:
        assert record.protocol and record.message


def test_http_tracker_requests_and_responses_pair_up():
    records = [r for r in dissect(CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap")
               if r.protocol == "bt-tracker-http"]
    requests = [r for r in records if r.fields["direction"] == "request"]
    responses = [r for r in records if r.fields["direction"] == "response"]
    assert requests and len(requests) == len(responses)
    assert Counter(r.message for r in requests) == Counter(r.message for r in responses)
    for r in requests:
        if r.message == "announce":
            assert len(r.fields["info_hash"]) == 40 and r.fields["port"] in range(6881, 6890)
    assert all(r.fields["status"] == 200 for r in responses)


def test_extended_messages_are_named_by_the_receivers_handshake():
    records = [r for r in dissect(CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap")
               if r.message == "extended"]
    names = Counter(r.fields.get("extension") for r in records)
    assert names["handshake"] >= 2 and names["ut_metadata"] >= 2 and names["ut_pex"] >= 1
    info = decode((TORRENTS / "bt-02-libtorrent-magnet-ut_metadata-pex.torrent").read_bytes())
    metadata_size = len(encode(info[b"info"]))
    data = [r for r in records if r.fields.get("extension") == "ut_metadata"
            and r.fields["message"]["msg_type"] == "data"]
    assert data and all(r.fields["message"]["total_size"] == metadata_size for r in data)


def test_non_canonical_extension_handshakes_are_reported_as_deviations():
    records = [r for r in dissect(CAPTURES / "ndpi-bittorrent.pcap")
               if r.fields.get("extension") == "handshake"]
    utorrent = [r for r in records if "Torrent" in r.fields["message"].get("v", "")]
    assert utorrent
    for r in utorrent:
        assert "bencode/dict/unsorted-keys" in {d.rule for d in r.deviations}
        assert all(r.offset < d.offset < r.offset + r.length for d in r.deviations)


def test_gnutella_captures_decode_every_direction():
    for name in ("gtkg123-plain-up2-3leaves.pcap", "ndpi-gnutella.pcap"):
        d = Dissection(CAPTURES / name)
        records = [r for r in d if r.protocol == "gnutella"]
        kinds = Counter(r.message for r in records)
        assert kinds["handshake"] and kinds["query_hit"] and kinds["http_response"]
        for direction in d.dissector._directions.values():
            decoder = direction.decoder
            if decoder is not None:
                assert getattr(decoder, "failed", None) is None, (name, direction.src)
    gtkg = Counter(r.message for r in dissect(CAPTURES / "gtkg123-plain-up2-3leaves.pcap"))
    assert gtkg["giv"] == 1 and gtkg["push"] >= 1 and gtkg["http_body"] == 2


def test_netbios_datagrams_that_look_like_utp_are_not_taken_for_utp():
    # ndpi-gnutella.pcap holds NetBIOS datagrams (UDP 138) whose first byte 0x11 reads as a
    # uTP st_fin header; with no SYN and no reply they are no evidence of a uTP connection.
    records = list(dissect(CAPTURES / "ndpi-gnutella.pcap"))
    assert not [r for r in records if r.protocol == "bt-utp"]


def test_field_spans_point_at_the_field_bytes():
    from tests.pcap_payloads import tcp_streams

    streams = {f"{s[0]}:{s[1]}>{d[0]}:{d[1]}": data
               for (s, d), data in tcp_streams("bt-02-libtorrent-magnet-ut_metadata-pex.pcap").items()}
    checked = 0
    for r in dissect(CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"):
        if r.message not in ("request", "have", "handshake"):
            continue
        stream = streams[f"{r.src}>{r.dst}"]
        for name, (start, end) in r.spans.items():
            raw = stream[r.offset + start:r.offset + end]
            value = r.fields[name]
            if isinstance(value, int):
                assert int.from_bytes(raw, "big") == value
            elif name in ("info_hash", "peer_id"):
                assert raw.hex() == value
            checked += 1
    assert checked > 900  # 260 requests x 3 fields, 186 haves, 10 handshakes x 3


def test_the_utp_acceptor_side_comes_out_as_soon_as_it_is_in_order():
    """BEP 29: the side that answers the SYN starts its sequence at its ST_STATE's seq_nr;
    its messages must not wait for ~32 packets (and so the opener's extension messages are
    named by the acceptor's extension handshake, decoded first)."""
    d = DatagramDissector()
    produced_at = {}
    for p in _utp_packets():
        for r in d.datagram(p):
            if r.protocol == "bittorrent":
                produced_at.setdefault((r.src, r.message), p.frame)
                assert r.frame == p.frame  # produced by the packet that completes it
                if r.message == "extended":
                    assert "extension" in r.fields, r
    assert produced_at[("127.0.0.2:6881", "handshake")] == 5
    assert produced_at[("127.0.0.3:6882", "handshake")] == 3


def _shifted(packet, by):
    """The same uTP packet with seq_nr and ack_nr moved by ``by`` (a new connection's ISN)."""
    from dataclasses import replace as dc_replace

    raw = bytearray(packet.payload)
    for at in (16, 18):
        raw[at:at + 2] = ((int.from_bytes(raw[at:at + 2], "big") + by) & 0xFFFF).to_bytes(2, "big")
    return dc_replace(packet, payload=bytes(raw), frame=packet.frame + 100_000)


def test_a_utp_connection_reusing_addresses_and_ids_is_a_new_connection():
    packets = _utp_packets()
    again = [_shifted(p, 1000) for p in packets]  # same addresses, same connection ids
    once = Counter(r.message for r in _utp_records(packets))
    twice = Counter(r.message for r in _utp_records(packets + again))
    assert twice["handshake"] == 2 * once["handshake"] == 4
    assert twice["piece"] == 2 * once["piece"]
    assert not twice["undecoded"]


def test_a_utp_reset_ends_the_connection_lifetime():
    packets = _utp_packets()
    reset = bytearray(packets[-1].payload)
    reset[0] = 0x31  # ST_RESET, version 1
    from dataclasses import replace as dc_replace

    cut = len(packets) // 2
    records = _utp_records(packets[:cut] + [dc_replace(packets[-1], payload=bytes(reset))]
                           + [_shifted(p, 3000) for p in packets])
    assert Counter(r.message for r in records)["handshake"] == 4


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x01, 0x11, 0x21, 0x31, 0x41]), st.integers(0, 3),
                          st.integers(0, 6), st.integers(0, 6), st.binary(max_size=80),
                          st.booleans()), max_size=30))
def test_random_utp_lifetimes_give_only_records(packets):
    """SYNs, resets, FINs, data and states in any order, on two connection ids, both ways:
    records only, and every record is uTP, BitTorrent or undecoded."""
    from p2pkit.capture.packets import Packet

    d = DatagramDissector()
    out = []
    for frame, (type_ver, cid, seq, ack, payload, forward) in enumerate(packets, 1):
        header = bytes([type_ver, 0]) + (100 + cid).to_bytes(2, "big") + bytes(12) + (
            (7 + seq).to_bytes(2, "big") + (9 + ack).to_bytes(2, "big"))
        a, b = ("10.0.0.1", 5000), ("10.0.0.2", 6000)
        src, dst = (a, b) if forward else (b, a)
        out += d.datagram(Packet(frame, float(frame), "udp", *src, *dst, header + payload))
    out += d.finish()
    assert {r.protocol for r in out} <= {"bt-utp", "bittorrent", "data", "gnutella", "bt-dht",
                                         "bt-tracker"}


def test_fast_batches_gather_records_over_frames_and_keep_every_record_in_order():
    """The fast path yields a batch once BATCH_RECORDS records have gathered (the last
    frames' and the finish's records after the loop); the records, in order, are the
    frame-by-frame path's."""
    from p2pkit.capture.dissect import BATCH_RECORDS
    from p2pkit.capture.render import render_summary

    for name in ("bt-02-libtorrent-magnet-ut_metadata-pex.pcap", "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"):
        path = CAPTURES / name
        batches = list(Dissection(path).batches())
        assert all(batches)
        assert all(len(b) >= BATCH_RECORDS for b in batches[:-2])
        fast = [render_summary(r, 0.0) for b in batches for r in b]
        slow = [render_summary(r, 0.0) for r in Dissection(path, fast=False)]
        assert fast == slow and len(fast) > 2 * BATCH_RECORDS
