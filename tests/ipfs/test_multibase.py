"""Multibase text encodings: RFC 4648 vectors, base58btc, prefixes, errors."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import ParseError
from p2pkit.ipfs import multibase

# multibase's test vectors for "yes mani !" (multiformats/multibase tests/basic.csv)
YES_MANI = {
    "base16": "f796573206d616e692021",
    "base16upper": "F796573206D616E692021",
    "base32": "bpfsxgidnmfxgsibb",
    "base32upper": "BPFSXGIDNMFXGSIBB",
    "base36": "k2lcpzo5yikidynfl",
    "base58btc": "z7paNL19xttacUY",
    "base64": "meWVzIG1hbmkgIQ",
    "base64pad": "MeWVzIG1hbmkgIQ==",
    "base64url": "ueWVzIG1hbmkgIQ",
    "base64urlpad": "UeWVzIG1hbmkgIQ==",
}


@pytest.mark.parametrize("base,text", sorted(YES_MANI.items()))
def test_vectors(base, text):
    assert multibase.encode(base, b"yes mani !") == text
    assert multibase.decode(text) == (base, b"yes mani !")


def test_leading_zeros_survive_base58_and_base36():
    for base in ("base58btc", "base36"):
        assert multibase.decode(multibase.encode(base, b"\0\0ab"))[1] == b"\0\0ab"


@pytest.mark.parametrize("text,offset", [("", 0), ("?abc", 0), ("zabc0", 4), ("bAB", 1),
                                         ("fabc", 1)])
def test_errors(text, offset):
    with pytest.raises(ParseError) as e:
        multibase.decode(text)
    assert e.value.protocol == "multibase" and e.value.offset == offset


@given(st.sampled_from(sorted(multibase.BASES)), st.binary(max_size=64))
def test_round_trip(base, data):
    assert multibase.decode(multibase.encode(base, data)) == (base, data)


@given(st.text(max_size=20))
def test_random_text_raises_only_parse_error(text):
    try:
        multibase.decode(text)
    except ParseError:
        pass
