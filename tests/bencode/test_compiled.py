"""The compiled decoder in front of the canonical one (:mod:`p2pkit.bencode.compiled`): the
same answer as :func:`~p2pkit.bencode.canonical.decode_canonical` (value, spans, or None)
on every bencoded datagram of the committed captures and on hypothesis-generated and mutated
bytes, with fastbencode's extension and without it (the pure-Python path)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode import compiled
from p2pkit.bencode.canonical import decode_canonical
from p2pkit.bencode.compiled import decode_canonical_dict, value_spans
from tests.bencode.test_canonical import bencoded_datagrams, values

needs_extension = pytest.mark.skipif(not compiled.COMPILED,
                                     reason="fastbencode's compiled extension not installed")


def same_as_canonical(data: bytes) -> bool:
    """Whether the compiled decoder answered; its answer is the canonical decoder's."""
    expected = decode_canonical(data)
    answer = decode_canonical_dict(data)
    direct = compiled.decode_compiled(data)  # (what the KRPC decoder asks first)
    if expected is None:
        assert answer is None and direct is None
        return False
    assert (direct is None) == (answer[1] is not None)
    assert direct is None or direct is answer[0] or direct == answer[0]
    assert answer is not None
    value, spans = answer
    assert value == expected[0]
    assert list(value) == list(expected[0])  # wire order
    assert _types(value) == _types(expected[0])
    assert (spans if spans is not None else value_spans(value, len(data))) == expected[1]
    if spans is None:  # the compiled answer is the lenient decoder's, without a deviation
        lenient = bencode.decode_lenient(data, spans=True)
        assert (lenient.value, lenient.spans) == (value, expected[1])
        assert not lenient.deviations
    return spans is None


def _types(value):
    """The value's shape with every leaf replaced by its exact type."""
    if type(value) is dict:
        return {k: _types(v) for k, v in value.items()}
    if type(value) is list:
        return [_types(v) for v in value]
    return type(value)


@pytest.fixture(params=["compiled", "pure-python"])
def path(request, monkeypatch):
    """Each test runs with the extension and with it switched off."""
    if request.param == "compiled":
        if not compiled.COMPILED:
            pytest.skip("fastbencode's compiled extension not installed")
    else:
        monkeypatch.setattr(compiled, "_bdecode", None)
        monkeypatch.setattr(compiled, "_bencode", None)
    return request.param


def test_every_datagram_of_the_committed_captures(path):
    datagrams = bencoded_datagrams()
    taken = sum(same_as_canonical(d) for d in datagrams)
    assert len(datagrams) > 900
    if path == "compiled":
        # what real nodes send goes the compiled way (the canonical decoder takes > 90 %)
        assert taken > 0.9 * len(datagrams)
    else:
        assert taken == 0


def test_spans_measured_from_the_value(path):
    """value_spans (with the compiled encoder or the pure-Python one measuring containers)
    gives the spans the canonical decoder records."""
    for data in bencoded_datagrams():
        decoded = decode_canonical(data)
        if decoded is not None:
            assert value_spans(decoded[0], len(data)) == decoded[1]
    many = {b"a": [1, 2], b"b": b"xy", b"c": {b"d": []}, b"e": 7, b"f": [b""]}
    data = bencode.encode(many)
    assert value_spans(decode_canonical(data)[0], len(data)) == decode_canonical(data)[1]


def test_mutated_datagrams(path):
    """Each real datagram cut short, with a byte changed, or with bytes after it."""
    for data in bencoded_datagrams()[:200]:
        for cut in (1, len(data) // 2, len(data) - 1):
            same_as_canonical(data[:cut])
        same_as_canonical(data + b"e")
        for at in (1, len(data) // 3, len(data) - 2):
            for byte in (b"0", b"9", b"i", b"e", b"d", b"l", b":", b"-"):
                same_as_canonical(data[:at] + byte + data[at + 1:])


@needs_extension
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.binary(max_size=6), values, max_size=5))
def test_any_dictionary(value):
    data = bencode.encode(value)
    same_as_canonical(data)


@needs_extension
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=8))
def test_random_bytes(data, tail):
    same_as_canonical(b"d" + data)
    same_as_canonical(data)
    same_as_canonical(b"d1:a" + data + b"e" + tail)


@needs_extension
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.binary(max_size=4), values, min_size=1, max_size=4),
       st.integers(0, 200), st.sampled_from(b"0123456789ie:dl-x"))
def test_one_byte_changed(value, at, byte):
    data = bytearray(bencode.encode(value))
    data[at % len(data)] = byte
    same_as_canonical(bytes(data))


@needs_extension
@pytest.mark.parametrize("data", [
    b"d1:ai-1ee",  # negative: the lenient decoder decides
    b"d1:ai-0ee", b"d1:ai01ee", b"d1:a01:xe", b"d1:b0:1:a0:e", b"d1:a0:1:a0:e",
    b"d1:ai" + b"9" * bencode.MAX_INTEGER_DIGITS + b"ee",  # the longest integer taken
    b"d1:ai" + b"9" * (bencode.MAX_INTEGER_DIGITS + 1) + b"ee",  # one digit too many
    b"d1:a" + b"l" * (bencode.MAX_DEPTH - 1) + b"e" * (bencode.MAX_DEPTH - 1) + b"e",
    b"d1:a" + b"l" * bencode.MAX_DEPTH + b"e" * bencode.MAX_DEPTH + b"e",
    b"d1:a18446744073709551617:xe", b"d1:a99999999999999999999:xe",
    b"di1ei2ee", b"d1:ai1e", b"de", b"d0:0:e", b"d1:x2:i-e", b"li1ee", b"i1e", b"",
])
def test_edges(data):
    same_as_canonical(data)


@needs_extension
def test_compiled_answers_what_it_can_check():
    """The compiled decoder takes the common case, and leaves negative integers, integers
    too long and nesting too deep to the canonical decoder."""
    assert same_as_canonical(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
    assert same_as_canonical(b"d1:ai" + b"9" * bencode.MAX_INTEGER_DIGITS + b"ee")
    assert not same_as_canonical(b"d1:x2:i-e")  # "i-" inside a string: taken the slow way
    deep = b"d1:a" + b"l" * (bencode.MAX_DEPTH - 1) + b"e" * (bencode.MAX_DEPTH - 1) + b"e"
    assert same_as_canonical(deep)
    assert not same_as_canonical(deep[:4] + b"l" + deep[4:-1] + b"ee")


def _two_scans(data: bytes) -> bool:
    """The two tests the one scan replaces: ``i-``, and an ``i`` followed by too many digits
    (digits read as ``0``, ``i`` kept, anything else ``x``)."""
    classes = bytes(0x30 if 0x30 <= b <= 0x39 else b if b == 0x69 else 0x78
                    for b in range(256))
    too_long = b"i" + b"0" * (bencode.MAX_INTEGER_DIGITS + 1)
    return b"i-" in data or too_long in data.translate(classes)


runs = st.lists(st.one_of(
    st.sampled_from([b"i", b"-", b"e", b"d", b":", b"x"]),
    st.integers(0, 2 * bencode.MAX_INTEGER_DIGITS).map(lambda n: b"7" * n),
    st.binary(max_size=4)), max_size=12).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(runs)
def test_one_scan_finds_what_the_two_scans_find(data):
    assert (compiled._NEGATIVE_OR_TOO_LONG(data) is not None) == _two_scans(data)


def test_one_scan_on_every_datagram():
    for data in bencoded_datagrams():
        assert (compiled._NEGATIVE_OR_TOO_LONG(data) is not None) == _two_scans(data)
