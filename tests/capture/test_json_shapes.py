"""The JSON converters compiled per mapping shape (p2pkit.capture.json_shapes) against the
generic conversion (json_mapping item by item) on hypothesis-generated mappings whose shapes
repeat and change, converted three times (unseen, compiled, run compiled; every decoded message
of every committed capture: test_compiled_renderers.py)."""

from __future__ import annotations

import enum
import ipaddress

import pytest
from construct import Container, ListContainer
from hypothesis import given, settings
from hypothesis import strategies as st

import p2pkit.capture.record as record_module
from p2pkit.capture.json_shapes import MAX_SHAPES, ShapeJsonConverter
from p2pkit.capture.record import BINARY_INLINE_LIMIT, json_mapping, json_value


class _Generic:
    """The conversion without compiled shapes: json_value's mappings item by item."""

    shapes = 0

    @staticmethod
    def convert(value, summarised):
        return json_mapping(value, summarised)


def _fresh() -> ShapeJsonConverter:
    return ShapeJsonConverter(json_mapping, json_value=json_value,
                              text_value=record_module.text_value,
                              binary=record_module._binary, key=record_module._key,
                              limit=BINARY_INLINE_LIMIT)


def _both(monkeypatch, values, summarised=frozenset(), rounds=3):
    """(generic, compiled) conversions of ``values``, the compiled ones ``rounds`` times."""
    monkeypatch.setattr(record_module, "_SHAPES", _Generic())
    expected = [json_value(v, "", summarised) for v in values]
    converter = _fresh()
    monkeypatch.setattr(record_module, "_SHAPES", converter)
    got = [[json_value(v, "", summarised) for v in values] for _ in range(rounds)]
    return expected, got, converter


class Colour(enum.Enum):
    RED = 1


class Code(enum.IntEnum):
    GENERIC = 201


keys = st.sampled_from(["a", "b", "_io", "_hidden", "", "port", "piece", b"ip", b"\xff",
                        "é"])
scalars = st.one_of(
    st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from([1.5, float("inf")]),
    st.sampled_from(["", "x", "é", "\udcda", "\x00"]),
    st.binary(max_size=3),
    st.sampled_from([b"x" * BINARY_INLINE_LIMIT, b"y" * (BINARY_INLINE_LIMIT + 1)]),
    st.sampled_from([ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv6Address("::1"),
                     Colour.RED, Code.GENERIC, bytearray(b"\x01")]))


def _mapping(pairs, as_container):
    return Container(pairs) if as_container else dict(pairs)


values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.lists(inner, max_size=3).map(ListContainer),
    st.tuples(inner),
    st.builds(_mapping, st.lists(st.tuples(keys, inner), max_size=4), st.booleans())),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.lists(values, min_size=1, max_size=6),
       st.sampled_from([frozenset(), frozenset({"piece"}), ("a", "b")]))
def test_compiled_conversion_equals_the_generic_one(sequence, summarised):
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected, got, _ = _both(monkeypatch, sequence, summarised)
    for round_ in got:
        assert round_ == expected
        # equal as JSON, and with the same key order
        assert [repr(v) for v in round_] == [repr(v) for v in expected]


def test_mappings_of_equal_but_differently_typed_keys_are_not_compiled(monkeypatch):
    values = [{1: "a"}, {True: "a"}, {1.0: "a"}] * 3
    expected, got, converter = _both(monkeypatch, values)
    assert got[-1] == expected == [{"1": "a"}, {"True": "a"}, {"1.0": "a"}] * 3
    assert converter.shapes == 0


def test_shapes_are_bounded(monkeypatch):
    converter = _fresh()
    monkeypatch.setattr(record_module, "_SHAPES", converter)
    for i in range(MAX_SHAPES + 50):
        for _ in range(2):
            assert json_value({f"k{i}": b"\x01"}) == {f"k{i}": "01"}
    assert converter.shapes == MAX_SHAPES
