"""Runs of summary lines in place of descriptor records (DescriptorRecords with ``runs``, the
batch path of ``p2pkit dissect``'s summary mode): each run's lines against the lines of the
records the loop makes without runs, on random and mutated streams cut at random points, and
the whole CLI's summary output with and without runs on every committed capture, with each
option that changes what is printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import p2pkit.cli.dissect as cli_dissect
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.render import render_summary, render_tree
from p2pkit.capture.summary_lines import SummaryLines
from p2pkit.capture.summary_runs import SummaryRun, expand
from p2pkit.cli import cli
from p2pkit.gnutella.descriptor_records import RUN_PLANS, SHOWN, DescriptorRecords
from p2pkit.gnutella.descriptors import PAYLOAD_TYPES, PAYLOADS
from p2pkit.gnutella.protocol import GNUTELLA
from p2pkit.gnutella.stream import StreamReader
from p2pkit.registry import get
from tests.gnutella.test_descriptor_fast_path import REAL
from tests.gnutella.test_descriptor_records import _descriptor

CAPTURES = Path(__file__).parents[1] / "data" / "captures"


def _feed(stream: bytes, cuts: list[int], runs: bool) -> tuple[list, str]:
    """What the reader gives for a descriptor stream fed in pieces (frame = piece number)."""
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
    records.runs = runs
    reader = StreamReader(handshake=False, strict=False, split=records.split)
    out: list = []
    at, error = 0, ""
    for n, cut in enumerate([*sorted(cuts), len(stream)]):
        records.frame, records.time = n, n / 4
        try:
            out += reader.feed(stream[at:cut])
        except Exception as e:  # noqa: BLE001 - compared between the two
            error = f"{type(e).__name__}: {e}"
            break
        at = max(at, cut)
    return out, error


def _same(stream: bytes, cuts: list[int], trees: bool = True) -> int:
    """The runs' lines are the records' lines, their records the records; runs made."""
    with_runs, error = _feed(stream, cuts, True)
    without, error_without = _feed(stream, cuts, False)
    assert error == error_without
    made = list(expand(with_runs))
    assert len(made) == len(without)
    lines: list[str] = []
    for item in with_runs:
        if type(item) is SummaryRun:
            assert item.wanted == SHOWN and item.count == len(item.sizes) > 0
            assert item.length == sum(item.sizes)
            head = f"{item.frame:5d} {item.time:10.6f} a:1 → b:2 gnutella "
            lines += [head + tail for tail in item.tails]
            assert item.sizes == [r.length for r in item.records()]
            assert {(r.frame, r.time) for r in item.records()} == {(item.frame, item.time)}
        elif isinstance(item, LazyRecord):
            lines.append(render_summary(item))
    records = [r for r in without if isinstance(r, LazyRecord)]
    assert lines == [render_summary(r) for r in records]
    for a, b in zip(made, without):
        assert type(a) is type(b)
        if isinstance(b, LazyRecord):
            assert (a.frame, a.time, a.offset, a.length, a.message) == (
                b.frame, b.time, b.offset, b.length, b.message)
            assert not trees or render_tree(a) == render_tree(b)
    return sum(type(item) is SummaryRun for item in with_runs)


def test_every_real_descriptor_in_one_stream():
    stream = b"".join(REAL)
    assert _same(stream, []) > 0
    assert _same(stream, list(range(0, len(stream), 997)), trees=False) > 0


def _mutated(real: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(real[:max(23, cut)])
    for at, value in flips:
        if 16 < at < len(data) and at not in (19, 20, 21, 22):  # (header lengths kept)
            data[at] = value
    data[19:23] = (len(data) - 23).to_bytes(4, "little")
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(REAL) | st.builds(
    _descriptor, st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=40))
    | st.builds(_mutated, st.sampled_from(REAL),
                st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
                st.integers(0, 400)),
    min_size=1, max_size=14),
       st.lists(st.integers(0, 3000), max_size=6), st.binary(max_size=30))
def test_streams_in_any_pieces_give_the_records_lines(descriptors, cuts, tail):
    _same(b"".join(descriptors) + tail, cuts)


def test_run_formats_follow_the_registry_s_summary_fields():
    assert SHOWN == get("gnutella").summary == GNUTELLA.summary
    assert set(RUN_PLANS) == set(PAYLOADS)
    # every payload type's records are drawn from their header values
    assert all(plan is not None for plan in RUN_PLANS.values())
    longest, plain, check, checked, order = RUN_PLANS[PAYLOAD_TYPES["pong"]]
    assert (plain, checked, order) == ("pong guid=", "pong port=%s guid=%s ttl=%s hops=%s",
                                       None)
    assert check is not None and longest == -1


def test_plain_tails_are_the_run_format_s():
    """The loop's f-string tail (``_plain_head``) is what the ``%`` format of the header
    values gives, for every payload type; a format of another shape has no head (the type's
    tails then come from its records)."""
    from p2pkit.gnutella.descriptor_records import _plain_head, _run_format

    for ptype, (name, *_rest) in PAYLOADS.items():
        fmt, order = _run_format(name, ("guid", "ttl", "hops"))
        head = _plain_head(name, fmt)
        assert head is not None and order is None
        guid, ttl, hops = bytes(range(ptype % 7, ptype % 7 + 16)).hex(), ptype % 256, 7
        assert f"{head}{guid} ttl={ttl} hops={hops}" == fmt % (guid, ttl, hops)
    assert _plain_head("ping", "ping ttl=%s guid=%s hops=%s") is None
    assert _plain_head("p%ng", "p%%ng guid=%s ttl=%s hops=%s") == "p%ng guid="


def test_a_run_drawn_for_other_fields_is_drawn_from_its_records():
    stream = b"".join(REAL[:40])
    items, _ = _feed(stream, [], True)
    run = next(item for item in items if type(item) is SummaryRun)
    lines = SummaryLines(0.0)
    expected = SummaryLines(0.0).text(run.records())
    assert lines.text([run]) == expected
    run.wanted = ("ttl",)  # not the registry's: each record's line, as without runs
    assert lines.text([run]) == expected


def _summary(path: Path, runs: bool, counted: list[int] | None = None) -> str:
    dissection = Dissection(path, summary_runs=runs)
    lines = None
    out = []
    for batch in dissection.batches():
        if lines is None:
            lines = SummaryLines(dissection.first_time or 0.0)
        if counted is not None:
            counted += [item.count for item in batch if type(item) is SummaryRun]
        out.append(lines.text(batch))
    return "".join(out)


ALL = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
GNUTELLA_CAPTURES = [p for p in ALL if "gnutella" in p.name or "gtkg" in p.name]
SMALL_GNUTELLA = [p for p in GNUTELLA_CAPTURES if "ndpi" not in p.name]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_committed_capture_the_same_lines_with_runs(path):
    counted: list[int] = []
    assert _summary(path, True, counted) == _summary(path, False)
    assert (len(counted) > 50) == (path in GNUTELLA_CAPTURES)


@pytest.mark.parametrize("path", GNUTELLA_CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("bounds", [(2, 3, 10_000), (5, 20, 600), (50, 7, 200)])
def test_runs_cut_and_held_as_records_within_small_bounds(path, bounds, monkeypatch):
    """FrameOrder's window, held records and bytes made small: runs are cut and released
    where the records would be (the order of every line the same)."""
    from p2pkit.capture.dissect import FrameOrder

    monkeypatch.setattr(FrameOrder.__init__, "__defaults__", bounds)
    assert _summary(path, True) == _summary(path, False)


#: Options under which the CLI asks for runs (every record a summary line), and others.
WITH_RUNS = [[], ["--decode-as", "tcp.port==6346,gnutella"],
             ["--decode-as", "tcp.port==6346,bittorrent"]]
WITHOUT_RUNS = [["-c", "100"], ["--no-undecoded"], ["--stats"], ["--protocol", "gnutella"],
                ["--message", "pong"], ["--filter", 'message == "ping"'], ["-V"], ["--json"]]


@pytest.mark.parametrize("path", SMALL_GNUTELLA, ids=lambda p: p.name)
def test_the_cli_prints_the_same_with_runs_as_without(path, monkeypatch):
    runner = CliRunner()
    made: list[bool] = []

    class Recording(Dissection):
        def __init__(self, *args, summary_runs=False, **kwargs):
            made.append(summary_runs)
            super().__init__(*args, summary_runs=summary_runs and allow[0], **kwargs)

    allow = [True]
    monkeypatch.setattr(cli_dissect, "Dissection", Recording)
    for options in WITH_RUNS:
        args = ["dissect", str(path), *options]
        allow[0] = True
        with_runs = runner.invoke(cli, args)
        assert with_runs.exit_code == 0 and with_runs.output and made.pop()
        allow[0] = False
        without = runner.invoke(cli, args)
        assert (with_runs.output, with_runs.exit_code) == (without.output, without.exit_code)
    # runs are asked for only where every record is a summary line, all of them printed
    # (the output then is the record path's, whatever the option)
    for options in WITHOUT_RUNS:
        assert runner.invoke(cli, ["dissect", str(path), *options]).exit_code == 0
        assert made.pop() is False
