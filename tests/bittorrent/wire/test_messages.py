"""Peer wire schemas (BEP 3, 5, 6, 10, 52): vectors from the BEPs, real traffic, fast path, fuzz."""

from __future__ import annotations

import hashlib
import io
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import decode, encode
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.messages import (
    MESSAGE_IDS,
    Handshake,
    PeerMessage,
    PeerMessageLenient,
    Reserved,
)
from p2pkit.errors import BuildError, ParseError
from tests.pcap_payloads import tcp_streams

TORRENTS = "tests/data/torrents/"
BT02 = "bt-02-libtorrent-magnet-ut_metadata-pex"
BT05 = "bt-05-libtorrent-v2-magnet"


def common(schema, data, obj):
    """parse == obj and build == data, on the fast path and on the generic construct path."""
    assert schema.parse(data) == obj
    assert schema.parse_stream(io.BytesIO(data)) == obj
    assert schema.build(obj) == data
    generic = io.BytesIO()
    schema.build_stream(obj, generic)
    assert generic.getvalue() == data


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# (bytes, message): the layouts as the BEPs write them ("<len=0x0001><op=0x0E>" …).
VECTORS = [
    (h("00000000"), dict(type="keep_alive")),
    (h("00000001 00"), dict(type="choke")),
    (h("00000001 01"), dict(type="unchoke")),
    (h("00000001 02"), dict(type="interested")),
    (h("00000001 03"), dict(type="not_interested")),
    (h("00000005 04 00000003"), dict(type="have", index=3)),
    (h("00000003 05 e001"), dict(type="bitfield", bitfield=b"\xe0\x01")),
    (h("0000000d 06 00000001 00004000 00004000"),
     dict(type="request", index=1, begin=0x4000, length=0x4000)),
    (h("0000000c 07 00000001 00000002") + b"abc",
     dict(type="piece", index=1, begin=2, piece=b"abc")),
    (h("00000009 07 00000001 00000002"), dict(type="piece", index=1, begin=2, piece=b"")),
    (h("0000000d 08 00000001 00004000 00004000"),
     dict(type="cancel", index=1, begin=0x4000, length=0x4000)),
    (h("00000003 09 1ae1"), dict(type="port", port=6881)),
    (h("00000005 0d 00000007"), dict(type="suggest_piece", index=7)),
    (h("00000001 0e"), dict(type="have_all")),
    (h("00000001 0f"), dict(type="have_none")),
    (h("0000000d 10 00000001 00000000 00004000"),
     dict(type="reject_request", index=1, begin=0, length=0x4000)),
    (h("00000005 11 00000009"), dict(type="allowed_fast", index=9)),
    (h("00000002 14 00"), dict(type="extended", extended_id=0, payload=b"")),
    (h("00000004 14 03 6465"), dict(type="extended", extended_id=3, payload=b"de")),
    (h("00000031 15") + b"R" * 32 + h("00000001 00000000 00000040 00000005"),
     dict(type="hash_request", pieces_root=b"R" * 32, base_layer=1, index=0, length=64,
          proof_layers=5)),
    (h("00000071 16") + b"R" * 32 + h("00000000 00000002 00000002 00000000") + b"a" * 32
     + b"b" * 32, dict(type="hashes", pieces_root=b"R" * 32, base_layer=0, index=2, length=2,
                       proof_layers=0, hashes=[b"a" * 32, b"b" * 32])),
    (h("00000031 17") + b"R" * 32 + h("00000000 00000000 00000200 00000000"),
     dict(type="hash_reject", pieces_root=b"R" * 32, base_layer=0, index=0, length=512,
          proof_layers=0)),
]


@pytest.mark.parametrize(("data", "obj"), VECTORS, ids=[o["type"] for _, o in VECTORS])
def test_bep_vectors(data, obj):
    common(PeerMessage, data, obj)
    common(PeerMessageLenient, data, obj)


def test_vectors_cover_every_message_type():
    assert {o["type"] for _, o in VECTORS} == set(MESSAGE_IDS) | {"keep_alive"}


def test_message_ids_are_the_beps_numbers():
    assert MESSAGE_IDS["request"] == 6 and MESSAGE_IDS["port"] == 9
    assert MESSAGE_IDS["have_all"] == 0x0E and MESSAGE_IDS["allowed_fast"] == 0x11
    assert MESSAGE_IDS["extended"] == 20
    assert (MESSAGE_IDS["hash_request"], MESSAGE_IDS["hashes"], MESSAGE_IDS["hash_reject"]) \
        == (21, 22, 23)


