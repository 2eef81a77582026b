"""The DAG-CBOR subset: shortest forms, canonical key order, bounds, fuzzing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.cbor import CborHead, CborMap, CborValue
from p2pkit.schema import Schema

VALUE = Schema(CborValue(), protocol="dag-cbor")

# RFC 8949 Appendix A examples
RFC_EXAMPLES = [(0, "00"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"),
                (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
                (18446744073709551615, "1bffffffffffffffff"), (b"", "40"),
                (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("IETF", "6449455446"),
                ("\u00fc", "62c3bc")]


@pytest.mark.parametrize(("value", "hex_"), RFC_EXAMPLES)
def test_rfc_8949_examples(value, hex_):
    assert VALUE.build(value).hex() == hex_
    assert VALUE.parse(bytes.fromhex(hex_)) == value


@pytest.mark.parametrize("hex_", ["1817", "190017", "1a0000ffff", "1b00000000ffffffff",
                                  "5f", "9f", "f6", "20"])
def test_non_shortest_and_foreign_forms_refused(hex_):
    with pytest.raises(ParseError):
        VALUE.parse(bytes.fromhex(hex_))


def test_map_keys_canonical_and_unique():
    # {"Value": .., "TTL": ..}: TTL (3 bytes) sorts first
    assert CborMap.build({"Value": b"x", "TTL": 1}).hex() == "a2635454 4c0165 56616c7565 4178" \
        .replace(" ", "")
    bad_order = bytes.fromhex("a2" + "6556616c7565" + "4178" + "6354544c" + "01")
    with pytest.raises(ParseError, match="canonical"):
        CborMap.parse(bad_order)
    with pytest.raises(ParseError, match="canonical"):
        CborMap.parse(bytes.fromhex("a2" + "616101" + "616101"))
    with pytest.raises(BuildError):
        CborMap.build({1: 2})


def test_lengths_bounded_before_reading():
    with pytest.raises(LimitExceeded):
        VALUE.parse(bytes.fromhex("5a00100000"))  # a 1 MiB byte string announced
    with pytest.raises(LimitExceeded):
        CborMap.parse(bytes.fromhex("b8ff"))  # 255 entries
    with pytest.raises(BuildError):
        Schema(CborHead(2), protocol="dag-cbor").build(70000)


@given(st.dictionaries(st.text(max_size=10),
                       st.one_of(st.integers(0, 2**64 - 1), st.binary(max_size=40),
                                 st.text(max_size=20)), max_size=8))
def test_round_trip(doc):
    assert dict(CborMap.parse(CborMap.build(doc))) == doc


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_parse_error(data):
    try:
        CborMap.parse(data)
    except ParseError:
        pass
