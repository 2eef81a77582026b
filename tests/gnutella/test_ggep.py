"""GGEP: the spec's length boundary cases, COBS, deflate, extension blocks, fuzz."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.ggep import (
    MAX_INFLATED_SIZE,
    ExtensionBlock,
    GgepBlock,
    cobs_decode,
    cobs_encode,
    extension,
)


@pytest.mark.parametrize("length, encoded", [
    # GGEP §length encoding, "Boundary Cases".
    (0, "40"), (63, "7f"), (64, "8140"), (4095, "bf7f"), (4096, "818040"), (262143, "bfbf7f"),
])
def test_length_boundary_cases(length, encoded):
    data = bytes.fromhex("c3 82 5858" + encoded) + b"x" * length
    block = GgepBlock.parse(data)
    assert block[0].id == "XX" and len(block[0].data) == length
    assert GgepBlock.build(block) == data


def test_cobs_and_deflate_order():
    """"apply the encoding AFTER the optional compression step"."""
    payload = b"\x00" * 50 + b"alpha"
    ext = extension("XX", payload, cobs=True, deflate=True)
    assert ext.data == cobs_encode(zlib.compress(payload)) and 0 not in ext.data
    data = GgepBlock.build([ext])
    assert data[1] == 0x80 | 0x40 | 0x20 | 2
    assert GgepBlock.parse(data)[0].payload == payload


@given(st.binary(max_size=600))
def test_cobs_round_trip(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded and cobs_decode(encoded) == data


def test_inflate_bound():
    bomb = extension("XX", b"\x00" * (MAX_INFLATED_SIZE + 1), deflate=True)
    with pytest.raises(LimitExceeded):
        GgepBlock.parse(GgepBlock.build([dict(id="XX", deflate=True, data=bomb.data)]))


@pytest.mark.parametrize("data, reason", [
    ("c4 82 5858 40", "magic"),
    ("c3 90 5858 40", "reserved"),
    ("c3 80 40", "ID length is 0"),
    ("c3 82 5800 40", "0x00"),
    ("c3 82 5858 01", "neither M nor L"),
    ("c3 82 5858 45 01", "truncated"),
    ("c3 02 5858 40", "truncated"),
])
def test_errors(data, reason):
    with pytest.raises(ParseError) as e:
        GgepBlock.parse(bytes.fromhex(data))
    assert reason in str(e.value) and e.value.protocol == "gnutella"


def test_known_values():
    block = GgepBlock.parse(GgepBlock.build([
        extension("IPP", value=[dict(ip="127.0.0.11", port=6347)]),
        extension("LF", value=5_000_000_000),
        extension("H", value=dict(hash_type=1, digest=bytes(20)), cobs=True),
    ]))
    assert block[0].value[0].port == 6347 and block[1].value == 5_000_000_000
    assert block[2].value.digest == bytes(20)


def test_extension_block_coexistence():
    """Appendix B: GGEP after a HUGE urn, 0x1C separators kept, XML recognised."""
    data = b"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB\x1c<?xml version='1.0'?>\x1c" \
        + GgepBlock.build([extension("XX", b"1")])
    parts = ExtensionBlock.parse(data)
    assert [p.kind for p in parts] == ["urn", "xml", "ggep"]
    assert ExtensionBlock.build(parts) == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text("ABCDEFGHIJKLMNOP", min_size=1, max_size=15),
                          st.binary(max_size=80), st.booleans(), st.booleans()),
                min_size=1, max_size=5))
def test_round_trip(items):
    block = [extension(i, p, cobs=c, deflate=d) for i, p, c, d in items]
    data = GgepBlock.build(block)
    parsed = GgepBlock.parse(data)
    assert [e.payload for e in parsed] == [p for _, p, _, _ in items]
    assert GgepBlock.build(parsed) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    for schema in (GgepBlock, ExtensionBlock):
        try:
            schema.parse(b"\xc3" + data)
        except ParseError:
            pass
