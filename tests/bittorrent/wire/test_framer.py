"""MessageFramer (BEP 3 §peer protocol): any split of a stream, limits before buffering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.framer import MAX_MESSAGE_LENGTH, MessageFramer
from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage
from p2pkit.errors import LimitExceeded, ParseError
from tests.pcap_payloads import tcp_streams

BT02 = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
# One direction of a real connection: handshake, extension handshake, bitfield, requests …
UPLOADER = tcp_streams(BT02)[(("127.0.0.3", 40049), ("127.0.0.2", 6881))]
# The other direction carries 128 piece messages of 16 KiB.
DOWNLOADER = tcp_streams(BT02)[(("127.0.0.2", 6881), ("127.0.0.3", 40049))]


def frame_all(data: bytes, cuts: list[int], **kwargs) -> list:
    framer = MessageFramer(**kwargs)
    frames = []
    previous = 0
    for cut in sorted(cuts) + [len(data)]:
        frames += framer.feed(data[previous:cut])
        previous = cut
    framer.close()
    return frames


def test_whole_stream_in_one_feed():
    frames = frame_all(UPLOADER, [])
    assert frames[0].message == Handshake.parse(UPLOADER[:68])
    assert b"".join(f.data for f in frames) == UPLOADER
    for frame in frames[1:]:
        assert frame.message == PeerMessage.parse(frame.data)
        assert UPLOADER[frame.offset:frame.offset + len(frame.data)] == frame.data


def test_byte_by_byte_gives_the_same_frames():
    data = UPLOADER[:900]
    whole = MessageFramer().feed(data)
    framer = MessageFramer()
    single = [f for i in range(len(data)) for f in framer.feed(data[i:i + 1])]
    assert single == whole


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, len(DOWNLOADER)), max_size=40))
def test_any_split_of_a_real_stream(cuts):
    frames = frame_all(DOWNLOADER, cuts)
    assert b"".join(f.data for f in frames) == DOWNLOADER
    assert sum(f.message.get("type") == "piece" for f in frames) == 128


def test_length_checked_on_the_prefix_before_buffering():
    framer = MessageFramer(handshake=False, max_length=16384 + 13)
    assert framer.feed(b"\x00\x00\x40") == []
    with pytest.raises(LimitExceeded) as info:
        framer.feed(b"\x0e")  # 16398: one byte over, and no payload sent yet
    assert info.value.offset == 0
    with pytest.raises(LimitExceeded):  # the framer stays failed
        framer.feed(b"")


def test_default_limit_takes_a_big_bitfield_but_not_more():
    bitfield = PeerMessage.build(dict(type="bitfield", bitfield=bytes(MAX_MESSAGE_LENGTH - 1)))
    [frame] = MessageFramer(handshake=False).feed(bitfield)
    assert len(frame.message.bitfield) == MAX_MESSAGE_LENGTH - 1
    with pytest.raises(LimitExceeded):
        MessageFramer(handshake=False).feed((MAX_MESSAGE_LENGTH + 1).to_bytes(4, "big"))


def test_errors_are_located_in_the_stream():
    framer = MessageFramer()
    [handshake] = framer.feed(UPLOADER[:68] + bytes.fromhex("0000000163"))  # frames before it
    assert handshake.offset == 0
    with pytest.raises(ParseError, match="unknown message id 99") as info:
        framer.feed(b"")
    assert info.value.offset == 72
    lenient = MessageFramer(strict=False).feed(UPLOADER[:68] + bytes.fromhex("0000000163"))
    assert lenient[1].message.type == "unknown"


def test_not_a_handshake_fails_early():
    with pytest.raises(ParseError, match="not a BitTorrent handshake") as info:
        MessageFramer().feed(b"GET / HTTP/1.1\r\n")
    assert info.value.offset == 0


def test_close_inside_a_message():
    framer = MessageFramer(handshake=False)
    framer.feed(b"\x00\x00\x00\x05\x04\x00")
    with pytest.raises(ParseError, match="stream ended inside a message"):
        framer.close()


@settings(max_examples=200)
@given(st.binary(max_size=120), st.booleans())
def test_random_bytes_raise_only_parse_error(data, handshake):
    framer = MessageFramer(handshake=handshake, max_length=64)
    try:
        framer.feed(data)
        framer.close()
    except ParseError:
        pass
