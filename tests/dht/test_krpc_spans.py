"""Top-level spans by record field name generated per key sequence (p2pkit.dht.krpc_spans)
against the lenient decoder's own spans and ``value_spans``, on every KRPC datagram of the
committed captures and on hypothesis dictionaries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode.compiled import decode_canonical_dict, value_spans
from p2pkit.dht import krpc_spans
from p2pkit.dht.krpc_spans import field_name, named_spans
from tests.bencode.test_canonical import bencoded_datagrams
from tests.dht.test_deferred import keys, values


def same_spans(data: bytes) -> bool:
    """Whether ``data`` is a canonical dictionary; if so, its named spans are the lenient
    decoder's (in the same order)."""
    decoded = decode_canonical_dict(data)
    if decoded is None or len(data) > 4096:
        return False
    raw = decoded[0]
    expected = {field_name(k): span for k, span in
                bencode.decode_lenient(data, spans=True).spans.items()}
    assert list(named_spans(raw, len(data)).items()) == list(expected.items())
    assert named_spans(raw, len(data)) == {field_name(k): span for k, span in
                                          value_spans(raw, len(data)).items()}
    return True


def test_every_krpc_datagram_of_the_committed_captures():
    assert sum(same_spans(data) for data in bencoded_datagrams()) > 500


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys | st.sampled_from([b"transaction_id", b"method", b"\xff"]), values,
                       min_size=1, max_size=7))
def test_any_dictionary(message):
    same_spans(bencode.encode(message))


def test_key_sequences_are_bounded(monkeypatch):
    monkeypatch.setattr(krpc_spans, "MAX_KEY_SEQUENCES", len(krpc_spans._COMPILED) + 2)
    for n in range(10):
        assert same_spans(bencode.encode({b"k%02d" % n: b"x", b"r": {b"id": b"i"}, b"t": 7}))
    assert len(krpc_spans._COMPILED) <= krpc_spans.MAX_KEY_SEQUENCES
