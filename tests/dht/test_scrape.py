"""BEP 33 bloom filters against the BEP's own test vector."""

from __future__ import annotations

import ipaddress

import pytest

from p2pkit.dht.scrape import BLOOM_BYTES, ScrapeBloomFilter
from p2pkit.errors import LocalProtocolError, ParseError

#: BEP 33 §Test Vectors, as printed there.
VECTOR = bytes.fromhex("""
 F6C3F5EA A07FFD91 BDE89F77 7F26FB2B FF37BDB8 FB2BBAA2 FD3DDDE7 BACFFF75 EE7CCBAE
 FE5EEDB1 FBFAFF67 F6ABFF5E 43DDBCA3 FD9B9FFD F4FFD3E9 DFF12D1B DF59DB53 DBE9FA5B
 7FF3B8FD FCDE1AFB 8BEDD7BE 2F3EE71E BBBFE93B CDEEFE14 8246C2BC 5DBFF7E7 EFDCF24F
 D8DC7ADF FD8FFFDF DDFFF7A4 BBEEDF5C B95CE81F C7FCFF1F F4FFFFDF E5F7FDCB B7FD79B3
 FA1FC77B FE07FFF9 05B7B7FF C7FEFEFF E0B8370B B0CD3F5B 7F2BD93F EB4386CF DD6F7FD5
 BFAF2E9E BFFFFEEC D67ADBF7 C67F17EF D5D75EBA 6FFEBA7F FF47A91E B1BFBB53 E8ABFB57
 62ABE8FF 237279BF EFBFEEF5 FFC5FEBF DFE5ADFF ADFEE1FB 737FFFFB FD9F6AEF FEEE76B6
 FD8F72EF""")


def addresses():
    yield from (f"192.0.2.{i}" for i in range(256))
    yield from (str(ipaddress.IPv6Address("2001:db8::") + i) for i in range(0x3E8))


def test_the_bep_test_vector():
    bloom = ScrapeBloomFilter()
    for ip in addresses():
        bloom.insert(ip)
    assert len(VECTOR) == BLOOM_BYTES and bytes(bloom) == VECTOR
    assert f"{bloom.estimate():.4f}".startswith("1224.930")  # "should be 1224.9308"


def test_union_is_or_and_estimates_grow():
    ips = list(addresses())
    a, b, whole = ScrapeBloomFilter(), ScrapeBloomFilter(), ScrapeBloomFilter()
    for i, ip in enumerate(ips):
        (a if i % 2 else b).insert(ip)
        whole.insert(ip)
    assert bytes(a | b) == bytes(whole) == VECTOR
    assert a.estimate() < whole.estimate() and ScrapeBloomFilter().estimate() < 1


def test_only_addresses_and_whole_filters():
    with pytest.raises(LocalProtocolError):
        ScrapeBloomFilter().insert("example.org")
    with pytest.raises(ParseError):
        ScrapeBloomFilter(bytes(255))
    assert bytes(ScrapeBloomFilter(VECTOR)) == VECTOR
