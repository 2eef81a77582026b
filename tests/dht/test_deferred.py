"""KRPC datagrams decoded in two halves (p2pkit.dht.deferred) against the eager lenient
decode: the same header, message and deviations on every KRPC datagram of the committed
captures and on hypothesis-generated messages, and the same records in every output mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode import BencodedDict, Field, Integer, ListOf, Rules, String
from p2pkit.bencode import compiled as compiled_module
from p2pkit.capture.dissect import dissect
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from p2pkit.deviations import deviations_of
from p2pkit.dht import deferred as deferred_module
from p2pkit.dht import dissect as dht_dissect
from p2pkit.dht.deferred import CHECKS_MAY_WAIT, decode_deferred
from p2pkit.dht.krpc import decode_lenient
from p2pkit.errors import ParseError
from tests.bencode.test_canonical import SAMPLE, bencoded_datagrams
from tests.dht.test_krpc import ordered

CAPTURES = Path(__file__).parent.parent / "data" / "captures"


def test_checks_may_wait_is_derived_from_the_declarations():
    assert CHECKS_MAY_WAIT  # no KRPC field can fail a lenient decode
    plain = [Field("id", String(20), required=True), Field("n", ListOf(Integer()))]
    assert not BencodedDict(plain).may_fail
    assert BencodedDict([*plain, Field("x", Integer(), fatal=True)]).may_fail
    assert BencodedDict([Field("n", ListOf(Integer(), max_items=3))]).may_fail
    assert BencodedDict(plain, rules=Rules(fatal_required=True)).may_fail
    nested = BencodedDict([Field("x", Integer(), fatal=True)])
    assert BencodedDict([Field("inner", nested)]).may_fail


def same_as_eager(data: bytes) -> bool:
    """Whether the datagram was deferred; when it was, its header, message and deviations
    are the eager decode's."""
    deferred = decode_deferred(data)
    if deferred is None:
        return False
    eager = decode_lenient(data)
    message = eager.message
    assert (deferred.t, deferred.y) == (message.t, message.y)
    assert deferred.method == (message.method if message.y == "q" else None)
    later = deferred.message()
    assert ordered(later) == ordered(message)
    assert deviations_of(later) == eager.deviations
    return True


def test_every_krpc_datagram_of_the_committed_captures():
    datagrams = bencoded_datagrams()
    deferred = 0
    for data in datagrams:
        try:
            deferred += same_as_eager(data)
        except ParseError:  # not KRPC: never deferred
            assert decode_deferred(data) is None or pytest.fail("deferred an error")
    assert deferred > 0.9 * len(datagrams)


keys = st.sampled_from([b"t", b"y", b"q", b"a", b"r", b"e", b"id", b"p", b"v", b"ip", b"ro",
                        b"target", b"info_hash", b"token", b"nodes", b"values", b"port",
                        b"want", b"samples", b"k", b"seq", b"sig"])
leaves = st.binary(max_size=24) | st.integers(0, 70000) | st.sampled_from(
    [b"q", b"r", b"e", b"ping", b"find_node", b"get_peers", b"put", b"announce_peer",
     b"\xff\xfe", b"x" * 20, b"x" * 26, b"x" * 6, b"x" * 18, b"n4"])
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=6))
def test_any_dictionary(message):
    data = bencode.encode(message)
    try:
        assert same_as_eager(data) or len(data) > 4096
    except ParseError:
        assert decode_deferred(data) is None


def _records(path, monkeypatch, deferred: bool):
    """Every record of a capture, each rendered in the three modes (summary line first, as
    a summary-only run draws it before anything else is read)."""
    with monkeypatch.context() as m:
        if not deferred:
            # (KrpcDecoder.datagram defers only while CHECKS_MAY_WAIT)
            m.setattr(dht_dissect, "CHECKS_MAY_WAIT", False)
        out = []
        waited = 0
        for record in dissect(str(path)):
            waited += isinstance(getattr(getattr(record, "_decode", None), "__self__", None),
                                 dht_dissect._DeferredDatagram)
            line = render_summary(record)
            out.append((line, render_tree(record), render_jsonl(record)))
        assert (waited > 0) == deferred  # (the eager run really decoded every datagram at once)
        return out


@pytest.mark.parametrize("path", [CAPTURES / "dht-02-bep44-put-get.pcap",
                                  CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap",
                                  SAMPLE], ids=lambda p: Path(str(p)).name)
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "pure-python"])
def test_records_equal_the_eager_records(path, compiled, monkeypatch):
    eager = _records(path, monkeypatch, deferred=False)
    if not compiled:
        monkeypatch.setattr(compiled_module, "_bdecode", None)
    elif not compiled_module.COMPILED:
        pytest.skip("fastbencode's compiled extension not installed")
    lazy = _records(path, monkeypatch, deferred=True)
    assert lazy == eager
    assert sum(" bt-dht " in line for line, _, _ in lazy) > 0


def test_a_response_is_named_by_its_query():
    """Pairing happens when the datagram is read (frame order), not when its fields are."""
    query = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    answer = b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re"
    decoder = dht_dissect.KrpcDecoder()

    class Pkt:
        def __init__(self, payload, src, dst):
            self.payload, self.src, self.dst, self.frame, self.time = payload, src, dst, 1, 0.0

    q = decoder.decode(Pkt(query, "10.0.0.1:1", "10.0.0.2:2"))
    r = decoder.decode(Pkt(answer, "10.0.0.2:2", "10.0.0.1:1"))
    assert not r.decoded and r.summary_fields(("method", "transaction_id")) == [
        ("method", "ping"), ("transaction_id", "6161")]
    assert r.fields["method"] == "ping" and r.value.method == "ping"
    assert q.fields["a"]["id"] == b"abcdefghij0123456789".hex()
    assert deferred_module.header({b"y": b"e", b"t": b"aa"}) == (b"aa", "e", None)


def _declared_header(raw: dict) -> tuple:
    """The header read field by field with the declared types, nothing remembered."""
    return tuple(deferred_module._declared(raw, f.raw_key, f.type)
                 for f in deferred_module._HEADER)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_header_is_the_declared_types_reading(raw):
    """The remembered ``y``/``q`` values give what the declared types give, also once the
    memory was cleared for being full."""
    assert deferred_module.header(raw) == _declared_header(raw)
    assert deferred_module.header(raw) == _declared_header(raw)  # (now remembered)


def test_header_memory_is_bounded():
    for n in range(3 * deferred_module.MAX_REMEMBERED):
        raw = {b"t": b"aa", b"y": b"q", b"q": b"m%d" % n}
        assert deferred_module.header(raw) == (b"aa", "q", f"m{n}")
    assert len(deferred_module._Q_SEEN) <= deferred_module.MAX_REMEMBERED
    assert deferred_module.header({b"y": b"\xff", b"q": [b"x"]}) == (None, b"\xff", None)