LT_HANDSHAKE = (h("13") + b"BitTorrent protocol" + h("0000000000100005")
                + h("8e3f4515b630cdb09dfc315577611036fc7ac773") + b"-LT2080-cQtjXnhSGAbC")


def test_handshake_real_bytes_and_named_reserved_bits():
    hs = Handshake.parse(LT_HANDSHAKE)
    assert hs.reserved == dict(extension_protocol=True, v2_upgrade=False, fast=True, dht=True,
                               unknown=0)
    common(Handshake, LT_HANDSHAKE, hs)


def test_reserved_bits_positions_and_unknown_bits_kept():
    # BEP 10 byte 5 0x10, BEP 52 byte 7 0x10, BEP 6 byte 7 0x04, BEP 5 byte 7 0x01.
    for name, raw in [("extension_protocol", "0000000000100000"), ("v2_upgrade", "0000000000000010"),
                      ("fast", "0000000000000004"), ("dht", "0000000000000001")]:
        flags = Reserved.parse(h(raw))
        assert [k for k, v in flags.items() if v is True] == [name]
        assert Reserved.build(flags) == h(raw)
    azureus = Reserved.parse(h("8000000000100005"))
    assert azureus.unknown == 0x80 << 56
    assert Reserved.build(azureus) == h("8000000000100005")
    assert Reserved.build(dict(dht=True)) == h("0000000000000001")


def test_handshake_errors():
    with pytest.raises(ParseError) as info:
        Handshake.parse(b"\x13BitTorrent protocoX" + bytes(48))
    assert info.value.protocol == "bittorrent" and info.value.offset == 20  # after the pstr
    with pytest.raises(ParseError):
        Handshake.parse(LT_HANDSHAKE[:67])
    with pytest.raises(BuildError):
        Handshake.build(dict(reserved=dict(bogus=True), info_hash=bytes(20), peer_id=bytes(20)))
    with pytest.raises(BuildError):
        Handshake.build(dict(reserved=0, info_hash=bytes(19), peer_id=bytes(20)))


def test_unknown_id_strict_error_lenient_unknown():
    data = h("00000003 63 abcd")
    with pytest.raises(ParseError, match="unknown message id 99") as info:
        PeerMessage.parse(data)
    assert info.value.offset == 4
    obj = dict(type="unknown", id=99, payload=b"\xab\xcd")
    assert PeerMessageLenient.parse(data) == obj
    assert PeerMessageLenient.build(obj) == data


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (h("00000006 04 00000003 00"), 9),  # have with one byte too many
        (h("00000004 04 000000"), 5),  # have cut short inside its length
        (h("00000005 04 0000"), 4),  # the input ends before the prefix says
        (h("00000035 16") + bytes(48) + b"abcd", 53),  # hashes: not a whole 32-byte hash
        (h("000000"), 0),
    ],
)
def test_malformed_messages_raise_parse_error_with_offset(data, offset):
    with pytest.raises(ParseError) as info:
        PeerMessage.parse(data)
    assert info.value.protocol == "bittorrent"
    assert info.value.offset == offset


def test_build_errors():
    with pytest.raises(BuildError, match="index"):
        PeerMessage.build(dict(type="have", index=-1))
    with pytest.raises(BuildError, match="nope"):
        PeerMessage.build(dict(type="nope"))
    with pytest.raises(BuildError):
        PeerMessage.build(dict(type="request", index=1, begin=2))
    with pytest.raises(BuildError):
        PeerMessage.build(None)


# ---- real traffic ---------------------------------------------------------------------------


def frames_of(capture: str) -> dict:
    """Every direction that starts with a handshake, framed: (src, dst) -> [Frame]."""
    out = {}
    for key, data in tcp_streams(capture).items():
        if not data.startswith(b"\x13BitTorrent protocol"):
            continue  # the capture starts mid-connection
        framer = MessageFramer(handshake=True)
        out[key] = framer.feed(data)
        assert sum(len(f.data) for f in out[key]) + framer.buffered == len(data)
        assert framer.buffered < 4 or int.from_bytes(data[-framer.buffered:][:4], "big") + 4 \
            > framer.buffered  # only a message cut by the end of the capture is left
    return out


