"""The -V renderer's text-only tree (render_tree, tree_text) against record_tree/tree_lines,
the TreeLine version the conformance report reads: the same lines, on any JSON value and on
every record of the committed captures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.record import Record
from p2pkit.capture.render import record_tree, render_tree, tree_lines, tree_text
from tests.pcap_payloads import CAPTURES

scalars = st.one_of(st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False),
                    st.text(max_size=6), st.sampled_from(['a"b', "c\\d", "\x00", "é", "\x7f"]))
digests = st.fixed_dictionaries({"length": st.integers(0, 99), "sha1": st.text(max_size=4)})
values = st.recursive(scalars | digests, lambda inner: st.one_of(
    st.lists(inner, max_size=10), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20)


@given(values, st.integers(0, 3), st.text(max_size=4))
def test_tree_text_is_the_text_of_tree_lines(value, indent, name):
    out: list[str] = []
    tree_text(value, indent, name, out)
    assert out == [line.text for line in tree_lines(value, indent, name, name)]


def _reference(record, start: float) -> str:
    lines = [f"Frame {record.frame}: {record.time - start:.6f} {record.transport} {record.src} → "
             f"{record.dst}"]
    return "\n".join(lines + [line.text for line in record_tree(record)])


@pytest.mark.parametrize("name", ["gtkg123-plain-up2-3leaves.pcap", "dht-02-bep44-put-get.pcap",
                                  "bt-02-libtorrent-magnet-ut_metadata-pex.pcap",
                                  "kad2-amule.pcap", "tracker-01-opentracker-libtorrent-aria2.pcap"])
def test_render_tree_equals_record_tree_on_real_captures(name):
    dissection = Dissection(CAPTURES / name)
    records = list(dissection)
    assert records
    start = dissection.first_time or 0.0
    for r in records:
        assert render_tree(r, start) == _reference(r, start)


# render_tree keeps the frame line of the record before (records of one frame and direction
# share it): runs of records drawn from a few shared objects, so that consecutive records
# share some of them (frame, time, endpoints, start) and not others, equal values in other
# objects included (-0.0 and 0.0, 1 and True, a copy of an endpoint's text)
_pooled_records = st.builds(
    lambda frame, time, src, transport, offset: Record(
        frame=frame, time=time, transport=transport, src=src, dst="b:2", protocol="p",
        message="m", fields={"n": 1}, offset=offset, length=3),
    st.sampled_from([1, True]), st.sampled_from([-0.0, 0.0, float("nan")]),
    st.sampled_from(["a:1", "".join(["a", ":1"])]), st.sampled_from(["tcp", "udp"]),
    st.sampled_from([None, 7]))
_starts = [0.0, -0.0, 0]


@given(st.lists(st.tuples(_pooled_records, st.sampled_from(_starts)), max_size=12))
def test_render_tree_frame_line_reused_only_for_the_same_frame(runs):
    for record, start in runs:
        assert render_tree(record, start) == _reference(record, start)
