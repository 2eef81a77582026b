"""Extension payloads: BEP 10 handshake, BEP 9 ut_metadata, BEP 11 ut_pex, on real traffic."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import encode
from p2pkit.bittorrent.wire.extensions import (
    EXTENSION_MESSAGES,
    EXTENSION_MESSAGES_LENIENT,
    ExtendedHandshake,
    UtMetadata,
    UtPex,
    decode_extended,
    encode_extended,
    message_names,
)
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.deviations import deviations_of
from p2pkit.errors import BuildError, ParseError
from tests.pcap_payloads import tcp_streams

BT02 = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
BT05 = "bt-05-libtorrent-v2-magnet.pcap"


def common(schema, data, obj):
    assert schema.parse(data) == obj
    assert schema.build(obj) == data


def extended_messages(capture: str, strict: bool = True):
    """(name, payload, decoded) of every extended message, named by the receiver's ``m``."""
    frames = {}
    for key, data in tcp_streams(capture).items():
        if data.startswith(b"\x13BitTorrent protocol"):
            frames[key] = [f.message for f in MessageFramer().feed(data)[1:]]
    handshakes = {}
    for key, messages in frames.items():
        for m in messages:
            if m.type == "extended" and m.extended_id == 0:
                handshakes[key] = decode_extended("handshake", m.payload, strict=strict)
    out = []
    for key, messages in frames.items():
        names = message_names(handshakes.get((key[1], key[0]), {}))
        for m in messages:
            if m.type == "extended":
                name = "handshake" if m.extended_id == 0 else names.get(m.extended_id)
                if name in EXTENSION_MESSAGES:
                    out.append((name, m.payload,
                                decode_extended(name, m.payload, strict=strict)))
    return out


def test_bep9_examples():
    # BEP 9 §request / §reject; the data example with a real dictionary and piece.
    common(UtMetadata, b"d8:msg_typei0e5:piecei0ee", dict(msg_type="request", piece=0))
    common(UtMetadata, b"d8:msg_typei2e5:piecei0ee", dict(msg_type="reject", piece=0))
    common(UtMetadata, b"d8:msg_typei1e5:piecei0e10:total_sizei3eexyz",
           dict(msg_type="data", piece=0, total_size=3, metadata=b"xyz"))
    with pytest.raises(ParseError, match="only data carries a piece"):
        UtMetadata.parse(b"d8:msg_typei0e5:piecei0eexyz")
    with pytest.raises(ParseError, match="msg_type"):
        UtMetadata.parse(b"d8:msg_typei7e5:piecei0ee")


def test_bep11_flags_named_and_unknown_bits_kept():
    pex = UtPex.parse(b"d5:added6:\x01\x02\x03\x04\x1a\xe17:added.f1:\x9fe")
    [peer] = pex.added
    assert (peer.ip, peer.port) == (ipaddress.ip_address("1.2.3.4"), 6881)
    [flags] = pex["added.f"]
    assert [k for k in ("encryption", "seed", "utp", "holepunch", "outgoing") if flags[k]] \
        == ["encryption", "seed", "utp", "holepunch", "outgoing"]
    assert flags.unknown == 0x80
    assert UtPex.build(pex) == b"d5:added6:\x01\x02\x03\x04\x1a\xe17:added.f1:\x9fe"
    with pytest.raises(ParseError, match="added"):
        UtPex.parse(b"d5:added5:\x01\x02\x03\x04\x1ae")  # not a whole compact peer


