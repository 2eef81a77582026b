"""LazyRecord: decoded once, when fields, value or deviations are first read; summary fields
from the header when the rest of the message cannot add them."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.lazy_record import (
    DecodedRecord,
    DeferredValue,
    LazyRecord,
    ValueLater,
    decoded_record,
    deferred_record,
    scalar_summary,
)
from p2pkit.capture.record import Record, json_fields
from p2pkit.capture.render import render_summary
from p2pkit.deviations import Deviation


def _record(calls: list[int], **summary):
    def decode():
        calls.append(1)
        return ({"ttl": 1, "port": 6346, "body": [1]}, "value",
                [Deviation(offset=0, rule="r", message="m", spec="s")])

    return LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                      protocol="gnutella", message="pong", decode=decode, **summary)


def test_decoded_once_on_first_read():
    calls: list[int] = []
    r = _record(calls)
    assert not r.decoded and calls == []
    assert r.deviations[0].rule == "r" and r.value == "value" and r.fields["port"] == 6346
    assert calls == [1] and r.decoded


def test_a_value_given_later_is_made_on_first_read():
    made: list[int] = []

    class Later(ValueLater):
        def make(self):
            made.append(1)
            return {"made": True}

    r = LazyRecord(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2", protocol="p",
                   message="m", decode=lambda: ({"n": 1}, Later(), []))
    assert r.fields == {"n": 1} and r.deviations == [] and made == []
    assert r.value == {"made": True} and r.value is r.value and made == [1]
    later = LazyRecord(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2", protocol="p",
                       message="m", decode=lambda: ({"n": 1}, Later(), []))
    assert later == replace(later) and made == [1, 1]  # (made once, for the copy too)


def test_summary_from_the_header_unless_the_payload_may_add_a_key():
    calls: list[int] = []
    r = _record(calls, summary={"ttl": 1}, payload_keys=frozenset({"port", "body"}))
    assert r.summary_fields(("ttl", "hops")) == [("ttl", 1)] and calls == []
    assert r.summary_fields(("port", "ttl")) == [("port", 6346), ("ttl", 1)] and calls == [1]


def test_a_record_without_summary_decodes_for_its_line():
    calls: list[int] = []
    line = render_summary(_record(calls))
    assert calls == [1] and line.endswith("gnutella pong port=6346 ttl=1")


def test_equality_and_replace_see_the_decoded_record():
    r = _record([])
    copy = replace(r, frame=2)
    assert copy.fields == r.fields and copy.frame == 2 and isinstance(copy, LazyRecord)
    plain = Record(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                   protocol="gnutella", message="pong", fields=dict(r.fields), value="value",
                   deviations=list(r.deviations))
    assert r == replace(plain)


def test_setters_replace_the_decoded_values():
    r = _record([])
    r.deviations = []
    assert r.deviations == [] and r.fields["ttl"] == 1  # set before: the decode does not undo it
    r.fields = {"x": 1}
    assert r.fields == {"x": 1}


scalars = st.one_of(st.integers(), st.booleans(), st.none(), st.text(max_size=5),
                    st.binary(max_size=3), st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)


@given(st.dictionaries(st.text(max_size=6), values, max_size=6),
       st.lists(st.text(max_size=6), max_size=8))
def test_scalar_summary_gives_the_json_fields(value, keys):
    extra = {"guid": "00"}
    fields = json_fields(value)
    fields.update(extra)
    r = LazyRecord(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2", protocol="p",
                   message="m", decode=lambda: (fields, value, []),
                   **scalar_summary(value, extra))
    assert r.summary_fields(keys) == [(k, fields[k]) for k in keys if k in fields]


def test_the_constructor_takes_record_fields_in_their_order():
    import dataclasses
    import inspect

    names = [f.name for f in dataclasses.fields(Record)]
    params = list(inspect.signature(LazyRecord.__init__).parameters)[1:len(names) + 1]
    assert params == names


_SLOTS = ("frame", "time", "transport", "src", "dst", "protocol", "message", "offset", "length",
          "spans", "_decode", "_summary", "_payload_keys")


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10**9), st.floats(allow_nan=False), st.text(max_size=4),
       st.integers(0, 1 << 16), st.none() | st.dictionaries(st.text(max_size=4), values),
       st.frozensets(st.text(max_size=4)), st.booleans())
def test_deferred_record_is_the_constructors_record(frame, time, text, length, summary,
                                                     payload_keys, read_first):
    """deferred_record gives what LazyRecord(..., decode=, summary=, payload_keys=) gives:
    every slot, the summary fields, and after decoding the same fields, value, deviations."""
    decoded = ({"x": text}, [text], [])
    spans = {"x": (0, length)}
    args = (frame, time, "udp", "a:1", "b:2", "p" + text, "m" + text)
    made = deferred_record(*args, length, spans, lambda: decoded, summary, payload_keys)
    built = LazyRecord(*args, length=length, spans=spans, decode=lambda: decoded,
                       summary=summary, payload_keys=payload_keys)
    assert type(made) is LazyRecord
    for name in _SLOTS:
        if name != "_decode":
            assert getattr(made, name) == getattr(built, name), name
    assert not made.decoded and not built.decoded
    keys = ("x", *sorted(summary or ()), "y")
    assert made.summary_fields(keys) == built.summary_fields(keys)
    assert made.decoded == built.decoded  # (decoded for the line only without a summary)
    if read_first:
        assert made.value == built.value
    assert made == built and made.decoded and built.decoded
    assert (made.fields, made.value, made.deviations) == decoded


def test_a_deferred_value_is_made_once_when_read():
    made: list[int] = []

    def make():
        made.append(1)
        return "value"

    r = LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                   protocol="gnutella", message="pong",
                   decode=lambda: ({"ttl": 1}, DeferredValue(make), []))
    assert r.fields == {"ttl": 1} and r.deviations == [] and made == []
    assert r.value == "value" and r.value == "value" and made == [1]
    copy = replace(r, frame=2)
    assert copy.value == "value" and made == [1]
    plain = Record(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                   protocol="gnutella", message="pong", fields={"ttl": 1}, value="value")
    assert LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                      protocol="gnutella", message="pong",
                      decode=lambda: ({"ttl": 1}, DeferredValue(make), [])) == plain


def test_a_decoded_record_makes_its_value_once_when_read():
    made: list[int] = []

    def make():
        made.append(1)
        return {"ttl": 1, "made": True}

    deviation = Deviation(offset=3, rule="r", spec="s", message="m")
    r = decoded_record(4, 0.5, "tcp", "a:1", "b:2", "gnutella", "pong", {"ttl": 1}, 7, 23,
                       [deviation], DeferredValue(make), {"ttl": (17, 18)})
    assert type(r) is DecodedRecord and made == []
    assert (r.frame, r.time, r.transport, r.src, r.dst, r.protocol, r.message, r.fields,
            r.offset, r.length, r.deviations, r.spans) == (
        4, 0.5, "tcp", "a:1", "b:2", "gnutella", "pong", {"ttl": 1}, 7, 23, [deviation],
        {"ttl": (17, 18)})
    assert made == [] and r.value == {"ttl": 1, "made": True} and r.value is r.value
    assert made == [1]
    plain = Record(4, 0.5, "tcp", "a:1", "b:2", "gnutella", "pong", {"ttl": 1}, 7, 23,
                   [deviation], {"ttl": 1, "made": True}, {"ttl": (17, 18)})
    assert r == plain and plain == r and r.to_json() == plain.to_json()
    copy = replace(r, frame=5)
    assert type(copy) is DecodedRecord and copy.value == r.value and copy.frame == 5
    assert made == [1]
    built = DecodedRecord(4, 0.5, "tcp", "a:1", "b:2", "gnutella", "pong", {"ttl": 1}, 7, 23,
                          [deviation], DeferredValue(make), {"ttl": (17, 18)})
    assert built == r and made == [1, 1]
    built.value = "set"
    assert built.value == "set" and built != r
