"""uTP packets (BEP 29): real libtorrent and nDPI traffic, selective ACKs, limits, fuzzing."""

from __future__ import annotations

import io
from collections import Counter, defaultdict

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.utp import (
    MAX_EXTENSIONS,
    UtpPacket,
    acked_sequence_numbers,
    looks_like_utp,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from tests.pcap_payloads import udp_datagrams

LIBTORRENT = "bt-04-libtorrent-utp-only.pcap"
NDPI = "ndpi-bittorrent_utp.pcap"

# An ST_SYN from the libtorrent capture, field by field (BEP 29 §header format).
SYN = bytes.fromhex("4100eecf3dc32c2200000000000000001fb30000")
SYN_FIELDS = dict(type="st_syn", version=1, extension=0, connection_id=0xEECF,
                  timestamp_microseconds=0x3DC32C22, timestamp_difference_microseconds=0,
                  wnd_size=0, seq_nr=0x1FB3, ack_nr=0, extensions=[], payload=b"")


def common(schema, data: bytes, fields: dict) -> Container:
    """Parse ``data``, compare the named fields, and check that building gives ``data`` back."""
    obj = schema.parse(data)
    for name, value in fields.items():
        assert obj[name] == value, name
    assert schema.build(obj) == data
    return obj


def utp_packets(name: str) -> list[tuple[tuple, tuple, bytes]]:
    return [(src, dst, p) for src, dst, p in udp_datagrams(name) if looks_like_utp(p)]


def test_syn_fields():
    common(UtpPacket, SYN, SYN_FIELDS)


def test_build_from_fields_alone():
    fields = {k: v for k, v in SYN_FIELDS.items() if k not in ("version", "extension")}
    assert UtpPacket.build(fields) == SYN


@pytest.mark.parametrize("capture", [LIBTORRENT, NDPI])
def test_every_utp_packet_round_trips(capture):
    packets = utp_packets(capture)
    assert packets
    parsed = 0
    for _, _, data in packets:
        try:
            pkt = UtpPacket.parse(data)
        except ParseError:
            continue  # checked below: exactly one datagram of the nDPI capture is not uTP
        assert UtpPacket.build(pkt) == data
        parsed += 1
    expected_failures = 1 if capture == NDPI else 0
    assert parsed == len(packets) - expected_failures


def test_ndpi_datagram_that_only_looks_like_utp():
    # 23 bytes from 192.168.1.5: a 0x11 first byte, then an "extension 3" whose length byte
    # (0xcb = 203) runs past the end of the datagram. Not uTP; the error points at the record.
    data = bytes.fromhex("110353030000000000000000000000000000039a3ecb00")
    assert looks_like_utp(data)
    with pytest.raises(ParseError) as info:
        UtpPacket.parse(data)
    assert info.value.protocol == "bt-utp"
    assert info.value.path == "extensions"
    assert info.value.offset == 22


def _by_type(capture):
    counts = Counter()
    for _, _, data in utp_packets(capture):
        try:
            counts[UtpPacket.parse(data).type] += 1
        except ParseError:
            pass
    return counts


def test_libtorrent_counts_match_one_connection():
    counts = _by_type(LIBTORRENT)
    # One connection (127.0.0.3 dials 127.0.0.2): one SYN, both sides FIN once, data acked.
    assert counts["st_syn"] == 1
    assert counts["st_fin"] == 2
    assert counts["st_reset"] == 0
    assert counts["st_data"] > 1000
    assert counts["st_state"] > 0


@pytest.mark.parametrize("capture", [LIBTORRENT, NDPI])
def test_one_syn_per_connection_and_ids_follow_bep29(capture):
    # BEP 29 §ST_SYN: "all subsequent packets sent on this connection [...] are sent with the
    # connection ID + 1. The connection ID is what the other end is expected to use".
    syns = defaultdict(list)
    ids_seen = defaultdict(set)
    for src, dst, data in utp_packets(capture):
        try:
            pkt = UtpPacket.parse(data)
        except ParseError:
            continue
        if pkt.type == "st_syn":
            syns[(src, dst)].append(pkt.connection_id)
        else:
            ids_seen[(src, dst)].add(pkt.connection_id)
    assert syns
    for (initiator, acceptor), ids in syns.items():
        assert len(ids) == 1
        (conn_id,) = ids
        assert (conn_id + 1) & 0xFFFF in ids_seen[(initiator, acceptor)]
        assert conn_id in ids_seen[(acceptor, initiator)]


def test_sequence_numbers_count_packets_not_bytes():
    # BEP 29: "uTP sequence numbers are not referring to bytes, but packets"; ST_STATE "Packets
    # that don't include any payload do not increase the seq_nr"; after ST_FIN "This connection
    # will never have a sequence number greater than the sequence number in this packet".
    numbered = defaultdict(list)
    for src, dst, data in utp_packets(LIBTORRENT):
        pkt = UtpPacket.parse(data)
        if pkt.type != "st_state":
            numbered[(src, dst)].append((pkt.seq_nr, pkt.type))
    assert len(numbered) == 2
    for packets in numbered.values():
        seqs = [seq for seq, _ in packets]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no loss on loopback
        assert packets[-1][1] == "st_fin"
        assert all(kind == "st_data" for _, kind in packets[1:-1])


def test_syn_is_answered_by_state_acking_its_seq_nr():
    packets = [(s, d, UtpPacket.parse(p)) for s, d, p in utp_packets(LIBTORRENT)]
    index = next(i for i, (_, _, p) in enumerate(packets) if p.type == "st_syn")
    src, dst, syn = packets[index]
    reply = next(p for s, d, p in packets[index + 1:] if (s, d) == (dst, src))
    assert reply.type == "st_state"
    assert reply.ack_nr == syn.seq_nr
    assert reply.connection_id == syn.connection_id


def test_selective_acks_in_ndpi_capture():
    sacks = []
    for _, _, data in utp_packets(NDPI):
        try:
            pkt = UtpPacket.parse(data)
        except ParseError:
            continue
        if any(e.type == 1 for e in pkt.extensions):
            sacks.append(pkt)
    assert len(sacks) == 6
    # Each successive ACK of the same hole covers one more out-of-order packet.
    assert [ext.acked for p in sacks for ext in p.extensions] == [
        [2], [2, 3], [2, 3, 4], [2, 3, 4, 5], [2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7]]
    assert all(p.type == "st_state" and p.ack_nr == 59383 for p in sacks)
    assert acked_sequence_numbers(sacks[-1]) == list(range(59385, 59391))


def test_unknown_extensions_are_kept_raw():
    counts = Counter()
    for capture in (LIBTORRENT, NDPI):
        for _, _, data in utp_packets(capture):
            try:
                pkt = UtpPacket.parse(data)
            except ParseError:
                continue
            for ext in pkt.extensions:
                if ext.type != 1:
                    counts[(ext.type, ext.len, pkt.type)] += 1
                    assert len(ext.data) == ext.len
    # libtorrent's close reason (type 3) on its FINs; libutp's 8 extension bits (type 2).
    assert counts == {(3, 4, "st_fin"): 2, (3, 4, "st_state"): 1, (2, 8, "st_state"): 1}


def test_extension_chain_with_two_records():
    data = SYN[:1] + b"\x01" + SYN[2:] + b"\x02\x04\x01\x00\x00\x80" + b"\x00\x02\xab\xcd" + b"pl"
    pkt = common(UtpPacket, data, {"extension": 1, "payload": b"pl"})
    assert pkt.extensions == [Container(type=1, len=4, acked=[2, 33]),
                              Container(type=2, len=2, data=b"\xab\xcd")]


def test_selective_ack_length_is_rounded_to_32_bits_when_building():
    pkt = dict(SYN_FIELDS, type="st_state", extensions=[{"type": 1, "acked": [2, 40]}])
    data = UtpPacket.build(pkt)
    assert data[1] == 1 and data[20:22] == b"\x00\x08"
    assert UtpPacket.parse(data).extensions[0].acked == [2, 40]


def test_selective_ack_of_bad_length():
    # Only an empty bitmask is refused: libtorrent sends lengths that are not multiples of 4
    # (test_libtorrent_selective_acks_of_any_length).
    data = SYN[:1] + b"\x01" + SYN[2:] + bytes((0, 0))
    with pytest.raises(ParseError) as info:
        UtpPacket.parse(data)
    assert info.value.offset == 21


def test_extension_chain_is_bounded():
    chain = b"".join(b"\x02\x00" for _ in range(MAX_EXTENSIONS)) + b"\x00\x00"
    data = SYN[:1] + b"\x02" + SYN[2:] + chain
    with pytest.raises(LimitExceeded):
        UtpPacket.parse(data)
    ok = SYN[:1] + b"\x02" + SYN[2:] + chain[2:]
    assert len(UtpPacket.parse(ok).extensions) == MAX_EXTENSIONS


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (SYN[:19], "ack_nr"),
        (b"\x51" + SYN[1:], "_type_version -> type"),  # type 5 does not exist
        (b"\x42" + SYN[1:], "_type_version -> version"),  # version 2
    ],
)
def test_malformed_headers(data, path):
    with pytest.raises(ParseError) as info:
        UtpPacket.parse(data)
    assert info.value.path == path


