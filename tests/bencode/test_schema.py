"""The Locator of p2pkit.bencode.schema measuring offsets from a known canonical value: the
offsets its scan finds, on every bencoded datagram of the committed captures and on
hypothesis-generated values, for every path into them and paths that lead nowhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode.canonical import decode_canonical
from p2pkit.bencode.schema import Locator
from tests.bencode.test_canonical import bencoded_datagrams, values


def _paths(value, prefix=()):
    """Every path into ``value``, and one step past each leaf and container."""
    yield prefix
    if type(value) is dict:
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
        yield (*prefix, b"\xffnot there")
    elif type(value) is list:
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))
        yield (*prefix, len(value))
    else:
        yield (*prefix, 0)


def measured_as_scanned(data: bytes) -> int:
    decoded = decode_canonical(data)
    if decoded is None:
        return 0
    value, spans = decoded
    measured = Locator(data, spans, value)
    scanned = Locator(data)
    paths = list(_paths(value))
    for path in paths:
        assert measured.locate(path) == scanned.locate(path), path
    return len(paths)


def test_every_datagram_of_the_committed_captures():
    assert sum(measured_as_scanned(d) for d in bencoded_datagrams()) > 5000


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.binary(max_size=6), values, max_size=5))
def test_any_canonical_dictionary(value):
    measured_as_scanned(bencode.encode(value))
