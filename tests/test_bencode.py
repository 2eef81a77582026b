"""bencode (BEP 3 §bencoding): canonical strict decoding, lenient deviations, limits, fuzzing."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode import (
    Bencoded,
    BencodedLenient,
    decode,
    decode_lenient,
    decode_prefix,
    encode,
    top_level_spans,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError

# BEP 3's own examples.
BEP3_EXAMPLES = [
    (b"4:spam", b"spam"),
    (b"0:", b""),
    (b"i3e", 3),
    (b"i-3e", -3),
    (b"i0e", 0),
    (b"l4:spam4:eggse", [b"spam", b"eggs"]),
    (b"le", []),
    (b"d3:cow3:moo4:spam4:eggse", {b"cow": b"moo", b"spam": b"eggs"}),
    (b"d4:spaml1:a1:bee", {b"spam": [b"a", b"b"]}),
    (b"d9:publisher3:bob17:publisher-webpage15:www.example.com18:publisher.location4:homee",
     {b"publisher": b"bob", b"publisher-webpage": b"www.example.com",
      b"publisher.location": b"home"}),
    (b"de", {}),
]


@pytest.mark.parametrize(("data", "value"), BEP3_EXAMPLES)
def test_bep3_examples_round_trip(data, value):
    assert decode(data) == value
    assert encode(value) == data


@pytest.mark.parametrize(
    ("data", "rule", "offset"),
    [
        (b"i-0e", "bencode/integer/negative-zero", 1),
        (b"i03e", "bencode/integer/leading-zero", 1),
        (b"i-03e", "bencode/integer/leading-zero", 1),
        (b"03:abc", "bencode/string/leading-zero", 0),
        (b"d1:bi1e1:ai2ee", "bencode/dict/unsorted-keys", 7),
        (b"d1:ai1e1:ai2ee", "bencode/dict/duplicate-key", 7),
        (b"di1ei2ee", "bencode/dict/non-string-key", 1),
        (b"i1eXYZ", "bencode/trailing-data", 3),
    ],
)
def test_non_canonical_is_strict_error_and_lenient_deviation(data, rule, offset):
    with pytest.raises(ParseError) as info:
        decode(data)
    assert info.value.protocol == "bencode"
    result = decode_lenient(data)
    assert [d.rule for d in result.deviations] == [rule]
    assert result.deviations[0].offset == offset
    assert result.deviations[0].spec == "BEP 3 §bencoding"


def test_lenient_keeps_values_in_wire_order():
    result = decode_lenient(b"d1:bi03e1:ai1ee")
    assert list(result.value.items()) == [(b"b", 3), (b"a", 1)]


@pytest.mark.parametrize(
    ("data", "offset", "path"),
    [
        (b"", 0, ""),
        (b"i12", 3, ""),
        (b"5:abc", 0, ""),
        (b"l4:spam", 7, ""),
        (b"d3:fooi1e3:bar", 14, "bar"),
        (b"ixe", 1, ""),
        (b"i1 e", 1, ""),
        (b"x", 0, ""),
        (b"dli1ee1:ae", 1, ""),
        (b"d1:ali1ei2x", 11, "a[1]"),
    ],
)
def test_malformed_input_names_offset_and_path(data, offset, path):
    with pytest.raises(ParseError) as info:
        decode_lenient(data)
    assert info.value.offset == offset
    assert info.value.path == path
    assert "bencode" in str(info.value)


def test_string_length_is_checked_before_allocation():
    # A length prefix claiming ~1 EB must fail on the bound, not try to read or allocate.
    with pytest.raises(ParseError) as info:
        decode(b"999999999999999999:x")
    assert "runs past the end" in str(info.value)
    with pytest.raises(LimitExceeded):
        decode(b"9999999999999999999999:x")


def test_nesting_depth_is_bounded():
    deep = b"l" * (bencode.MAX_DEPTH + 1) + b"e" * (bencode.MAX_DEPTH + 1)
    with pytest.raises(LimitExceeded):
        decode(deep)
    ok = b"l" * bencode.MAX_DEPTH + b"e" * bencode.MAX_DEPTH
    assert decode(ok) is not None


def test_integer_digits_are_bounded():
    with pytest.raises(LimitExceeded):
        decode(b"i" + b"9" * (bencode.MAX_INTEGER_DIGITS + 1) + b"e")
    assert decode(b"i" + b"9" * bencode.MAX_INTEGER_DIGITS + b"e") == int("9" * 64)


def test_encode_sorts_keys_as_raw_bytes_and_rejects_junk():
    assert encode({"b": 1, "a": 2, "B": 3}) == b"d1:Bi3e1:ai2e1:bi1ee"
    assert encode({"é": b""}) == b"d2:\xc3\xa90:e"
    with pytest.raises(BuildError):
        encode({1: 2})
    with pytest.raises(BuildError):
        encode(1.5)
    with pytest.raises(BuildError):
        encode(True)
    with pytest.raises(BuildError):
        encode({"a": 1, b"a": 2})


def test_decode_prefix_stops_after_the_value():
    assert decode_prefix(b"d8:msg_typei1e5:piecei0eeRAW") == ({b"msg_type": 1, b"piece": 0}, 25)


def test_top_level_spans_give_exact_bytes():
    data = b"d8:announce3:url4:infod6:lengthi5e4:name1:aee"
    start, end = top_level_spans(data)[b"info"]
    assert data[start:end] == b"d6:lengthi5e4:name1:ae"


def test_construct_field_nests_and_relocates_errors():
    s = construct.Struct("kind" / construct.Int8ub, "dict" / Bencoded, "rest" / construct.GreedyBytes)
    parsed = s.parse(b"\x01d1:ai1ee..")
    assert parsed.dict == {b"a": 1} and parsed.rest == b".."
    assert s.build(dict(kind=1, dict={"a": 1}, rest=b"..")) == b"\x01d1:ai1ee.."
    with pytest.raises(ParseError) as info:
        s.parse(b"\x01d1:ai1e")
    assert info.value.offset == 8  # counted from the start of the whole input
    assert info.value.path == "dict"
    assert construct.Struct("d" / BencodedLenient).parse(b"i03e").d == 3


# --- property tests ---------------------------------------------------------------------------

values = st.recursive(
    st.binary(max_size=20) | st.integers(min_value=-(2**70), max_value=2**70),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.binary(max_size=8), children, max_size=5),
    max_leaves=30,
)


def _canonical(v):
    if isinstance(v, dict):
        return {k: _canonical(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_canonical(x) for x in v]
    return v


@given(values)
def test_round_trip(value):
    data = encode(value)
    decoded = decode(data)
    assert decoded == _canonical(value)
    assert list(decoded) == list(_canonical(value)) if isinstance(value, dict) else True
    assert encode(decoded) == data
    assert decode_lenient(data).deviations == []


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_error(data):
    for fn in (decode, decode_lenient, lambda d: decode_prefix(d), top_level_spans):
        try:
            fn(data)
        except ParseError:
            pass


@given(values, st.data())
def test_mutated_encodings_raise_only_parse_error(value, data):
    raw = bytearray(encode(value))
    if raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        for candidate in (bytes(raw), bytes(raw[:cut])):
            try:
                decode_lenient(candidate)
            except ParseError:
                pass