def test_handshake_items_and_unknown_keys():
    data = (b"d4:ipv616:" + bytes(15) + b"\x01" + b"1:md6:ut_pexi1ee3:new2:hi"
            b"6:yourip16:" + bytes(15) + b"\x01" + b"e")
    hs = ExtendedHandshake.parse(data)
    assert hs.ipv6 == hs.yourip == ipaddress.ip_address("::1")
    assert hs.new == b"hi"
    assert ExtendedHandshake.build(hs) == data
    with pytest.raises(ParseError, match="yourip"):
        ExtendedHandshake.parse(b"d6:yourip3:abce")
    with pytest.raises(ParseError, match="p"):
        ExtendedHandshake.parse(b"d1:p3:abce")
    assert encode_extended("handshake", dict(m=dict(ut_metadata=3), yourip="10.0.0.1",
                                             reqq=250)) \
        == b"d1:md11:ut_metadatai3ee4:reqqi250e6:yourip4:\n\x00\x00\x01e"


def test_unknown_extension_name():
    with pytest.raises(ParseError, match="ut_comment"):
        decode_extended("ut_comment", b"de")
    with pytest.raises(BuildError):
        encode_extended("nope", {})


@pytest.mark.parametrize("capture", [BT02, BT05])
def test_libtorrent_payloads_decode_and_rebuild_identically(capture):
    messages = extended_messages(capture)
    for name, payload, decoded in messages:
        assert encode_extended(name, decoded) == payload
    names = {name for name, _, _ in messages}
    assert {"handshake", "ut_metadata", "upload_only"} <= names
    if capture == BT02:
        assert "ut_pex" in names


@pytest.mark.parametrize(("capture", "digest"), [(BT02, hashlib.sha1),
                                                 (BT05, hashlib.sha256)])
def test_ut_metadata_pieces_hash_to_the_info_hash(capture, digest):
    """BEP 9 data pieces are the info dictionary: its hash is the handshake's info_hash."""
    messages = extended_messages(capture)
    [size] = {d.metadata_size for n, _, d in messages if n == "handshake" and "metadata_size" in d}
    pieces = [d for n, _, d in messages if n == "ut_metadata" and d.msg_type == "data"]
    assert pieces and all(p.total_size == size for p in pieces)
    info_hash = next(data for data in tcp_streams(capture).values())[28:48]
    for p in pieces:
        assert len(p.metadata) == size
        assert digest(p.metadata).digest()[:20] == info_hash


def test_bt02_pex_names_the_other_peers():
    pex = [d for n, _, d in extended_messages(BT02) if n == "ut_pex"]
    peers = {(str(p.ip), p.port) for d in pex for p in d.added}
    # the three libtorrent peers listen on 127.0.0.2:6881, .3:6882, .4:6883
    assert peers <= {("127.0.0.2", 6881), ("127.0.0.3", 6882), ("127.0.0.4", 6883)}
    assert all(len(d["added.f"]) == len(d.added) for d in pex)


def test_utorrent_handshake_is_lenient_only():
    """µTorrent sends unsorted keys: the strict schema refuses, the lenient one decodes."""
    lenient = extended_messages("ndpi-bittorrent.pcap", strict=False)
    handshakes = [d for n, _, d in lenient if n == "handshake"]
    assert len(handshakes) >= 10
    assert any(isinstance(d.v, str) and d.v.startswith("µTorrent") for d in handshakes)
    assert all(d.m.get("ut_metadata") == 2 for d in handshakes)
    unsorted = 0
    for name, payload, decoded in lenient:
        if name != "handshake":
            continue
        try:
            strict = decode_extended(name, payload)
        except ParseError as e:
            assert "out of sorted order" in str(e)
            unsorted += 1
        else:
            assert strict == decoded and encode_extended(name, strict) == payload
    assert unsorted >= 10


def test_lenient_keeps_malformed_items_unconverted():
    data = b"d1:pi-1e6:yourip3:abce"
    with pytest.raises(ParseError, match="yourip"):
        decode_extended("handshake", data)
    hs = decode_extended("handshake", data, strict=False)
    assert hs.yourip == b"abc" and hs.p == -1
    assert "_unconverted" not in hs
    [deviation] = deviations_of(hs)
    assert (deviation.rule, data[deviation.offset:]) == ("bittorrent/extended/wrong-type",
                                                         b"3:abce")
    assert EXTENSION_MESSAGES_LENIENT["handshake"].build(hs) == data
    # the strict schema still refuses to build an item of the wrong type
    with pytest.raises(BuildError):
        EXTENSION_MESSAGES["handshake"].build(hs)