@pytest.mark.parametrize("capture", [f"{BT02}.pcap", f"{BT05}.pcap", "ndpi-bittorrent.pcap"])
def test_real_streams_parse_and_rebuild_identically(capture):
    streams = frames_of(capture)
    assert streams
    for frames in streams.values():
        assert frames[0].data[0] == 19
        assert Handshake.build(frames[0].message) == frames[0].data
        for frame in frames[1:]:
            assert PeerMessage.build(frame.message) == frame.data
            assert PeerMessage.parse_stream(io.BytesIO(frame.data)) == frame.message


def message_counts(capture: str) -> Counter:
    return Counter(f.message.type for frames in frames_of(capture).values() for f in frames[1:])


def test_bt02_pieces_rebuild_the_torrent():
    """The piece messages reassemble the file, checked against the torrent's SHA-1 hashes."""
    info = decode(open(TORRENTS + BT02 + ".torrent", "rb").read())[b"info"]
    piece_length = info[b"piece length"]
    hashes = [info[b"pieces"][i:i + 20] for i in range(0, len(info[b"pieces"]), 20)]
    downloads = 0
    for key, frames in frames_of(BT02 + ".pcap").items():
        blocks = {(f.message.index, f.message.begin): f.message.piece
                  for f in frames if f.message.get("type") == "piece"}
        if not blocks:
            continue
        requests = frames_of(BT02 + ".pcap")[tuple(reversed(key))]
        assert {(f.message.index, f.message.begin) for f in requests
                if f.message.get("type") == "request"} == set(blocks)
        downloads += 1
        assert sum(len(b) for b in blocks.values()) == info[b"length"]
        for index, digest in enumerate(hashes):
            piece = b"".join(blocks[(index, begin)]
                             for begin in range(0, piece_length, 16384))
            assert hashlib.sha1(piece).digest() == digest
    assert downloads == 2


def test_bt02_message_counts():
    counts = message_counts(BT02 + ".pcap")
    # 2 MiB in 16 KiB blocks, downloaded twice (127.0.0.3 from .2, .4 from .3): 2 × 128.
    assert counts["piece"] == 2 * 2097152 // 16384
    assert counts["request"] >= counts["piece"]  # a few end-game duplicates
    assert counts["have_all"] >= 1 and counts["allowed_fast"] >= 1  # BEP 6 in use
    assert counts["extended"] >= 10


def test_bt05_hashes_match_the_torrents_piece_layer():
    torrent = decode(open(TORRENTS + BT05 + ".torrent", "rb").read())
    [(root, layer)] = torrent[b"piece layers"].items()
    messages = [f.message for frames in frames_of(BT05 + ".pcap").values() for f in frames[1:]]
    [request] = [m for m in messages if m.type == "hash_request"]
    [answer] = [m for m in messages if m.type == "hashes"]
    assert request.pieces_root == answer.pieces_root == root
    assert (answer.base_layer, answer.index, answer.length) == (1, 0, 64)  # 32 KiB pieces
    assert b"".join(answer.hashes[:answer.length]) == layer
    for frames in frames_of(BT05 + ".pcap").values():  # libtorrent sets no upgrade bit for a v2-only torrent
        assert frames[0].message.reserved.v2_upgrade is False
        info = torrent[b"info"]
        assert frames[0].message.info_hash == hashlib.sha256(encode(info)).digest()[:20]


def test_ndpi_message_counts():
    counts = message_counts("ndpi-bittorrent.pcap")
    # µTorrent/BitTorrent peers: bitfield then 24 have each, and BEP 5 port messages.
    assert counts["port"] >= 1 and counts["bitfield"] >= 10
    assert counts["have"] == 24 * counts["bitfield"]


# ---- fast path == generic construct path ---------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
hash32 = st.binary(min_size=32, max_size=32)


def _hash_fields(**more):
    return dict(pieces_root=hash32, base_layer=u32, index=u32, length=u32, proof_layers=u32,
                **more)


MESSAGE_STRATEGIES = {
    "keep_alive": {},
    **{name: {} for name in ("choke", "unchoke", "interested", "not_interested", "have_all",
                              "have_none")},
    "have": dict(index=u32),
    "suggest_piece": dict(index=u32),
    "allowed_fast": dict(index=u32),
    "bitfield": dict(bitfield=st.binary(max_size=64)),
    "request": dict(index=u32, begin=u32, length=u32),
    "cancel": dict(index=u32, begin=u32, length=u32),
    "reject_request": dict(index=u32, begin=u32, length=u32),
    "piece": dict(index=u32, begin=u32, piece=st.binary(max_size=64)),
    "port": dict(port=st.integers(0, 65535)),
    "extended": dict(extended_id=st.integers(0, 255), payload=st.binary(max_size=64)),
    "hash_request": _hash_fields(),
    "hash_reject": _hash_fields(),
    "hashes": _hash_fields(hashes=st.lists(hash32, max_size=4)),
}

