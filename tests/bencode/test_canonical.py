"""The canonical bencoded-dictionary decoder against the lenient decoder it is the fast path
of: the same value and top-level spans whenever it answers, an answer for every canonical
dictionary, None for anything the lenient decoder reports or refuses."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode.canonical import decode_canonical
from p2pkit.capture.packets import decode_frame
from p2pkit.capture.readers import CaptureReader
from p2pkit.errors import ParseError

CAPTURES = Path(__file__).parent.parent / "data" / "captures"
SAMPLE = files("p2pkit") / "data" / "sample-bittorrent-utp-dht.pcap"


@lru_cache(maxsize=1)
def bencoded_datagrams() -> tuple[bytes, ...]:
    """Every UDP payload that starts like bencoding (``d`` or ``l``: KRPC and whatever looks
    like it) in every committed capture and the bundled sample."""
    out = []
    for path in [*sorted(CAPTURES.glob("*.pcap*")), SAMPLE]:
        with CaptureReader(str(path)) as reader:
            for frame in reader:
                pkt = decode_frame(frame)
                if pkt is not None and pkt.transport == "udp" and pkt.payload[:1] in b"dl" \
                        and pkt.payload:
                    out.append(pkt.payload)
    return tuple(out)


def agrees(data: bytes) -> bool:
    """Whether the canonical decoder answered; when it did, the lenient decoder gives the same
    value and spans and no deviation; when it did not, the lenient decoder reports or
    refuses something, the value is not a dictionary, or it holds a negative integer (left
    to the lenient decoder)."""
    fast = decode_canonical(data)
    try:
        lenient = bencode.decode_lenient(data, spans=True)
    except ParseError:
        assert fast is None
        return False
    if fast is None:
        assert lenient.deviations or type(lenient.value) is not dict \
            or _has_negative(lenient.value)
        return False
    assert fast == (lenient.value, lenient.spans)
    assert not lenient.deviations
    assert [type(k) for k in fast[0]] == [bytes] * len(fast[0])
    return True


def _has_negative(value) -> bool:
    if type(value) is int:
        return value < 0
    if type(value) is list:
        return any(_has_negative(v) for v in value)
    if type(value) is dict:
        return any(_has_negative(v) for v in value.values())
    return False


def test_every_datagram_of_the_committed_captures():
    datagrams = bencoded_datagrams()
    answered = sum(agrees(d) for d in datagrams)
    assert len(datagrams) > 900  # dht-02, dht-03, the nDPI uTP capture, the sample
    assert answered > 0.9 * len(datagrams)  # real nodes send canonical bencoding


def test_mutated_datagrams():
    """Each real datagram cut short, with a byte changed, or with bytes after it."""
    for data in bencoded_datagrams()[:300]:
        for cut in (1, len(data) // 2, len(data) - 1):
            agrees(data[:cut])
        agrees(data + b"e")
        for at in (1, len(data) // 3, len(data) - 2):
            for byte in (b"0", b"9", b"i", b"e", b"d", b":", b"-"):
                agrees(data[:at] + byte + data[at + 1:])


keys = st.binary(max_size=6)
leaves = st.binary(max_size=30) | st.integers(-3, 10**20) | st.integers(0, 9)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_any_canonical_dictionary(value):
    data = bencode.encode(value)
    answered = agrees(data)
    assert answered or _has_negative(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes(data):
    agrees(b"d" + data)
    agrees(data)


def test_nesting_bound():
    """As deep as the lenient decoder's bound allows, and no deeper."""
    deep = b"d1:a" + b"l" * (bencode.MAX_DEPTH - 1) + b"e" * (bencode.MAX_DEPTH - 1) + b"e"
    assert agrees(deep)
    assert decode_canonical(b"d1:a" + b"l" * 200 + b"e" * 200 + b"e") is None


@pytest.mark.parametrize("data", [b"", b"d", b"de", b"d0:0:e", b"d1:ai0ee", b"d1:ai-0ee",
                                  b"d1:ai01ee", b"d1:a01:xe", b"d1:b0:1:a0:e", b"d1:a0:1:a0:e",
                                  b"d1:ai1e", b"li1ee", b"d1:a99999999999999999999:xe"])
def test_edges(data):
    agrees(data)
