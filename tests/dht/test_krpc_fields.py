"""KRPC record fields generated per message shape (p2pkit.dht.krpc_fields) against the generic
way (the lenient message, its JSON conversion and the deviations split): the same fields, in
the same order and of the same JSON types, on every KRPC datagram of the committed captures and
on hypothesis-generated KRPC messages; compact records as JSON against their layouts' parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from construct import Const, Int16ub, Struct
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode import Records
from p2pkit.capture.dissect import dissect
from p2pkit.capture.lazy_record import ValueLater
from p2pkit.capture.record import Record, json_value
from p2pkit.deviations import deviations_of
from p2pkit.dht import dissect as dht_dissect
from p2pkit.dht import krpc, krpc_fields
from p2pkit.dht.deferred import decode_deferred
from p2pkit.dht.krpc_fields import compact_records, record_fields
from p2pkit.schema import FixedLayout
from tests.bencode.test_canonical import SAMPLE, bencoded_datagrams
from tests.dht.test_krpc import ordered

CAPTURES = Path(__file__).parent.parent / "data" / "captures"


def generated_fields(data: bytes, method) -> bool | None:
    """None when the datagram is not deferred; else whether the generated function answered,
    after checking that its answer is the generic way's fields (as JSON text: order and types)
    and that the generic way reported no departure."""
    d = decode_deferred(data, dht_dissect._DeferredDatagram)
    if d is None:
        return None
    d.paired = method
    fast = record_fields(d, method)
    fields, message, deviations = dht_dissect._fields(d.paired_message())
    if fast is None:
        return False
    assert json.dumps(fast) == json.dumps(fields)
    assert deviations == []
    return True


def test_every_krpc_datagram_of_the_committed_captures():
    answered = deferred = 0
    for data in bencoded_datagrams():
        for method in ("get_peers", None):
            try:
                found = generated_fields(data, method)
            except Exception:  # not KRPC: the generic way refuses it too
                assert decode_deferred(data) is None
                continue
            if found is not None:
                deferred += 1
                answered += found
    assert deferred and answered > 0.9 * deferred


# KRPC-like messages: the declared keys with values of their types or not, unknown keys
_strings = st.sampled_from([0, 1, 4, 6, 18, 20, 26, 32, 38, 52, 64, 65, 100]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n))
_leaf = _strings | st.integers(-2, 70000) | st.sampled_from([b"\xff\xfe", "é".encode()])
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from([b"a", b"_x", b"\xff"]), inner,
                                        max_size=2), max_leaves=6)
def _sized(*sizes: int) -> st.SearchStrategy[bytes]:
    return st.sampled_from(sizes).flatmap(lambda n: st.binary(min_size=n, max_size=n))


_ints = st.integers(0, 70000)
#: A value of each declared body key's type (mostly), so that most messages report nothing.
_typed = {b"id": _sized(20), b"target": _sized(20), b"info_hash": _sized(20),
          b"port": st.integers(0, 65535), b"token": st.binary(max_size=80),
          b"salt": st.binary(max_size=8), b"want": st.lists(st.sampled_from([b"n4", b"n6"])),
          b"k": _sized(32), b"sig": _sized(64), b"BFsd": _sized(256), b"BFpe": _sized(256),
          b"nodes": _sized(0, 26, 52, 208), b"nodes6": _sized(0, 38, 76),
          b"values": st.lists(_sized(6, 18), max_size=3), b"samples": _sized(0, 20, 60),
          b"v": _value}
_body_keys = st.sampled_from(sorted({f.raw_key for f in krpc.Arguments.fields}
                                    | {f.raw_key for f in krpc.ResponseValues.fields}
                                    | {b"p", b"bs", b"_x", b"\xff", b"0x"}))


@st.composite
def _body(draw) -> dict:
    body = {}
    if draw(st.integers(0, 9)):
        body[b"id"] = draw(_sized(20))
    for key in draw(st.lists(_body_keys, max_size=6)):
        good = _typed.get(key, _ints)
        body[key] = draw(good if draw(st.integers(0, 19)) else _value)
    return body


_methods = st.sampled_from([*krpc.QUERY_ARGUMENTS, "vote", "é"]).map(str.encode) | st.just(
    b"\xff")
_top = {b"v": st.binary(max_size=6), b"ip": _sized(6, 18), b"ro": st.just(1)}


@st.composite
def krpc_messages(draw) -> dict:
    y = draw(st.sampled_from([b"q", b"r", b"e"]) if draw(st.integers(0, 19))
             else st.binary(max_size=2))
    top = {b"y": y}
    if draw(st.integers(0, 19)):
        top[b"t"] = draw(st.binary(max_size=6) if draw(st.integers(0, 19)) else _value)
    body = {b"q": b"a", b"r": b"r"}.get(y)
    if body is not None and draw(st.integers(0, 19)):
        top[body] = draw(_body() if draw(st.integers(0, 19)) else _value)
    if y == b"q" and draw(st.integers(0, 19)):
        top[b"q"] = draw(_methods)
    if y == b"e" and draw(st.integers(0, 9)):
        top[b"e"] = draw(st.sampled_from([[201, b"Generic Error"], [299, b"\xff"], [1], b"x"]))
    for key in draw(st.lists(st.sampled_from(
            [b"v", b"ip", b"ro", b"r", b"a", b"e", b"q", b"p", b"zz", b"_k"]), max_size=3)):
        good = _top.get(key, _value)
        top.setdefault(key, draw(good if draw(st.integers(0, 9)) else _value
                                 | st.just({b"id": b"i"})))
    return top


@settings(max_examples=300, deadline=None)
@given(krpc_messages(), st.sampled_from([None, "get_peers", "é", b"\xff"]))
def test_generated_messages(message, method):
    generated_fields(bencode.encode(message), method)


@settings(max_examples=60, deadline=None)
@given(krpc_messages())
def test_shapes_past_the_bound_take_the_generic_way(message):
    bound = krpc_fields.MAX_SHAPES
    krpc_fields.MAX_SHAPES = 0
    try:
        assert generated_fields(bencode.encode(message), "ping") in (None, False, True)
    finally:
        krpc_fields.MAX_SHAPES = bound
    assert len(krpc_fields._COMPILED) <= bound


def test_compiled_shapes_are_bounded(monkeypatch):
    monkeypatch.setattr(krpc_fields, "MAX_SHAPES", len(krpc_fields._COMPILED) + 3)
    for n in range(20):
        data = bencode.encode({b"r": {b"id": b"i" * 20, b"k%d" % n: 1}, b"t": b"aa",
                               b"y": b"r"})
        assert generated_fields(data, None) is True  # (compiled, or uncompiled and answered)
    assert len(krpc_fields._COMPILED) <= krpc_fields.MAX_SHAPES


@pytest.mark.parametrize("layout", [krpc.CompactNode, krpc.CompactNode6, krpc.CompactPeer,
                                    krpc.CompactPeer6], ids=lambda c: str(c.sizeof()))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_compact_records_are_the_layout_parse_as_json(layout, data):
    records = Records(layout, "records")
    raw = data.draw(st.integers(0, 5).flatmap(
        lambda n: st.binary(min_size=n * records.size, max_size=n * records.size)))
    convert = compact_records(FixedLayout(layout))
    expected = json_value(records.decode(raw, None, ()))
    assert json.dumps(convert(raw)) == json.dumps(expected)
    if raw:
        one = compact_records(FixedLayout(layout), many=False)
        assert json.dumps(one(raw[:records.size])) == json.dumps(expected[0])


def test_compact_records_refuse_layouts_they_cannot_convert():
    assert compact_records(FixedLayout(Struct("magic" / Const(b"\x01"), "n" / Int16ub))) is None


@pytest.mark.parametrize("path", [CAPTURES / "dht-02-bep44-put-get.pcap",
                                  CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap",
                                  SAMPLE], ids=lambda p: Path(str(p)).name)
def test_record_value_is_the_lenient_message(path, monkeypatch):
    """A record whose fields were generated makes its value when read: the eager record's."""
    lazy = [r for r in dissect(str(path)) if r.protocol == "bt-dht"]
    with monkeypatch.context() as m:
        m.setattr(dht_dissect, "CHECKS_MAY_WAIT", False)  # (every datagram decoded at once)
        eager = [r for r in dissect(str(path)) if r.protocol == "bt-dht"]
    assert len(lazy) == len(eager) > 0
    generated = 0
    for a, b in zip(lazy, eager):
        fields = a.fields
        held = Record.__dict__["value"].__get__(a)  # (before value is read)
        generated += isinstance(held, ValueLater)
        assert json.dumps(fields) == json.dumps(b.fields)
        assert ordered(a.value) == ordered(b.value)
        assert deviations_of(a.value) == deviations_of(b.value)
        assert a.deviations == b.deviations
        assert a == b
    assert generated > 0.5 * len(lazy)
