"""CARv1: header and sections, every block checked against its CID, bounds, fuzzing. The
byte-level check against js @ipld/car is in tests/interop/test_unixfs_import_agreement.py."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.car import MAX_ROOTS, CarHeader, read_car, write_car
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.unixfs_importer import ImportSettings, import_bytes


def test_header_layout():
    root = Cid.of(b"x")
    header = CarHeader.build({"roots": [bytes(root)]})
    # varint length, {"roots": [tag 42 (0x00 + CID)], "version": 1} in canonical DAG-CBOR
    body = (b"\xa2\x65roots\x81\xd8\x2a\x58\x25\x00" + bytes(root) + b"\x67version\x01")
    assert header == bytes([len(body)]) + body


def test_round_trip_of_an_imported_file():
    blocks = {}
    settings = ImportSettings(chunk_size=10, max_children=3, cid_version=1, raw_leaves=True)
    root = import_bytes(bytes(range(100)), settings, blocks=blocks)
    roots, read = read_car(write_car([root], blocks.items()))
    assert roots == [root] and read == blocks


def test_a_block_that_does_not_match_its_cid_is_refused():
    car = bytearray(write_car([Cid.of(b"abc")], [(Cid.of(b"abc"), b"abc")]))
    car[-1] ^= 1
    with pytest.raises(ParseError, match="does not match") as e:
        read_car(bytes(car))
    assert e.value.offset is not None and e.value.protocol == "car"


def test_bounds():
    roots = [bytes(Cid.of(bytes([i]))) for i in range(MAX_ROOTS + 1)]
    with pytest.raises(LimitExceeded):
        CarHeader.parse(CarHeader.build({"roots": roots}))
    with pytest.raises(LimitExceeded):
        read_car(b"\xff\xff\xff\x7f")


@given(st.binary(max_size=80))
def test_random_bytes_raise_only_parse_error(data):
    try:
        read_car(data)
    except ParseError:
        pass