def test_build_errors_are_build_errors():
    with pytest.raises(BuildError):
        UtpPacket.build(dict(SYN_FIELDS, type="st_bogus"))
    with pytest.raises(BuildError):
        UtpPacket.build(dict(SYN_FIELDS, extensions=[{"type": 1, "len": 4, "acked": [99]}]))
    with pytest.raises(BuildError):
        UtpPacket.build(dict(SYN_FIELDS, extensions=[{"type": 9, "data": bytes(300)}]))


def test_looks_like_utp_rejects_dht():
    kinds = Counter(looks_like_utp(p) for _, _, p in udp_datagrams(NDPI))
    assert kinds[False] == sum(p.startswith(b"d1:") for _, _, p in udp_datagrams(NDPI))


def generic_parse(data: bytes):
    """The construct parser alone, bypassing the fast path."""
    try:
        return UtpPacket.parse_stream(io.BytesIO(data))
    except ParseError as e:
        return type(e)


def fast_or_generic_parse(data: bytes):
    try:
        return UtpPacket.parse(data)
    except ParseError as e:
        return type(e)


@pytest.mark.parametrize("capture", [LIBTORRENT, NDPI])
def test_fast_path_agrees_with_the_schema_on_real_packets(capture):
    for _, _, data in udp_datagrams(capture):
        fast, generic = fast_or_generic_parse(data), generic_parse(data)
        assert repr(fast) == repr(generic)
        if not isinstance(fast, type):
            stream = io.BytesIO()
            UtpPacket.build_stream(fast, stream)
            assert UtpPacket.build(fast) == stream.getvalue() == data


