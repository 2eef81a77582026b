"""CIDs (multiformats-cid.md): the spec's example, v0/v1 conversions, decoding rules."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import BuildError, ParseError
from p2pkit.ipfs.cid import Cid


def test_spec_example():
    # §Variant - Human-Readable Form: zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA is
    # "base58btc - cidv1 - raw - sha2-256-256-6e6ff795..."
    c = Cid.decode("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA")
    assert (c.version, c.codec_name) == (1, "raw")
    assert c.multihash.hex() == ("1220" "6e6ff7950a36187a801613426e858dce686cd7d7e3c0fc42ee0330072d245c95")
    assert c.encode("base58btc") == "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA"


def test_v0_v1_conversion():
    v0 = Cid.decode("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
    assert bytes(v0) == v0.multihash and len(bytes(v0)) == 34
    v1 = v0.to_v1()
    assert str(v1) == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    assert bytes(v1)[:2] == b"\x01\x70"
    assert v1.to_v0() == v0
    assert Cid.from_bytes(bytes(v1)) == v1 and Cid.from_bytes(bytes(v0)) == v0
    with pytest.raises(BuildError):
        Cid.of(b"x").to_v0()  # raw content has no CIDv0


def test_decoding_rules():
    # "If the first decoded byte is 0x12, return an error"
    mh = Cid.decode("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn").multihash
    with pytest.raises(ParseError):
        Cid.decode("f" + mh.hex())
    with pytest.raises(ParseError) as e:
        Cid.from_bytes(b"\x02\x55\x12\x00")  # CIDv2 is reserved
    assert e.value.protocol == "cid" and e.value.path == "version"
    with pytest.raises(ParseError) as e:
        Cid.from_bytes(bytes(Cid.of(b"x")) + b"!")
    assert e.value.offset == 36


def test_raw_leaf_hello_world():
    assert str(Cid.of(b"hello world")) == \
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    assert Cid.of(b"hello world").verify(b"hello world")


@given(st.binary(max_size=64), st.sampled_from(["raw", "dag-pb", "dag-cbor"]),
       st.sampled_from(["base32", "base58btc", "base16", "base64", "base36"]))
def test_round_trip(data, codec, base):
    c = Cid.of(data, codec=codec)
    assert Cid.decode(c.encode(base)) == c
    assert Cid.decode(bytes(c)) == c


@given(st.binary(max_size=50))
def test_random_bytes_raise_only_parse_error(data):
    try:
        Cid.from_bytes(data)
    except ParseError:
        pass
