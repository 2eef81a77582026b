"""The field-tree renderers compiled per shape (p2pkit.capture.tree_shapes) against the generic
renderer (tree_text, record_tree) on hypothesis-generated values whose shapes repeat and change
(every record of every committed capture: test_compiled_renderers.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.record import Record
from p2pkit.capture.render import render_tree, tree_text
from p2pkit.capture.tree_shapes import MAX_SHAPES, ShapeTreeRenderer, json_text
from tests.capture.test_compiled_renderers import _tree_reference


def _generic(value, indent, name) -> str:
    out: list[str] = []
    tree_text(value, indent, name, out)
    return "\n".join(out)


# few keys and scalar kinds, so that shapes repeat (compiled) and change (guards fail)
keys = st.sampled_from(["a", "b", "id", "sha1", "length", " sp", "", "k\"q", "{x}", "é"])
scalars = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from([
    1.5, float("inf"), float("nan"), -0.0]), st.sampled_from(["", "x", 'a"b', "c\\d", "\x00",
                                                               "é", "\x7f", "{}", "\udcda"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=10), st.tuples(inner), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=24)


@settings(max_examples=150)
@given(st.lists(values, min_size=1, max_size=6), st.integers(0, 3),
       st.sampled_from(["r", "[0]", "x y"]))
def test_compiled_values_equal_the_generic_ones(sequence, indent, name):
    r = ShapeTreeRenderer(tree_text)
    for _ in range(3):  # unseen, then compiled, then run compiled on every value
        for value in sequence:
            assert r.value(value, indent, name) == _generic(value, indent, name)


@settings(max_examples=100)
@given(st.lists(st.dictionaries(keys, values, max_size=5), min_size=1, max_size=5),
       st.dictionaries(keys, st.tuples(st.integers(0, 9), st.integers(10, 19)), max_size=3),
       st.one_of(st.none(), st.integers(0, 1000)))
def test_compiled_record_tops_equal_the_generic_ones(fields_list, spans, offset):
    import p2pkit.capture.render as render

    saved = render._SHAPES
    render._SHAPES = ShapeTreeRenderer(tree_text)
    try:
        for _ in range(3):
            for fields in fields_list:
                r = Record(frame=1, time=0.5, transport="tcp", src="a:1", dst="b:2",
                           protocol="p", message="m", fields=fields, offset=offset, length=3,
                           spans=spans)
                assert render_tree(r) == _tree_reference(r, 0.0)
    finally:
        render._SHAPES = saved


def test_shapes_are_bounded():
    r = ShapeTreeRenderer(tree_text)
    for i in range(MAX_SHAPES + 50):
        for _ in range(2):
            value = {f"k{i}": 1}
            assert r.value(value, 1, "n") == _generic(value, 1, "n")
    assert r.shapes == MAX_SHAPES


def test_json_text_is_json_dumps():
    import json

    for value in ([], [1, True, None, 1.5, float("nan"), "é\x00\""], ["\udcda"]):
        assert json_text(value) == json.dumps(value, ensure_ascii=False)


# one shape met many times with a slot whose type keeps changing (as a GGEP extension's
# value: text, a dictionary, a number, None): the compiled function draws the sample's types
# on its guarded path, the others item by item, and is recompiled with the changing slots
# unguarded once such values keep coming
slot_values = st.one_of(scalars, st.dictionaries(keys, scalars, max_size=2),
                        st.lists(scalars, max_size=10))


@settings(max_examples=60)
@given(st.lists(slot_values, min_size=1, max_size=30), st.lists(slot_values, min_size=1,
                                                                 max_size=3))
def test_loosened_shapes_equal_the_generic_ones(changing, steady):
    r = ShapeTreeRenderer(tree_text)
    for _ in range(3):
        for i, v in enumerate(changing):
            value = {"id": "x", "value": v, "n": steady[i % len(steady)]}
            assert r.value(value, 2, "ext") == _generic(value, 2, "ext")


@settings(max_examples=40)
@given(st.lists(slot_values, min_size=1, max_size=30))
def test_loosened_record_tops_equal_the_generic_ones(changing):
    import p2pkit.capture.render as render

    saved = render._SHAPES
    render._SHAPES = ShapeTreeRenderer(tree_text)
    try:
        for _ in range(3):
            for v in changing:
                r = Record(frame=1, time=0.5, transport="tcp", src="a:1", dst="b:2",
                           protocol="p", message="m", fields={"guid": v, "ttl": 1, "x": v},
                           offset=5, length=3, spans={"guid": (0, 16), "ttl": (17, 18)})
                assert render_tree(r) == _tree_reference(r, 0.0)
    finally:
        render._SHAPES = saved


def test_a_shape_is_loosened_once_values_of_other_types_keep_coming():
    r = ShapeTreeRenderer(tree_text)
    for v in ("a", "b"):  # compiled the second time, for text values
        assert r.value({"id": "x", "value": v}, 1, "ext") == _generic({"id": "x", "value": v},
                                                                      1, "ext")
    draw = r._nodes[(1, ("id", "value"))]
    compiled = draw.__code__
    for _ in range(20):  # the sample's types: the guarded path, nothing recompiled
        r.value({"id": "y", "value": "c"}, 1, "ext")
    assert draw.__code__ is compiled
    values = [{"id": "x", "value": v} for v in (5, {"k": 1}, None, [1, 2], "b")] * 4
    for value in values:
        assert r.value(value, 1, "ext") == _generic(value, 1, "ext")
    assert draw.__code__ is not compiled  # recompiled ("value" unguarded), the same function
    assert r._nodes[(1, ("id", "value"))] is draw
    loosened = draw.__code__
    for value in values:
        assert r.value(value, 1, "ext") == _generic(value, 1, "ext")
    assert draw.__code__ is loosened  # "value" no longer misses