# --------------------------------------------------------------------------- hypothesis

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def extensions(draw):
    items = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            length = 4 * draw(st.integers(1, 3))
            acked = sorted(draw(st.sets(st.integers(2, 1 + 8 * length), max_size=10)))
            items.append({"type": 1, "len": length, "acked": acked})
        else:
            items.append({"type": draw(st.integers(2, 255)), "data": draw(st.binary(max_size=40))})
    return items


packets = st.fixed_dictionaries({
    "type": st.sampled_from(["st_data", "st_fin", "st_state", "st_reset", "st_syn"]),
    "connection_id": u16,
    "timestamp_microseconds": u32,
    "timestamp_difference_microseconds": u32,
    "wnd_size": u32,
    "seq_nr": u16,
    "ack_nr": u16,
    "extensions": extensions(),
    "payload": st.binary(max_size=64),
})


@settings(max_examples=200, deadline=None)
@given(packets)
def test_round_trip(fields):
    data = UtpPacket.build(fields)
    generic = io.BytesIO()
    UtpPacket.build_stream(fields, generic)
    assert generic.getvalue() == data
    pkt = UtpPacket.parse(data)
    for name, value in fields.items():
        if name == "extensions":
            assert [e.type for e in pkt.extensions] == [e["type"] for e in value]
            assert [e.get("acked", e.get("data")) for e in pkt.extensions] == [
                e.get("acked", e.get("data")) for e in value]
        else:
            assert pkt[name] == value
    assert UtpPacket.build(pkt) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    assert repr(fast_or_generic_parse(data)) == repr(generic_parse(data))
    try:
        pkt = UtpPacket.parse(data)
    except ParseError:
        return
    assert UtpPacket.build(pkt) == data


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0x01, 0x11, 0x21, 0x31, 0x41, 0x51, 0x02, 0x40]),
       st.binary(min_size=19, max_size=40))
