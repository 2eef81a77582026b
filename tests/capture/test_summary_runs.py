"""Runs of summary lines (p2pkit.capture.summary_runs): RunOrder releases the records
FrameOrder releases, at the same points and in the same order, when runs stand for them;
SummaryLines draws a run's lines as its records' lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import FrameOrder
from p2pkit.capture.record import Record
from p2pkit.capture.summary_lines import SummaryLines
from p2pkit.capture.summary_runs import RunOrder, SummaryRun, expand


def _record(n: int, frame: int, length: int) -> Record:
    return Record(frame=frame, time=frame / 8, transport="tcp", src="a:1", dst="b:2",
                  protocol="bittorrent", message="request",
                  fields={"index": n, "begin": 0, "length": 1}, length=length)


def _run(records: list[Record]) -> SummaryRun:
    first = records[0]
    lines = SummaryLines(0.0)
    head = lines.text([first]).split("bittorrent ")[0] + "bittorrent "
    tails = [lines.text([r])[len(head):-1] for r in records]
    bounds = [100]
    for r in records:
        bounds.append(bounds[-1] + r.length)
    return SummaryRun(first.frame, first.time, first.transport, first.src, first.dst,
                      first.protocol, ("index", "begin", "length"), tails, bounds,
                      lambda: list(records))


OPS = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(0, 40), st.lists(st.integers(0, 300), min_size=1,
                                                            max_size=8), st.booleans()),
    st.tuples(st.just("release"), st.integers(0, 60), st.just(()), st.just(False))),
    max_size=40)


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(0, 6), st.integers(-1, 12), st.integers(0, 1500))
def test_run_order_releases_what_frame_order_releases(ops, window, max_held, max_bytes):
    plain = FrameOrder(window=window, max_held=max_held, max_bytes=max_bytes)
    runs = RunOrder(window=window, max_held=max_held, max_bytes=max_bytes)
    out_plain: list = []
    out_runs: list = []
    n = 0
    for op, frame, lengths, as_run in ops:
        if op == "push":
            records = [_record(n + i, frame, length) for i, length in enumerate(lengths)]
            n += len(records)
            plain.extend(records, out_plain)
            runs.extend([_run(records)] if as_run else records, out_runs)
        else:
            plain.release_into(frame, out_plain)
            runs.release_into(frame, out_runs)
        assert list(expand(out_runs)) == out_plain  # (same objects: Record's ==)
        assert [r.fields["index"] for r in expand(out_runs)] == [
            r.fields["index"] for r in out_plain]
        assert len(runs) == len(plain) and runs.held_bytes == plain.held_bytes
        assert runs.full == plain.full
    out_plain += plain.flush()
    out_runs += runs.flush()
    assert [r.fields["index"] for r in expand(out_runs)] == [
        r.fields["index"] for r in out_plain]
    assert len(runs) == 0 and runs.held_bytes == 0
    for item in out_runs:  # every run released, whole or cut, has its own lines
        if type(item) is SummaryRun:
            assert SummaryLines(0.0).text([item]) == SummaryLines(0.0).text(item.records())


def test_a_run_cut_keeps_its_lines_and_records():
    records = [_record(i, 3, 10 + i) for i in range(5)]
    run = _run(records)
    assert run.count == 5 and run.length == sum(r.length for r in records)
    head = run.take(2)
    assert (head.count, run.count) == (2, 3)
    assert head.sizes == [10, 11] and run.sizes == [12, 13, 14]
    assert run.tails == [SummaryLines(0.0).text([r]).split("bittorrent ")[1][:-1]
                         for r in records[2:]]
    assert head.records() == records[:2] and run.records() == records[2:]
    assert head.length + run.length == sum(r.length for r in records)
    lines = SummaryLines(0.0)
    assert lines.text([head, run]) == SummaryLines(0.0).text(records)
    assert "3 messages" in repr(run)


def test_a_run_drawn_for_other_fields_gives_its_records_lines():
    records = [_record(i, 3, 10) for i in range(3)]
    run = _run(records)
    run.wanted = ("begin",)
    assert SummaryLines(0.0).text([run]) == SummaryLines(0.0).text(records)


def test_take_makes_the_run_the_constructor_makes():
    records = [_record(i, 3, 10 + i) for i in range(5)]
    run = _run(records)
    head = run.take(2)
    expected = SummaryRun(run.frame, run.time, run.transport, run.src, run.dst, run.protocol,
                          run.wanted, run._tails, run._bounds, run._make, 0, 2)
    assert {k: getattr(head, k) for k in SummaryRun.__slots__} == {
        k: getattr(expected, k) for k in SummaryRun.__slots__}
    assert (run.lo, run.hi, run.length) == (2, 5, 12 + 13 + 14)
    assert run.take(1).records() == records[2:3] and run.records() == records[3:]
