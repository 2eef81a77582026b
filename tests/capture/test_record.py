"""json_value's exact-type dispatch (the per-record hot path) against its general
isinstance chain, which subclasses of the same types still take."""

from __future__ import annotations

from construct import Container, ListContainer
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.record import BINARY_INLINE_LIMIT, json_value


class Text(str):
    pass


class Number(int):
    pass


class Blob(bytes):
    pass


class Mapping(dict):
    pass


class Sequence(list):
    pass


def through_the_chain(value):
    """The same value built from subclasses: no exact-type entry matches them."""
    if type(value) is str:
        return Text(value)
    if type(value) is int:
        return Number(value)
    if type(value) is bytes:
        return Blob(value)
    if isinstance(value, dict):
        return Mapping({k: through_the_chain(v) for k, v in value.items()})
    if isinstance(value, list):
        return Sequence(through_the_chain(v) for v in value)
    return value


keys = st.text(max_size=6) | st.binary(max_size=4)
leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
          | st.text(max_size=12) | st.binary(max_size=BINARY_INLINE_LIMIT + 8)
          | st.binary(max_size=3).map(lambda b: b.decode("latin-1")))
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(ListContainer)
    | st.dictionaries(keys, inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4).map(Container),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["", "piece", "x"]))
def test_exact_types_convert_as_the_general_chain(value, name):
    summarised = frozenset({"piece"})
    assert json_value(value, name, summarised) == json_value(through_the_chain(value), name,
                                                             summarised)


def test_hidden_keys_and_surrogates():
    value = Container(_io=None, a=b"\x01", t="x\udcda")
    assert json_value(value) == {"a": "01", "t": "x\\xda"}
    assert json_value({b"\xff": 1, b"k": [b"\x02"]}) == {"0xff": 1, "k": ["02"]}