payloads = st.one_of(
    st.binary(max_size=60),
    st.builds(encode, st.dictionaries(st.sampled_from(
        [b"m", b"p", b"v", b"yourip", b"ipv4", b"ipv6", b"reqq", b"msg_type", b"piece",
         b"total_size", b"added", b"added.f", b"dropped6", b"x"]),
        st.one_of(st.integers(-3, 70000), st.binary(max_size=20),
                  st.dictionaries(st.binary(max_size=5), st.integers(0, 9), max_size=3)),
        max_size=5)),
)


@settings(max_examples=300)
@given(st.sampled_from(sorted(EXTENSION_MESSAGES)), payloads, st.booleans())
def test_random_payloads_raise_only_parse_error_and_round_trip(name, payload, strict):
    try:
        decoded = decode_extended(name, payload, strict=strict)
    except ParseError:
        return
    if strict:
        assert encode_extended(name, decoded) == payload
    else:
        EXTENSION_MESSAGES_LENIENT[name].build(decoded)


REAL_PAYLOADS = [(name, payload) for name, payload, _ in extended_messages(BT02)
                 if len(payload) < 400]


@settings(max_examples=300)
@given(st.sampled_from(REAL_PAYLOADS), st.data())
def test_mutated_real_payloads_raise_only_parse_error(real, data):
    name, payload = real
    mutated = bytearray(payload)
    if mutated:
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    mutated = bytes(mutated[:data.draw(st.integers(0, len(mutated)))])
    for strict in (True, False):
        try:
            decoded = decode_extended(name, mutated, strict=strict)
        except ParseError:
            continue
        if strict:
            assert encode_extended(name, decoded) == mutated
            assert deviations_of(decoded) == []
        else:
            # the departures are Deviations on the value, never markers in it
            assert "_unconverted" not in decoded
            for d in deviations_of(decoded):
                assert d.rule and d.spec and 0 <= d.offset <= len(mutated)
            # what it kept (items of the wrong type as sent) builds back
            EXTENSION_MESSAGES_LENIENT[name].build(decoded)


def test_lenient_deviations_are_the_bencoding_rules_and_the_declared_ones():
    """µTorrent's unsorted handshakes: the lenient schema reports what the bencode codec
    reports (the former codec dropped them); a wrong-typed item adds the declared rule."""
    from p2pkit.bencode import decode_lenient

    handshakes = [p for n, p, _ in extended_messages("ndpi-bittorrent.pcap", strict=False)
                  if n == "handshake"]
    for payload in handshakes:
        found = []
        EXTENSION_MESSAGES_LENIENT["handshake"].parse(payload, deviations=found)
        assert [(d.rule, d.offset) for d in found] == [
            (d.rule, d.offset) for d in decode_lenient(payload).deviations]
    found = []
    EXTENSION_MESSAGES_LENIENT["handshake"].parse(b"d1:pi-1e6:yourip3:abce", deviations=found)
    assert [(d.rule, d.offset) for d in found] == [("bittorrent/extended/wrong-type", 16)]


def test_lenient_deviations_reach_the_caller_through_nested_schemas():
    # ut_metadata's dictionary sits in a Struct before the raw piece: the list still fills.
    found = []
    msg = EXTENSION_MESSAGES_LENIENT["ut_metadata"].parse(
        b"d5:piecei0e8:msg_typei01e10:total_sizei3eexyz", deviations=found)
    assert msg.metadata == b"xyz"
    assert [d.rule for d in found] == ["bencode/dict/unsorted-keys",
                                       "bencode/integer/leading-zero"]