def test_fast_path_agrees_on_headers_without_extensions(first, rest):
    data = bytes([first, 0]) + rest[1:]
    assert repr(fast_or_generic_parse(data)) == repr(generic_parse(data))


REAL = [p for _, _, p in utp_packets(NDPI)][:40:3]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                       min_size=1, max_size=4), st.integers(0, 200))
def test_mutated_real_packets_raise_only_parse_error(data, flips, cut):
    mutated = bytearray(data)
    for pos, value in flips:
        if pos < len(mutated):
            mutated[pos] = value
    mutated = bytes(mutated[: max(cut, 0) or None])
    try:
        pkt = UtpPacket.parse(mutated)
    except ParseError:
        return
    assert UtpPacket.build(pkt) == mutated


@pytest.mark.parametrize("hexdata,length,first,count", [
    # libtorrent 2.0.8 (python3-libtorrent) acking p2pkit's data over uTP on loopback
    # (tests/interop/test_utp_interop.py): bitmasks of 1 and 27 bytes, not multiples of 4.
    ("2101028ba43ae3fd25bfca61000ff538f86940d3000100", 1, None, 0),
    ("2101028ba43b021f25bfc8e8000b995cf86940d5001b000000f8" + "ff" * 23, 27, 29, 189),
])
def test_libtorrent_selective_acks_of_any_length(hexdata, length, first, count):
    data = bytes.fromhex(hexdata)
    pkt = UtpPacket.parse(data)
    (sack,) = pkt.extensions
    assert sack.type == 1 and sack.len == length and len(sack.acked) == count
    assert (sack.acked[0] if sack.acked else None) == first
    assert UtpPacket.build(pkt) == data


@settings(max_examples=150, deadline=None)
@given(packets, st.none() | st.lists(st.integers(2, 257), min_size=1, max_size=40, unique=True))
def test_build_plain_packet_equals_the_schema_build(fields, sack):
    from p2pkit.bittorrent.wire.utp import build_plain_packet

    sack = sorted(sack) if sack else None
    fields = {**fields, "extensions": [{"type": 1, "acked": sack}] if sack else []}
    fast = build_plain_packet(fields["type"], fields["connection_id"],
                              fields["timestamp_microseconds"],
                              fields["timestamp_difference_microseconds"], fields["wnd_size"],
                              fields["seq_nr"], fields["ack_nr"], fields["payload"], sack)
    generic = io.BytesIO()
    UtpPacket.build_stream(fields, generic)  # construct's own builder, no fast path
    assert fast == generic.getvalue()
    # and the fast parser (used: no fallback) reads it as construct's parser does
    assert UtpPacket.fast_parse(fast) is not None
    assert repr(fast_or_generic_parse(fast)) == repr(generic_parse(fast))
