"""JSON lines written by p2pkit.capture.json_lines against json.dumps of record.to_json(): the
same text on hypothesis-generated records, and the same error for fields json.dumps refuses
(every record of every committed capture: test_compiled_renderers.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.json_lines import json_line, json_line_generic
from p2pkit.capture.record import Record
from p2pkit.deviations import Deviation
from tests.capture.test_tree_shapes import values

texts = st.one_of(st.sampled_from(["tcp", "a:1", "bt-dht", "é", "\x00", 'q"', "\udcda"]),
                  st.integers(0, 2))
times = st.one_of(st.floats(allow_nan=True), st.integers(-2, 2), st.sampled_from(
    [1765000000.0004, 0.1 + 0.2, 1e-7]))
deviations = st.lists(st.builds(Deviation, offset=st.integers(0, 9), rule=st.just("r"),
                                message=st.just("m"), spec=st.just("BEP 3")), max_size=1)


@settings(max_examples=150)
@given(st.integers(0, 10**6), times, texts, texts,
       st.dictionaries(st.sampled_from(["a", "b", "é"]), values, max_size=4), deviations)
def test_json_lines_equal_json_dumps(frame, time, src, message, fields, devs):
    r = Record(frame=frame, time=time, transport="udp", src=src, dst="b:2", protocol="p",
               message=message, fields=fields, deviations=devs)
    try:
        expected = json_line_generic(r)
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)) as got:
            json_line(r)
        assert str(got.value) == str(e)
    else:
        assert json_line(r) == expected


def test_fields_json_refuses_raise_what_json_dumps_raises():
    cyclic: dict = {}
    cyclic["self"] = cyclic
    for fields, error in (({"raw": b"\x01"}, TypeError), ({"loop": cyclic}, ValueError)):
        r = Record(frame=1, time=0.5, transport="udp", src="a:1", dst="b:2", protocol="p",
                   message="m", fields=fields)
        with pytest.raises(error) as expected:
            json_line_generic(r)
        with pytest.raises(error) as got:
            json_line(r)
        assert str(got.value) == str(expected.value)


# json_line keeps the head of the record before (frame, time, endpoints) and the quoted
# protocol and message names: runs of records drawn from a few shared objects, equal values
# in other objects included (-0.0 and 0.0, 1 and True, a copy of an endpoint's text)
_pooled = st.builds(
    lambda frame, time, src, transport, protocol, message: Record(
        frame=frame, time=time, transport=transport, src=src, dst="b:2", protocol=protocol,
        message=message, fields={"n": 1}),
    st.sampled_from([1, 2, True]), st.sampled_from([-0.0, 0.0, 1.5, float("nan"), 1]),
    st.sampled_from(["a:1", "".join(["a", ":1"]), "é\"3"]), st.sampled_from(["tcp", "udp"]),
    st.sampled_from(["p", "q\\"]), st.sampled_from(["m", "é"]))


@given(st.lists(_pooled, max_size=12))
def test_json_line_head_reused_only_for_the_same_frame(records):
    for r in records:
        assert json_line(r) == json_line_generic(r)
