"""Unsigned varints (multiformats-unsigned-varint.md): the spec's examples, the minimal and
9-byte rules, round-trips."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.varint import ProtoVarint, UVarint, decode_uvarint, encode_uvarint

# the table of §Spec ("Examples")
SPEC_EXAMPLES = [(1, "01"), (127, "7f"), (128, "8001"), (255, "ff01"), (300, "ac02"),
                 (16384, "808001")]


@pytest.mark.parametrize("value,hexed", SPEC_EXAMPLES)
def test_spec_examples(value, hexed):
    assert UVarint.build(value).hex() == hexed
    assert UVarint.parse(bytes.fromhex(hexed)) == value


def test_non_minimal_is_refused_with_offset():
    # §Incompatibilities with Go varints: "{0x81 0x00} [...] the minimal encoding of 0x1 is {0x1}"
    with pytest.raises(ParseError) as e:
        decode_uvarint(b"xx\x81\x00", 2)
    assert e.value.offset == 2 and "minimally" in e.value.reason
    assert ProtoVarint.parse(b"\x81\x00") == 1  # protobuf varints accept it


def test_nine_byte_limit():
    # §Practical maximum of 9 bytes: "MUST restrict the size of the varint to a max of 9 bytes"
    largest = (1 << 63) - 1
    assert len(encode_uvarint(largest)) == 9
    with pytest.raises(LimitExceeded):
        UVarint.parse(b"\xff" * 9 + b"\x01")
    with pytest.raises(BuildError):
        UVarint.build(1 << 63)
    with pytest.raises(BuildError):
        UVarint.build(-1)
    assert ProtoVarint.parse(b"\xff" * 9 + b"\x01") == (1 << 64) - 1


def test_truncated():
    with pytest.raises(ParseError) as e:
        UVarint.parse(b"\x80\x80")
    assert e.value.protocol == "multiformats" and e.value.offset == 0


@given(st.integers(0, (1 << 63) - 1), st.binary(max_size=4))
def test_round_trip(value, tail):
    data = encode_uvarint(value)
    assert decode_uvarint(data + tail) == (value, len(data))


@given(st.binary(max_size=12))
def test_random_bytes_raise_only_parse_error(data):
    try:
        value, end = decode_uvarint(data)
    except ParseError:
        return
    assert encode_uvarint(value) == data[:end]  # whatever decodes is minimal
