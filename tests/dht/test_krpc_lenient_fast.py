"""decode_lenient's fast path (the lenient declaration's ``parse_bytes``, no construct streams)
against the generic lenient schema: same value, same deviations, same errors."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.dht import krpc
from p2pkit.dht.krpc import KrpcMessageLenient, decode_lenient
from p2pkit.errors import ParseError
from tests.dht.test_krpc import DHT02, DHT03, NDPI_UTP, krpc_datagrams, ordered


def generic_lenient(data: bytes):
    deviations: list = []
    message = KrpcMessageLenient.parse_stream(io.BytesIO(data), deviations=deviations)
    return message, deviations


def same_as_generic(data: bytes) -> bool:
    """Whether decode_lenient and the generic schema agree; True when both fail alike."""
    try:
        expected = generic_lenient(data)
    except ParseError as e:
        with pytest.raises(ParseError) as got:
            decode_lenient(data)
        assert (got.value.offset, got.value.reason) == (e.offset, e.reason)
        return True
    fast = krpc._lenient_parse_bytes(data, [])
    result = decode_lenient(data)
    assert ordered(result.message) == ordered(expected[0])
    assert result.deviations == expected[1]
    return fast is not None


@pytest.mark.parametrize("capture", [DHT02, DHT03, NDPI_UTP])
def test_lenient_fast_path_agrees_on_real_datagrams(capture):
    served = sum(same_as_generic(payload) for _, _, payload in krpc_datagrams(capture))
    assert served > 0


keys = st.sampled_from([b"t", b"y", b"q", b"a", b"r", b"e", b"id", b"p", b"v", b"ip",
                        b"target", b"info_hash", b"token", b"nodes", b"values", b"port"])
leaves = st.binary(max_size=24) | st.integers(-5, 70000) | st.sampled_from(
    [b"q", b"r", b"e", b"ping", b"find_node", b"get_peers", b"x" * 20])
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=6))
def test_lenient_fast_path_equals_the_schema_on_any_dictionary(message):
    same_as_generic(bencode.encode(message))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_lenient_fast_path_on_random_bytes(data):
    same_as_generic(b"d" + data)