messages = st.one_of([st.fixed_dictionaries({"type": st.just(name), **fields})
                      for name, fields in MESSAGE_STRATEGIES.items()])


@settings(max_examples=300)
@given(messages)
def test_round_trip_and_fast_path_equals_generic(obj):
    generic = io.BytesIO()
    PeerMessage.build_stream(obj, generic)
    data = generic.getvalue()
    assert PeerMessage.fast_build(obj) in (None, data)
    assert PeerMessage.build(obj) == data
    assert PeerMessage.fast_parse(data) in (None, obj)
    assert PeerMessage.parse_stream(io.BytesIO(data)) == obj
    assert PeerMessage.parse(data) == obj


BODY_SIZES = {"keep_alive": 0, "choke": 0, "have_all": 0, "have": 4, "allowed_fast": 4,
              "suggest_piece": 4, "port": 2, "request": 12, "cancel": 12, "reject_request": 12,
              "hash_request": 48, "piece": 8, "bitfield": 0, "extended": 1}


@settings(max_examples=300)
@given(st.sampled_from(sorted(BODY_SIZES)), st.data())
def test_fast_path_agrees_with_generic_on_random_bodies(name, data):
    """Random bodies under a real header: both paths give the same message or both fail."""
    size = BODY_SIZES[name]
    body = data.draw(st.one_of(st.binary(min_size=size, max_size=size + 8),
                               st.binary(max_size=60)))
    mid = MESSAGE_IDS.get(name)
    payload = b"" if mid is None else bytes([mid]) + body
    frame = len(payload).to_bytes(4, "big") + payload
    fast = PeerMessage.fast_parse(frame)
    try:
        generic = PeerMessage.parse_stream(io.BytesIO(frame))
    except ParseError:
        assert fast is None
    else:  # every type sampled here has a fast path, which must give the same Container
        assert fast == generic and list(fast) == list(generic)


def test_fast_path_taken_for_fixed_messages():
    for data, obj in VECTORS:
        if obj["type"] not in ("hashes",):
            assert PeerMessage.fast_parse(data) == obj, obj["type"]
            assert PeerMessage.fast_build(obj) == data, obj["type"]
    assert Handshake.fast_parse(LT_HANDSHAKE) == Handshake.parse_stream(io.BytesIO(LT_HANDSHAKE))


@settings(max_examples=100)
@given(st.builds(dict, reserved=st.integers(0, 2**64 - 1),
                 info_hash=st.binary(min_size=20, max_size=20),
                 peer_id=st.binary(min_size=20, max_size=20)))
def test_handshake_round_trip_fast_equals_generic(obj):
    data = b"\x13BitTorrent protocol" + obj["reserved"].to_bytes(8, "big") + obj["info_hash"] \
        + obj["peer_id"]
    parsed = Handshake.parse(data)
    assert parsed == Handshake.parse_stream(io.BytesIO(data))
    assert Handshake.build(parsed) == data
    assert Handshake.build(obj) == data


# ---- fuzz: only ParseError ------------------------------------------------------------------

REAL = [f.data for frames in frames_of(BT02 + ".pcap").values() for f in frames[1:]
        if len(f.data) < 400]


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    for schema in (PeerMessage, PeerMessageLenient, Handshake):
        try:
            schema.parse(data)
        except ParseError:
            pass


@settings(max_examples=300)
@given(st.sampled_from(REAL), st.data())
def test_mutated_real_messages_raise_only_parse_error(message, data):
    pos = data.draw(st.integers(0, len(message) - 1))
    mutated = bytearray(message)
    mutated[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for schema in (PeerMessage, PeerMessageLenient):
        try:
            parsed = schema.parse(bytes(mutated[:cut]))
        except ParseError:
            continue
        assert schema.build(parsed) == bytes(mutated[:cut])[:len(schema.build(parsed))]


@settings(max_examples=200)
@given(st.integers(0, 67), st.integers(0, 255), st.integers(0, 68))
def test_mutated_handshake_raises_only_parse_error(pos, value, cut):
    mutated = bytearray(LT_HANDSHAKE)
    mutated[pos] = value
    try:
        parsed = Handshake.parse(bytes(mutated[:cut]))
    except ParseError:
        assert cut < 68 or pos < 20 and value != LT_HANDSHAKE[pos]
    else:
        assert Handshake.build(parsed) == bytes(mutated)
