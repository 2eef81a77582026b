"""Multihash: known digests, bounds, verification."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.multihash import FUNCTIONS, MAX_DIGEST_LENGTH, Multihash, digest, verify


def test_sha2_256_layout():
    mh = digest("sha2-256", b"foo")
    assert mh[:2] == b"\x12\x20" and mh[2:] == hashlib.sha256(b"foo").digest()
    # multihash README's example: the sha1 multihash of "Merkle–Damgård"
    assert digest("sha1", "Merkle–Damgård".encode()).hex() == "11148a173fd3e32c0fa78b90fe42d305f202244e2739"
    assert digest("identity", b"ab").hex() == "00026162"


def test_bounds_and_truncation():
    with pytest.raises(LimitExceeded):
        Multihash.parse(b"\x00" + bytes.fromhex("8110") + bytes(MAX_DIGEST_LENGTH + 1))
    with pytest.raises(ParseError) as e:
        Multihash.parse(b"\x12\x20abc")
    assert e.value.protocol == "multihash" and e.value.path == "digest"


@given(st.sampled_from(sorted(FUNCTIONS)), st.binary(max_size=100))
def test_verify_round_trip(function, data):
    mh = digest(function, data)
    assert Multihash.build(Multihash.parse(mh)) == mh
    assert verify(mh, data)
    assert not verify(mh, data + b"x")


@given(st.binary(max_size=40))
def test_random_bytes_raise_only_parse_error(data):
    try:
        Multihash.parse(data)
    except ParseError:
        pass
